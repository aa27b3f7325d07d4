//! How the query side's parameters read in `/openapi.json`: one schema
//! builder per kind of value, each from the rule or the list the server
//! checks ([`somaflow_pipeline::rules`], [`Meter`], [`Window`], …), used by
//! `#[param(schema_with = …)]` here and in `somaflow-api`. An enum lists
//! exactly the names the parser takes; a pattern is the rule's own. The
//! checks that go with them are [`crate::checks`].

use somaflow_pipeline::rules::{self, Rule};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Required, Schema};

use crate::marketplace::TopBy;
use crate::usage::request::{Dim, GROUP_BY, Meter, UsageParams, Window};

/// A query parameter. The params structs implement `IntoParams` with
/// these by hand: the derive drops a field's description and `required`
/// once its schema comes from a function.
pub fn query(
    name: &str,
    required: bool,
    description: &str,
    schema: impl Into<RefOr<Schema>>,
) -> Parameter {
    parameter(ParameterIn::Query, name, required, description, schema)
}

/// A path parameter (always required).
pub fn path(name: &str, description: &str, schema: impl Into<RefOr<Schema>>) -> Parameter {
    parameter(ParameterIn::Path, name, true, description, schema)
}

fn parameter(
    at: ParameterIn,
    name: &str,
    required: bool,
    description: &str,
    schema: impl Into<RefOr<Schema>>,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(at)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// A whole number from `min` to `max`.
pub fn integer(min: u64, max: u64) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(Some(max))
        .build()
}

/// A string following `rule`, described by the rule's words.
pub fn rule_schema(rule: &Rule) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(rule.pattern))
        .description(Some(rule.words))
        .build()
}

/// `schema`, or JSON `null` (an optional body field: serde reads `null`
/// as absent).
pub fn or_null(mut schema: Object) -> Object {
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    if let Some(names) = schema.enum_values.as_mut() {
        names.push(serde_json::Value::Null);
    }
    schema
}

/// A string that is one of `names`.
pub fn enum_schema<'a>(names: impl IntoIterator<Item = &'a str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .build()
}

pub fn id() -> Object {
    rule_schema(&rules::ID)
}

pub fn month() -> Object {
    rule_schema(&rules::MONTH)
}

pub fn time() -> Object {
    rule_schema(&rules::TIME)
}

pub fn minute() -> Object {
    rule_schema(&rules::MINUTE)
}

pub fn hour() -> Object {
    rule_schema(&rules::HOUR)
}

pub fn amount() -> Object {
    rule_schema(&rules::AMOUNT)
}

pub fn meter() -> Object {
    enum_schema(Meter::ALL.iter().map(|(n, _)| *n))
}

/// A non-empty list of meters.
pub fn meters() -> utoipa::openapi::schema::Array {
    ArrayBuilder::new()
        .items(meter())
        .min_items(Some(1))
        .build()
}

pub fn window() -> Object {
    enum_schema(Window::ALL.iter().map(|(n, _)| *n))
}

/// Every IANA time zone name chrono-tz knows.
pub fn tz() -> Object {
    enum_schema(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()))
}

pub fn group_by() -> Object {
    let mut schema = rule_schema(&GROUP_BY);
    schema.description = Some(format!(
        "Comma-separated, any of {}",
        Dim::ALL.map(|(n, _)| n).join(", ")
    ));
    schema
}

/// The stores a node can read; `/openapi.json` narrows it to the node's.
pub fn source() -> Object {
    enum_schema(crate::store::SOURCES)
}

pub fn top_by() -> Object {
    enum_schema(TopBy::ALL.iter().map(|(n, _)| *n))
}

/// `GET /v1/usage`'s parameters.
impl utoipa::IntoParams for UsageParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            query("meter", true, "What is counted", meter()),
            query("from", true, "Start, on a whole minute", minute()),
            query("to", true, "End (exclusive), on a whole minute", minute()),
            query(
                "window",
                false,
                "Window length (default hour); at most 50,000 windows per answer",
                window(),
            ),
            query(
                "tz",
                false,
                "IANA time zone of day and month windows (default UTC)",
                tz(),
            ),
            query(
                "group_by",
                false,
                "Comma-separated: tenant, user, model, provider, capsule",
                group_by(),
            ),
            query(
                "tenant",
                false,
                "One tenant's usage; a tenant's token sees its own tenant only, a token \
                 bound to none reads every tenant's when it names none",
                id(),
            ),
            query(
                "source",
                false,
                "Default: ClickHouse when the node writes it, else the lake",
                source(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_by_pattern_lists_every_dimension() {
        for (name, _) in Dim::ALL {
            assert!(GROUP_BY.matches(name), "{name}");
        }
        assert!(GROUP_BY.matches("model,tenant"));
        assert!(GROUP_BY.matches("model, tenant"));
        assert!(GROUP_BY.matches(""));
        assert!(!GROUP_BY.matches("model,,tenant"));
        assert!(!GROUP_BY.matches("colour"));
    }

    #[test]
    fn the_time_zone_enum_is_what_the_parser_takes() {
        let schema = serde_json::to_value(tz()).unwrap();
        let names = schema["enum"].as_array().unwrap();
        assert!(names.len() > 400);
        for name in names {
            let name = name.as_str().unwrap();
            assert!(name.parse::<chrono_tz::Tz>().is_ok(), "{name}");
        }
    }
}
