//! Money in tests: decimal text to nano-USD, and the list prices read
//! from config/prices.toml independently of the engine.

use std::collections::BTreeMap;

use serde_json::Value;

/// Decimal text ("12.5", "-0.000000001") → nano units.
pub fn nanos(text: &str) -> i128 {
    let text = text.trim().trim_matches('"');
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let frac = format!("{frac:0<9}");
    let whole: i128 = whole
        .parse()
        .unwrap_or_else(|_| panic!("not a decimal: {text:?}"));
    sign * (whole * 1_000_000_000 + frac[..9].parse::<i128>().expect("fraction"))
}

pub fn value_nanos(v: &Value) -> i128 {
    match v {
        Value::String(s) => nanos(s),
        Value::Number(n) => nanos(&n.to_string()),
        Value::Null => 0,
        other => panic!("not a decimal: {other}"),
    }
}

/// List prices per model from config/prices.toml, read independently of
/// the engine: nano-USD per 1M tokens (input, cached input, output,
/// reasoning, 5-minute cache write, 1-hour cache write; the last two
/// default to input and to the 5-minute write).
pub fn list_prices() -> BTreeMap<String, [i128; 6]> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prices.toml"),
    )
    .expect("config/prices.toml");
    let mut prices = BTreeMap::new();
    for block in text.split("[[prices]]").skip(1) {
        let field = |name: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == name).then(|| {
                    v.split('#')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .trim_matches('"')
                        .to_string()
                })
            })
        };
        assert!(
            field("tenant").is_none(),
            "the test expects list prices only"
        );
        let model = field("model").expect("model");
        let (input, output) = (
            nanos(&field("input").expect("input")),
            nanos(&field("output").expect("output")),
        );
        let written = field("cache_creation").map_or(input, |r| nanos(&r));
        let price = [
            input,
            nanos(&field("cached_input").expect("cached_input")),
            output,
            field("reasoning").map_or(output, |r| nanos(&r)),
            written,
            field("cache_creation_1h").map_or(written, |r| nanos(&r)),
        ];
        // Newest price wins; every shipped price is already in effect.
        let from = field("effective_from").expect("effective_from");
        assert!(from.as_str() <= chrono::Utc::now().format("%Y-%m-%d").to_string().as_str());
        prices.insert(model, price);
    }
    prices
}

/// Half to even, as an invoice rounds a line: `value / divisor`.
pub fn divide_half_even(value: i128, divisor: i128) -> i128 {
    let (q, r) = (value.div_euclid(divisor), value.rem_euclid(divisor));
    match (2 * r).cmp(&divisor) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

pub fn cents(nanos: i128) -> i128 {
    divide_half_even(nanos, 10_000_000)
}
