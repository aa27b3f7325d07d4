//! Field specs and a single-pass JSON object reader driven by them.
//!
//! Each event kind is described by data (a list of [`FieldSpec`]) instead of a
//! hand-written struct, so parsing, validation, Arrow schema and column
//! building stay in step for all kinds. Reading is zero-copy where the JSON
//! string has no escapes, and a wrong type is reported with the field's name.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::decimal::parse_decimal;

/// The type a field must have, and how strict to be about it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldType {
    /// Required, non-empty string.
    Str,
    /// Optional string (missing or `null` allowed).
    OptStr,
    /// Required string from a closed set of values.
    Enum(&'static [&'static str]),
    /// Optional string from a closed set of values.
    OptEnum(&'static [&'static str]),
    /// Required integer ≥ 0.
    Count,
    /// Optional integer ≥ 0.
    OptCount,
    /// Required integer, any sign.
    Int,
    /// Optional number.
    OptFloat,
    /// Required exact decimal (JSON number or string), scale 9.
    Decimal,
    /// Optional exact decimal.
    OptDecimal,
    /// Any JSON value, kept raw (the CloudEvents `data` member).
    Raw,
}

impl FieldType {
    pub fn required(self) -> bool {
        !matches!(
            self,
            FieldType::OptStr
                | FieldType::OptEnum(_)
                | FieldType::OptCount
                | FieldType::OptFloat
                | FieldType::OptDecimal
        )
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: FieldType,
}

pub const fn field(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec { name, ty }
}

/// A parsed value, typed by its [`FieldType`].
#[derive(Debug, Clone)]
pub enum FieldValue<'a> {
    Missing,
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    /// Scaled by 10^9.
    Decimal(i128),
    Raw(&'a RawValue),
    /// A `Raw` member read in place ([`read_object_in_place`]): its fields
    /// are in the [`ReadInPlace`] beside the values.
    InPlace,
}

impl PartialEq for FieldValue<'_> {
    fn eq(&self, other: &Self) -> bool {
        use FieldValue::*;
        match (self, other) {
            (Missing, Missing) => true,
            (Str(a), Str(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => a == b,
            (Decimal(a), Decimal(b)) => a == b,
            (Raw(a), Raw(b)) => a.get() == b.get(),
            (InPlace, InPlace) => true,
            _ => false,
        }
    }
}

impl<'a> FieldValue<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            FieldValue::Int(v) => Some(*v),
            _ => None,
        }
    }
}

/// Where a field failed: its name and the reason.
#[derive(Debug)]
pub struct FieldFailure {
    pub field: &'static str,
    pub reason: String,
}

/// Reads a JSON object, keeping the fields named in `specs` (in spec order)
/// and skipping the others. Missing fields stay [`FieldValue::Missing`];
/// presence of required ones is checked by [`check_required`].
pub fn read_object<'a>(
    json: &'a [u8],
    specs: &'static [FieldSpec],
) -> Result<Vec<FieldValue<'a>>, ObjectError> {
    read_from(serde_json::Deserializer::from_slice(json), specs)
}

/// [`read_object`] of text already known to be UTF-8 (checked once for the
/// whole record): serde_json then does not check every string and raw value
/// again. Same values and errors, since those checks could not fail.
pub fn read_object_str<'a>(
    json: &'a str,
    specs: &'static [FieldSpec],
) -> Result<Vec<FieldValue<'a>>, ObjectError> {
    read_from(serde_json::Deserializer::from_str(json), specs)
}

fn read_from<'a, R: serde_json::de::Read<'a>>(
    de: serde_json::Deserializer<R>,
    specs: &'static [FieldSpec],
) -> Result<Vec<FieldValue<'a>>, ObjectError> {
    read_with(de, specs, None).map(|(values, _)| values)
}

fn read_with<'a, R: serde_json::de::Read<'a>>(
    mut de: serde_json::Deserializer<R>,
    specs: &'static [FieldSpec],
    in_place: Option<InPlace>,
) -> Result<ObjectRead<'a>, ObjectError> {
    let seed = ObjectSeed { specs, in_place };
    let out = seed.deserialize(&mut de).map_err(|e| classify(e, specs))?;
    de.end().map_err(|e| ObjectError::Syntax(e.to_string()))?;
    out.map_err(ObjectError::Field)
}

/// A `Raw` member to read in place, as an object whose specs an earlier
/// member picks — the CloudEvents `data`, whose fields depend on `type`.
/// Reading it with the envelope scans its text once instead of twice (as
/// raw JSON, then as fields): decode's largest cost.
#[derive(Debug, Clone, Copy)]
pub struct InPlace {
    /// Index of the `Raw` member.
    pub member: usize,
    /// Index of the string member that picks its specs.
    pub selector: usize,
    /// The member's specs for a selector value; `None` leaves it raw.
    pub specs_for: fn(&str) -> Option<&'static [FieldSpec]>,
}

