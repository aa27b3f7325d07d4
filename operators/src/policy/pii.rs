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
//! A candidate that is not one number as a whole may still hold one beside
//! other digits ("call 415-555-0132 24/7"): its space-separated pieces are
//! then searched for the unmistakable shapes.

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
    NUMBER.find_iter(text).flat_map(move |m| {
        // A number glued to letters ("v1234567", "0132th") is an identifier.
        let glued_before = m.start() > 0 && is_word(bytes[m.start() - 1]);
        let glued_after = bytes.get(m.end()).is_some_and(|&b| is_word(b));
        let mut found = Vec::new();
        if !glued_before
            && !glued_after
            && let Some(kind) = classify(m.as_str(), Span::Whole)
        {
            found.push((m.start(), m.end(), kind.mask()));
            return found;
        }
        // The candidate as a whole is not one number, but the regex joins
        // runs separated by single spaces, so it may hold one next to
        // another number: "call 415-555-0132 24/7", "card 4111 1111 1111
        // 1111 12/27", two phones in a list. Look inside it.
        parts(m.as_str(), glued_before, glued_after, |start, end, kind| {
            found.push((m.start() + start, m.start() + end, kind.mask()));
        });
        found
    })
}

/// Finds, left to right and longest first, the runs of space-separated
/// pieces of `candidate` that are a number on their own (by the stricter
/// rules of [`Span::Part`]). A run touching a glued end of the candidate is
/// glued too.
fn parts(
    candidate: &str,
    glued_before: bool,
    glued_after: bool,
    mut found: impl FnMut(usize, usize, Found),
) {
    let bytes = candidate.as_bytes();
    if !bytes.contains(&b' ') {
        return;
    }
    // (start, end, digits) of each piece between single spaces.
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().chain([(bytes.len(), &b' ')]) {
        if b == b' ' {
            let digits = bytes[start..i]
                .iter()
                .filter(|b| b.is_ascii_digit())
                .count();
            pieces.push((start, i, digits));
            start = i + 1;
        }
    }
    if pieces.len() < 2 {
        return;
    }
    let last = pieces.len() - 1;
    let mut i = 0;
    while i <= last {
        let mut digits = 0;
        let mut end = i;
        while end <= last && digits + pieces[end].2 <= *CARD_DIGITS.end() {
            digits += pieces[end].2;
            end += 1;
        }
        let hit = (i..end).rev().find_map(|j| {
            let whole = i == 0 && j == last;
            let glued = (i == 0 && glued_before) || (j == last && glued_after);
            if whole || glued {
                return None;
            }
            classify(&candidate[pieces[i].0..pieces[j].1], Span::Part).map(|kind| (j, kind))
        });
        match hit {
            Some((j, kind)) => {
                found(pieces[i].0, pieces[j].1, kind);
                i = j + 1;
            }
            None => i += 1,
        }
    }
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

/// Which rules [`classify`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    /// A whole candidate of [`NUMBER`], delimited by the text around it.
    Whole,
    /// Some of a candidate's space-separated pieces: only the shapes that
    /// are unmistakable on their own (cards, international or parenthesised
    /// phones, North American numbers, 555-0132), not the national trunk
    /// formats, which a fragment of a longer number (an order number, a
    /// list of counts) would match too easily.
    Part,
}

