//! Personal data in free text (message bodies): detection and masking of
//! e-mail addresses, phone numbers and payment card numbers.
//!
//! Runs on every message a PII rule looks at, so the common case (no `@`,
//! fewer than 7 digits) is decided by one pass over the bytes, before any
//! regex. Numbers are found by one candidate regex (digits joined by single
//! spaces, dashes or dots, optionally a leading `+` and parenthesised area
//! codes) and then classified in code: a Luhn-valid 13–19 digit run is a
//! card, a phone-shaped 7–15 digit run is a phone, anything else (order
//! numbers, dates, decimals, a 16-digit run failing Luhn) stays as it is.

use std::sync::LazyLock;

use regex::Regex;

pub const EMAIL_MASK: &str = "[email]";
pub const PHONE_MASK: &str = "[phone]";
pub const CARD_MASK: &str = "[card]";

/// Fewest digits in a phone number (a local number such as 555-0132).
const MIN_PHONE_DIGITS: usize = 7;
/// Most digits in a phone number (E.164).
const MAX_PHONE_DIGITS: usize = 15;
/// Card numbers (PAN) are 13 to 19 digits.
const CARD_DIGITS: std::ops::RangeInclusive<usize> = 13..=19;

// The patterns are constants: a failure to compile is a bug caught by every
// test, never something input can cause.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
        .expect("email pattern compiles")
});

/// A run of ASCII digits (or parenthesised groups of them) joined by at most
/// one separator each. `[0-9]`, not `\d`: `\d` would match any Unicode digit.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\+?(?:\([0-9]{1,5}\)|[0-9])(?:[ .-]?(?:\([0-9]{1,5}\)|[0-9]))*")
        .expect("number pattern compiles")
});

/// What a number-like span turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Card,
    Phone,
}

impl Found {
    fn mask(self) -> &'static str {
        match self {
            Found::Card => CARD_MASK,
            Found::Phone => PHONE_MASK,
        }
    }
}

/// Whether `text` holds an e-mail address, a phone number or a card number.
pub fn contains_pii(text: &str) -> bool {
    let (at, digits) = census(text.as_bytes());
    (at && EMAIL.is_match(text)) || (digits >= MIN_PHONE_DIGITS && numbers(text).next().is_some())
}

/// `text` with every e-mail address, phone number and card number replaced
/// by `[email]`, `[phone]` or `[card]`, and how many items were masked.
pub fn redact_pii(text: &str) -> (String, usize) {
    let mut count = 0;
    let (at, _) = census(text.as_bytes());
    // E-mails first: digits inside an address belong to the address.
    let after_email = if at {
        splice(
            text,
            EMAIL
                .find_iter(text)
                .map(|m| (m.start(), m.end(), EMAIL_MASK)),
            &mut count,
        )
    } else {
        None
    };
    let current = after_email.as_deref().unwrap_or(text);
    let (_, digits) = census(current.as_bytes());
    let after_numbers = if digits >= MIN_PHONE_DIGITS {
        splice(current, numbers(current), &mut count)
    } else {
        None
    };
    let masked = match (after_numbers, after_email) {
        (Some(s), _) | (None, Some(s)) => s,
        (None, None) => text.to_string(),
    };
    (masked, count)
}

/// One pass over the bytes: is there an `@`, how many ASCII digits.
fn census(bytes: &[u8]) -> (bool, usize) {
    let mut at = false;
    let mut digits = 0usize;
    for &b in bytes {
        at |= b == b'@';
        digits += usize::from(b.is_ascii_digit());
    }
    (at, digits)
}

