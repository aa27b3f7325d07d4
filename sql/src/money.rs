//! Money in answers: nano-USD integers shown as exact decimal strings.

pub const NANOS_PER_USD: i128 = 1_000_000_000;

/// Nano-USD as an exact decimal string with 9 places (`-0.000000001`).
pub fn usd(nanos: i128) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    let scale = NANOS_PER_USD.unsigned_abs();
    format!("{sign}{}.{:09}", abs / scale, abs % scale)
}