/// The member read in place: its fields, and the selector value they were
/// read for (a later repeat of the selector may have replaced it).
#[derive(Debug)]
pub struct ReadInPlace<'a> {
    pub selector: Cow<'a, str>,
    pub fields: Vec<FieldValue<'a>>,
}

type ObjectRead<'a> = (Vec<FieldValue<'a>>, Option<ReadInPlace<'a>>);

/// [`read_object_str`], reading `in_place`'s member in place when the
/// selector comes before it and names known specs (its slot is then
/// [`FieldValue::InPlace`]); otherwise the member stays raw. Errors are
/// those of reading the member's fields too, named for the outer specs:
/// on an error, read again with [`read_object_str`] for its message.
pub fn read_object_in_place<'a>(
    json: &'a str,
    specs: &'static [FieldSpec],
    in_place: InPlace,
) -> Result<ObjectRead<'a>, ObjectError> {
    read_with(
        serde_json::Deserializer::from_str(json),
        specs,
        Some(in_place),
    )
}

/// Reading an object failed: bad JSON, not an object, or a bad field.
#[derive(Debug)]
pub enum ObjectError {
    Syntax(String),
    NotObject(String),
    Field(FieldFailure),
}

fn classify(e: serde_json::Error, specs: &'static [FieldSpec]) -> ObjectError {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix(FIELD_MARK) {
        // The visitor encodes "index\u{1}reason" so the field survives serde's error type.
        if let Some((index, reason)) = rest.split_once('\u{1}')
            && let Some(spec) = index.parse::<usize>().ok().and_then(|i| specs.get(i))
        {
            return ObjectError::Field(FieldFailure {
                field: spec.name,
                reason: strip_position(reason),
            });
        }
    }
    if e.is_syntax() || e.is_eof() {
        ObjectError::Syntax(msg)
    } else {
        ObjectError::NotObject(msg)
    }
}

const FIELD_MARK: &str = "\u{2}field:";

fn strip_position(reason: &str) -> String {
    match reason.find(" at line ") {
        Some(i) => reason[..i].to_string(),
        None => reason.to_string(),
    }
}

struct ObjectSeed {
    specs: &'static [FieldSpec],
    in_place: Option<InPlace>,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Result<ObjectRead<'de>, FieldFailure>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(ObjectVisitor {
            specs: self.specs,
            in_place: self.in_place,
        })
    }
}

struct ObjectVisitor {
    specs: &'static [FieldSpec],
    in_place: Option<InPlace>,
}

impl ObjectVisitor {
    /// The specs to read member `i` in place with, when it is the in-place
    /// member and its selector has been read.
    fn in_place_specs<'a>(
        &self,
        i: usize,
        values: &[FieldValue<'a>],
    ) -> Option<(Cow<'a, str>, &'static [FieldSpec])> {
        let p = self.in_place.filter(|p| p.member == i)?;
        let selector = values.get(p.selector)?.as_str()?;
        let specs = (p.specs_for)(selector)?;
        match &values[p.selector] {
            FieldValue::Str(s) => Some((s.clone(), specs)),
            _ => None,
        }
    }
}

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Result<ObjectRead<'de>, FieldFailure>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = vec![FieldValue::Missing; self.specs.len()];
        // Producers write members in one order, usually the spec's: the
        // spec after the last match is tried first.
        let mut next = 0;
        let mut read = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let found = match self.specs.get(next) {
                Some(s) if same_name(s.name, &key) => Some(next),
                _ => position(self.specs, &key),
            };
            match found {
                Some(i) => {
                    next = i + 1;
                    if let Some((selector, specs)) = self.in_place_specs(i, &values) {
                        let seed = ObjectSeed {
                            specs,
                            in_place: None,
                        };
                        match map.next_value_seed(seed)? {
                            Ok((fields, _)) => {
                                values[i] = FieldValue::InPlace;
                                read = Some(ReadInPlace { selector, fields });
                            }
                            Err(failure) => return Ok(Err(failure)),
                        }
                        continue;
                    }
                    let spec = self.specs[i];
                    values[i] = map.next_value_seed(ValueSeed { spec, index: i })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Ok((values, read)))
    }
}

/// The spec named `key`, for a member out of the expected order.
fn position(specs: &[FieldSpec], key: &str) -> Option<usize> {
    specs.iter().position(|s| same_name(s.name, key))
}

