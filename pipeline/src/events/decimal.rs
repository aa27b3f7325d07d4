//! Exact decimal parsing for money and quantities: never through binary floats.

/// Digits kept after the decimal point in every decimal column.
pub const DECIMAL_SCALE: i8 = 9;
/// Precision of every decimal column (`Decimal128(38, 9)`).
pub const DECIMAL_PRECISION: u8 = 38;

/// Parses a JSON number's text (`-12.5`, `3e-4`, `"0.001"` unquoted) into an
/// integer scaled by 10^9. Refuses values that would need more than 9
/// fractional digits instead of rounding them silently.
pub fn parse_decimal(text: &str) -> Result<i128, String> {
    let bad = || format!("{text:?} is not a decimal number");
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => {
            let exp: i32 = body[i + 1..].parse().map_err(|_| bad())?;
            (&body[..i], exp)
        }
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad());
    }
    let mut digits: i128 = 0;
    let mut frac_digits: i32 = 0;
    for (i, part) in [int_part, frac_part].into_iter().enumerate() {
        for c in part.bytes() {
            if !c.is_ascii_digit() {
                return Err(bad());
            }
            digits = digits
                .checked_mul(10)
                .and_then(|d| d.checked_add(i128::from(c - b'0')))
                .ok_or_else(|| format!("{text:?} is too large"))?;
            if i == 1 {
                frac_digits += 1;
            }
        }
    }
    let shift = i32::from(DECIMAL_SCALE) - frac_digits + exponent;
    let scaled = if shift >= 0 {
        10i128
            .checked_pow(shift as u32)
            .and_then(|p| digits.checked_mul(p))
            .ok_or_else(|| format!("{text:?} is too large"))?
    } else {
        let p = 10i128
            .checked_pow((-shift) as u32)
            .ok_or_else(|| format!("{text:?} has more than 9 decimal places"))?;
        if digits % p != 0 {
            return Err(format!("{text:?} has more than 9 decimal places"));
        }
        digits / p
    };
    if scaled >= 10i128.pow(u32::from(DECIMAL_PRECISION)) {
        return Err(format!("{text:?} is too large"));
    }
    Ok(if negative { -scaled } else { scaled })
}

/// Formats a scaled decimal back to text, trimming trailing zeros.
pub fn format_decimal(scaled: i128) -> String {
    let scale = 10i128.pow(DECIMAL_SCALE as u32);
    let sign = if scaled < 0 { "-" } else { "" };
    let abs = scaled.unsigned_abs();
    let int = abs / scale as u128;
    let frac = abs % scale as u128;
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let frac = format!("{frac:09}");
    format!("{sign}{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_exponent_forms_exactly() {
        assert_eq!(parse_decimal("1").unwrap(), 1_000_000_000);
        assert_eq!(parse_decimal("0.000000001").unwrap(), 1);
        assert_eq!(parse_decimal("-12.5").unwrap(), -12_500_000_000);
        assert_eq!(parse_decimal("3e-4").unwrap(), 300_000);
        assert_eq!(parse_decimal("1.5E2").unwrap(), 150_000_000_000);
        assert_eq!(parse_decimal(".5").unwrap(), 500_000_000);
    }

    #[test]
    fn refuses_what_it_cannot_hold_exactly() {
        assert!(
            parse_decimal("0.0000000001")
                .unwrap_err()
                .contains("9 decimal")
        );
        assert!(parse_decimal("abc").is_err());
        assert!(parse_decimal("").is_err());
        assert!(parse_decimal("1e40").unwrap_err().contains("too large"));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["0", "1", "-12.5", "0.000000001", "123456.789"] {
            assert_eq!(format_decimal(parse_decimal(text).unwrap()), text);
        }
    }
}
