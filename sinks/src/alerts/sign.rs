//! How a delivery proves where it came from and when it is tried again.
//!
//! The signature follows the scheme Stripe and Svix use: the header
//! `X-Somaflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//! `"<t>.<body>"` with the webhook's secret, so a receiver checks both the
//! sender and the age (and rejects a replayed old request).

use std::fmt::Write as _;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header's value for `body` sent at `unix_secs`.
pub fn signature(secret: &[u8], unix_secs: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    format!("t={unix_secs},v1={hex}")
}

/// The wait before attempt `attempt + 1` after `attempt` failures:
/// doubling from `initial`, at most `max`, then scaled by `jitter` in
/// [0.5, 1] so that many deliveries failing together do not retry together.
pub fn backoff(attempt: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let doubled = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    doubled.min(max).mul_f64(jitter.clamp(0.5, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac_hex(key: &[u8], data: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_time_and_body() {
        // RFC 4231 test case 2: the HMAC the signature is built on.
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let s = signature(b"secret", 1_700_000_000, br#"{"id":"a"}"#);
        let expected = hmac_hex(b"secret", br#"1700000000.{"id":"a"}"#);
        assert_eq!(s, format!("t=1700000000,v1={expected}"));
        assert_ne!(s, signature(b"other", 1_700_000_000, br#"{"id":"a"}"#));
        assert_ne!(s, signature(b"secret", 1_700_000_001, br#"{"id":"a"}"#));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1_000));
        let waits: Vec<u128> = (1..=6)
            .map(|a| backoff(a, initial, max, 1.0).as_millis())
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(backoff(3, initial, max, 0.5).as_millis(), 200);
        assert_eq!(backoff(40, initial, max, 1.0).as_millis(), 1_000);
    }
}