/// Field names are short: compared byte by byte inline, which beats a
/// `memcmp` call, after the length and first byte rule out most specs.
fn same_name(name: &str, key: &str) -> bool {
    let (name, key) = (name.as_bytes(), key.as_bytes());
    name.len() == key.len()
        && name.first() == key.first()
        && name.iter().zip(key).all(|(a, b)| a == b)
}

struct ValueSeed {
    spec: FieldSpec,
    index: usize,
}

fn field_error<E: de::Error>(index: usize, reason: impl fmt::Display) -> E {
    E::custom(format!("{FIELD_MARK}{index}\u{1}{reason}"))
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = FieldValue<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let (spec, index) = (self.spec, self.index);
        match spec.ty {
            // Capturing a raw value fails only on broken JSON: left as a
            // syntax error, not blamed on the field.
            FieldType::Raw => Ok(FieldValue::Raw(
                <&'de RawValue as serde::Deserialize>::deserialize(d)?,
            )),
            FieldType::Decimal | FieldType::OptDecimal => {
                let raw = <&'de RawValue as serde::Deserialize>::deserialize(d)?;
                let text = raw.get();
                if text == "null" {
                    return Ok(FieldValue::Missing);
                }
                let text = text
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .unwrap_or(text);
                parse_decimal(text)
                    .map(FieldValue::Decimal)
                    .map_err(|reason| field_error(index, reason))
            }
            _ => d.deserialize_any(ScalarVisitor { spec, index }),
        }
    }
}

struct ScalarVisitor {
    spec: FieldSpec,
    index: usize,
}

impl ScalarVisitor {
    fn expected(&self) -> &'static str {
        match self.spec.ty {
            FieldType::Str | FieldType::Enum(_) => "expected a string",
            FieldType::OptStr | FieldType::OptEnum(_) => "expected a string or null",
            FieldType::Count => "expected a non-negative integer",
            FieldType::OptCount => "expected a non-negative integer or null",
            FieldType::Int => "expected an integer",
            FieldType::OptFloat => "expected a number or null",
            _ => "unexpected value",
        }
    }

    fn wrong<E: de::Error>(&self, got: &str) -> E {
        field_error(self.index, format!("{}, got {got}", self.expected()))
    }

    fn int<E: de::Error>(self, v: i64) -> Result<FieldValue<'static>, E> {
        match self.spec.ty {
            FieldType::Count | FieldType::OptCount if v < 0 => Err(field_error(
                self.index,
                format!("must not be negative, got {v}"),
            )),
            FieldType::Count | FieldType::OptCount | FieldType::Int => Ok(FieldValue::Int(v)),
            FieldType::OptFloat => Ok(FieldValue::Float(v as f64)),
            _ => Err(self.wrong("a number")),
        }
    }

    fn string<'a, E: de::Error>(self, s: Cow<'a, str>) -> Result<FieldValue<'a>, E> {
        match self.spec.ty {
            FieldType::Str | FieldType::OptStr => Ok(FieldValue::Str(s)),
            FieldType::Enum(allowed) | FieldType::OptEnum(allowed) => {
                if allowed.contains(&s.as_ref()) {
                    Ok(FieldValue::Str(s))
                } else {
                    Err(field_error(
                        self.index,
                        format!("must be one of {}, got {s:?}", allowed.join("/")),
                    ))
                }
            }
            _ => Err(self.wrong("a string")),
        }
    }
}

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = FieldValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expected())
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.string(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.string(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.string(Cow::Owned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.int(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        match i64::try_from(v) {
            Ok(v) => self.int(v),
            Err(_) => Err(field_error(self.index, format!("{v} is too large"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        match self.spec.ty {
            FieldType::OptFloat => Ok(FieldValue::Float(v)),
            _ => Err(self.wrong(&format!("the number {v}"))),
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.wrong("a boolean"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.spec.ty.required() {
            Err(self.wrong("null"))
        } else {
            Ok(FieldValue::Missing)
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.wrong("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.wrong("an object"))
    }
}

/// Fails on the first required field that is missing or an empty string.
pub fn check_required(specs: &[FieldSpec], values: &[FieldValue<'_>]) -> Result<(), FieldFailure> {
    for (spec, value) in specs.iter().zip(values) {
        if !spec.ty.required() {
            continue;
        }
        match value {
            FieldValue::Missing => {
                return Err(FieldFailure {
                    field: spec.name,
                    reason: "is required".into(),
                });
            }
            FieldValue::Str(s) if s.is_empty() => {
                return Err(FieldFailure {
                    field: spec.name,
                    reason: "must not be empty".into(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}
