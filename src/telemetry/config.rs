//! `[otel]`: OpenTelemetry trace export over OTLP/HTTP (protobuf). Off
//! unless `endpoint` is set.

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::{ConfigError, optional_http_url};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtelConfig {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`); spans
    /// go to `<endpoint>/v1/traces`. Empty: no export.
    pub endpoint: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Share of new traces recorded (0..=1); a trace a producer started
    /// follows the producer's sampling decision.
    pub sample_ratio: f64,
}

impl Default for OtelConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            service_name: "somaflow".to_string(),
            sample_ratio: 1.0,
        }
    }
}

impl OtelConfig {
    pub fn enabled(&self) -> bool {
        !self.endpoint.is_empty()
    }

    /// Where spans are posted.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint.trim_end_matches('/'))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        optional_http_url(
            "otel.endpoint",
            &self.endpoint,
            "an OTLP/HTTP collector: http://collector:4318",
        )?;
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(ConfigError::key(
                "otel.sample_ratio",
                format!("{} is not between 0 and 1", self.sample_ratio),
            ));
        }
        if self.service_name.trim().is_empty() {
            return Err(ConfigError::key("otel.service_name", "must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_must_be_a_url_and_the_ratio_a_share() {
        let bad = OtelConfig {
            endpoint: "collector:4318".into(),
            ..Default::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("otel.endpoint") && e.contains("http"), "{e}");
        let bad = OtelConfig {
            sample_ratio: 1.5,
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("otel.sample_ratio")
        );
        let good = OtelConfig {
            endpoint: "http://collector:4318/".into(),
            ..Default::default()
        };
        good.validate().unwrap();
        assert_eq!(good.traces_url(), "http://collector:4318/v1/traces");
        assert!(!OtelConfig::default().enabled());
    }
}