/// Spans of `text` that are phone or card numbers, with their mask.
fn numbers(text: &str) -> impl Iterator<Item = (usize, usize, &'static str)> + '_ {
    let bytes = text.as_bytes();
    NUMBER.find_iter(text).filter_map(move |m| {
        // A number glued to letters ("v1234567", "0132th") is an identifier.
        let glued_before = m.start() > 0 && is_word(bytes[m.start() - 1]);
        let glued_after = bytes.get(m.end()).is_some_and(|&b| is_word(b));
        if glued_before || glued_after {
            return None;
        }
        classify(m.as_str()).map(|found| (m.start(), m.end(), found.mask()))
    })
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Replaces the given (sorted, disjoint) spans; `None` when there were none.
fn splice(
    text: &str,
    spans: impl Iterator<Item = (usize, usize, &'static str)>,
    count: &mut usize,
) -> Option<String> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    for (start, end, mask) in spans {
        let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
        buf.push_str(&text[copied..start]);
        buf.push_str(mask);
        copied = end;
        *count += 1;
    }
    let mut buf = out?;
    buf.push_str(&text[copied..]);
    Some(buf)
}

/// Decides whether a candidate span (as matched by [`NUMBER`]) is a card, a
/// phone number, or neither. Card wins: a Luhn-valid 16-digit run would
/// otherwise never be a phone anyway (too long), but a 13–15 digit one could.
fn classify(span: &str) -> Option<Found> {
    let bytes = span.as_bytes();
    // Group lengths, split at separators and parentheses; at most 19 digits
    // are of interest, so a fixed array avoids allocating.
    let mut groups = [0u8; 20];
    let mut n_groups = 0usize;
    let mut digits = 0usize;
    let (mut plus, mut paren, mut dot) = (false, false, false);
    let mut in_group = false;
    for &b in bytes {
        if b.is_ascii_digit() {
            digits += 1;
            if digits > *CARD_DIGITS.end() {
                return None;
            }
            if !in_group {
                n_groups += 1;
                in_group = true;
            }
            groups[n_groups - 1] += 1;
        } else {
            in_group = false;
            match b {
                b'+' => plus = true,
                b'(' | b')' => paren = true,
                b'.' => dot = true,
                _ => {}
            }
        }
    }
    let groups = &groups[..n_groups];
    // Cards are printed plain or grouped by spaces or dashes, never with a
    // `+`, parentheses or dots.
    if CARD_DIGITS.contains(&digits) && !plus && !paren && !dot && luhn_valid(bytes) {
        return Some(Found::Card);
    }
    if !(MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits) {
        return None;
    }
    // International (`+44 20 7946 0958`) or with an area code in parentheses
    // (`(415) 555-0132`): nothing else is written that way.
    if plus || paren {
        return Some(Found::Phone);
    }
    let first = bytes[0];
    let dashed_or_dotted = bytes.iter().any(|&b| b == b'-' || b == b'.');
    let phone = match groups {
        // North American: 415-555-0132, 415 555 0132, 415.555.0132.
        [3, 3, 4] => true,
        [1, 3, 3, 4] => first == b'1',
        // Local: 555-0132 (a space-separated "555 0132" is too often a count).
        [3, 4] => dashed_or_dotted,
        // Unseparated North American number: area code and exchange never
        // start with 0 or 1, which keeps Unix timestamps and most ids out.
        [10] => nanp(&bytes[..10]),
        [11] => first == b'1' && nanp(&bytes[1..11]),
        // National formats with a trunk prefix: 020 7946 0958, 06 12 34 56 78,
        // 0044 20 7946 0958. At least 9 digits keeps dates (05-01-2024) out.
        _ => {
            first == b'0'
                && groups.len() >= 2
                && digits >= 9
                && (2..=5).contains(&groups[0])
                && groups.iter().all(|g| (2..=8).contains(g))
        }
    };
    phone.then_some(Found::Phone)
}

/// A 10-digit North American number: NPA and NXX start with 2–9.
fn nanp(ten: &[u8]) -> bool {
    ten.len() == 10 && (b'2'..=b'9').contains(&ten[0]) && (b'2'..=b'9').contains(&ten[3])
}

/// The Luhn checksum over the ASCII digits of `bytes` (others are skipped).
fn luhn_valid(bytes: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for &b in bytes.iter().rev().filter(|b| b.is_ascii_digit()) {
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_generator_messages() {
        let cases = [
            (
                "Draft a reply to the customer and cc jane.doe@example.com.",
                "Draft a reply to the customer and cc [email].",
            ),
            (
                "Call me back at +1 415 555 0132 about the invoice.",
                "Call me back at [phone] about the invoice.",
            ),
            (
                "Charge card 4111 1111 1111 1111 for the renewal.",
                "Charge card [card] for the renewal.",
            ),
        ];
        for (text, want) in cases {
            assert!(contains_pii(text), "{text}");
            assert_eq!(redact_pii(text), (want.to_string(), 1), "{text}");
        }
    }

    #[test]
    fn masks_phone_formats() {
        for phone in [
            "+1 415 555 0132",
            "(415) 555-0132",
            "415-555-0132",
            "415.555.0132",
            "1-415-555-0132",
            "555-0132",
            "4155550132",
            "+44 20 7946 0958",
            "+49-30-1234567",
            "+1 (415) 555-0132",
            "020 7946 0958",
            "06 12 34 56 78",
        ] {
            let text = format!("ring {phone} now");
            assert_eq!(
                redact_pii(&text),
                ("ring [phone] now".to_string(), 1),
                "{phone}"
            );
            assert!(contains_pii(&text), "{phone}");
        }
    }

    #[test]
    fn masks_cards_as_cards_not_phones() {
        for card in [
            "4111111111111111",
            "4111-1111-1111-1111",
            "5500 0000 0000 0004",
            "3782 822463 10005",
            // 13 digits: short enough to be a phone, but Luhn-valid.
            "4222222222222",
        ] {
            let text = format!("pay with {card}.");
            assert_eq!(
                redact_pii(&text),
                ("pay with [card].".to_string(), 1),
                "{card}"
            );
        }
    }

    #[test]
    fn leaves_non_pii_numbers_alone() {
        for text in [
            "order 1234 5678 9012 3456 shipped",
            "order 1234567890123456 shipped",
            "released on 2024-05-01 at 10:00",
            "on 05-01-2024",
            "pi is 3.14159265358979",
            "epoch 1717171717 seconds",
            "version v12345678 and gpt-4o-mini",
            "we have 100 2000 items",
            "Summarise the attached quarterly report in five bullet points.",
            "send it to @team",
        ] {
            assert!(!contains_pii(text), "{text}");
            assert_eq!(redact_pii(text), (text.to_string(), 0), "{text}");
        }
    }

    #[test]
    fn counts_every_item_in_a_mixed_message() {
        let text =
            "mail a.b@x.io or bob+1@mail.example.org, call 415-555-0132, card 4111 1111 1111 1111";
        let (masked, n) = redact_pii(text);
        assert_eq!(masked, "mail [email] or [email], call [phone], card [card]");
        assert_eq!(n, 4);
    }

    #[test]
    fn digits_inside_an_email_belong_to_the_email() {
        assert_eq!(
            redact_pii("from 4155550132@sms.example.com"),
            ("from [email]".to_string(), 1)
        );
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid(b"4111 1111 1111 1111"));
        assert!(!luhn_valid(b"4111 1111 1111 1112"));
        assert!(luhn_valid(b"79927398713"));
    }
}