/// Decides whether a candidate span (as matched by [`NUMBER`]) is a card, a
/// phone number, or neither. Card wins: a Luhn-valid 16-digit run would
/// otherwise never be a phone anyway (too long), but a 13–15 digit one could.
fn classify(span: &str, rules: Span) -> Option<Found> {
    let bytes = span.as_bytes();
    // Group lengths, split at separators and parentheses; at most 19 digits
    // are of interest, so a fixed array avoids allocating.
    let mut groups = [0u8; 20];
    let mut n_groups = 0usize;
    let mut digits = 0usize;
    let mut digit = [0u8; 19];
    let (mut plus, mut paren, mut dot) = (false, false, false);
    let mut in_group = false;
    for &b in bytes {
        if b.is_ascii_digit() {
            if digits == *CARD_DIGITS.end() {
                return None;
            }
            digit[digits] = b;
            digits += 1;
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
    let digit = &digit[..digits];
    // Cards are printed plain or grouped by spaces or dashes, never with a
    // `+`, parentheses or dots.
    if CARD_DIGITS.contains(&digits)
        && !plus
        && !paren
        && !dot
        && card_grouping(groups)
        && luhn_valid(bytes)
    {
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
    let first = digit[0];
    let dashed_or_dotted = bytes.iter().any(|&b| b == b'-' || b == b'.');
    let phone = match groups {
        // North American: 415-555-0132, 415 555 0132, 415.555.0132, with or
        // without the country code 1. Area code and exchange never start
        // with 0 or 1, which keeps Unix timestamps, most ids and lists of
        // counts ("sizes 128 256 1024") out.
        [3, 3, 4] | [10] => nanp(digit),
        [1, 3, 3, 4] | [11] => first == b'1' && nanp(&digit[1..]),
        // Local: 555-0132 (a space-separated "555 0132" is too often a count).
        [3, 4] => dashed_or_dotted,
        // National formats with a trunk prefix: 020 7946 0958, 06 12 34 56 78,
        // 0044 20 7946 0958. At least 9 digits keeps dates (05-01-2024) out,
        // and no national format starts like a day-month-year date, which
        // keeps out a date followed by a time or a count (05-01-2024 10:30,
        // 05.01.2024 12 items).
        _ => {
            rules == Span::Whole
                && first == b'0'
                && groups.len() >= 2
                && digits >= 9
                && !groups.starts_with(&[2, 2, 4])
                && (2..=5).contains(&groups[0])
                && groups.iter().all(|g| (2..=8).contains(g))
        }
    };
    phone.then_some(Found::Phone)
}

/// How card numbers are printed: in one run, in groups of four (the last
/// one shorter for 13, 15, 17 and 18 digits: 4111 1111 1111 1111, 4222
/// 2222 2222 2), or 4-6-5 / 4-6-4 (American Express, Diners Club). Keeps a
/// list of counts that happens to pass Luhn ("15000 3400 18400") out.
fn card_grouping(groups: &[u8]) -> bool {
    match groups {
        [_] | [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => init.iter().all(|&g| g == 4) && (1..=4).contains(last),
        [] => false,
    }
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
            "3056 930902 5904",
            "4222 2222 2222 2",
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
    fn masks_numbers_written_next_to_other_numbers() {
        for (text, want, n) in [
            ("Call 415-555-0132 24/7", "Call [phone] 24/7", 1),
            ("card 4111 1111 1111 1111 12/27", "card [card] 12/27", 1),
            ("Room 12 415-555-0132", "Room 12 [phone]", 1),
            ("Room12 415-555-0132", "Room12 [phone]", 1),
            (
                "call 415-555-0132 415-555-0199 or 1 (415) 555-0100 ext 12",
                "call [phone] [phone] or [phone] ext 12",
                3,
            ),
            (
                "cards 4111 1111 1111 1111 5500-0000-0000-0004",
                "cards [card] [card]",
                2,
            ),
        ] {
            assert!(contains_pii(text), "{text}");
            assert_eq!(redact_pii(text), (want.to_string(), n), "{text}");
        }
    }

    #[test]
    fn dates_with_times_and_lists_of_counts_are_not_phones() {
        for text in [
            "on 05-01-2024 10:30",
            "on 05.01.2024 12 items",
            "sizes 128 256 1024",
            "we have 100 200 3000 items",
            "budgets 1 000 000 and 2 500 000",
            // Fragments of a long number are not searched for trunk formats.
            "order 1234 0567 8901 2345 shipped",
            "ids 1234 5678 9012 3456 7890",
            // Luhn-valid, but not grouped like a card.
            "tokens in, out, total: 15000 3400 18400",
        ] {
            assert!(!contains_pii(text), "{text}");
            assert_eq!(redact_pii(text), (text.to_string(), 0), "{text}");
        }
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid(b"4111 1111 1111 1111"));
        assert!(!luhn_valid(b"4111 1111 1111 1112"));
        assert!(luhn_valid(b"79927398713"));
    }
}
