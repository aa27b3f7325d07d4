//! `[kafka]`, the brokers and topics, and `[cluster]`, how a worker takes
//! part in a consumer group: the two sections of the Kafka connector.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use somaflow_pipeline::checkpoint::{is_valid_worker_id, parse_shard};
use somaflow_pipeline::config::{ConfigError, scalars_as_strings};
use somaflow_pipeline::events::EventKind;

/// The Kafka cluster: one topic per event kind plus dead letters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`
    pub brokers: String,
    /// Topic of a kind = prefix + table name (`soma.conversations`), unless
    /// `topics` names it.
    pub topic_prefix: String,
    /// Table → topic, overriding the prefix rule.
    pub topics: BTreeMap<String, String>,
    /// Defaults to prefix + `dead_letters`.
    pub dead_letter_topic: Option<String>,
    /// Partitions `somaflow topics create` gives each topic.
    pub partitions: i32,
    /// Extra librdkafka settings, passed through as they are (numbers and
    /// booleans too, as `SOMAFLOW_KAFKA__CLIENT__…` overrides produce them).
    #[serde(deserialize_with = "scalars_as_strings")]
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:19092".into(),
            topic_prefix: "soma.".into(),
            topics: Default::default(),
            dead_letter_topic: None,
            partitions: 8,
            client: Default::default(),
        }
    }
}

impl KafkaConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for table in self.topics.keys() {
            if EventKind::from_table(table).is_none() {
                return Err(ConfigError::key(
                    format!("kafka.topics.{table}"),
                    "not an event table; use conversations, policy_decisions, capsule_executions, workflow_executions, marketplace_transactions or billing_events",
                ));
            }
        }
        if self.partitions < 1 {
            return Err(ConfigError::key("kafka.partitions", "must be at least 1"));
        }
        Ok(())
    }

    /// The topic events of `kind` go to.
    pub fn topic(&self, kind: EventKind) -> String {
        self.topics
            .get(kind.table())
            .cloned()
            .unwrap_or_else(|| format!("{}{}", self.topic_prefix, kind.table()))
    }

    /// Every configured topic: one per kind, then dead letters.
    pub fn all_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = EventKind::ALL.iter().map(|k| self.topic(*k)).collect();
        topics.push(self.dead_letter_topic());
        topics
    }

    pub fn dead_letter_topic(&self) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{}dead_letters", self.topic_prefix))
    }
}

/// How a worker gets its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterMode {
    /// A consumer group spreads partitions over the running workers.
    Group,
    /// Fixed partitions (`cluster.partitions`), positions only from checkpoints.
    Assign,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This worker's name: its folder in the shared checkpoint store and its
    /// staging folder in the lake. Must stay the same across restarts.
    /// Default: the host name.
    pub worker_id: Option<String>,
    pub mode: ClusterMode,
    /// Consumer group of `group` mode (offsets are committed under it in both modes).
    pub group_id: String,
    /// `assign` mode: `topic@partition` entries; empty = every partition of
    /// every kind topic.
    pub partitions: Vec<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            worker_id: None,
            mode: ClusterMode::Group,
            group_id: "somaflow".into(),
            partitions: Vec::new(),
        }
    }
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.group_id.is_empty() {
            return Err(ConfigError::key("cluster.group_id", "must not be empty"));
        }
        if let Some(p) = self.partitions.iter().find(|p| parse_shard(p).is_none()) {
            return Err(ConfigError::key(
                "cluster.partitions",
                format!("{p:?} is not `topic@partition`, e.g. \"soma.conversations@0\""),
            ));
        }
        if let Some(id) = &self.worker_id
            && !is_valid_worker_id(id)
        {
            return Err(ConfigError::key(
                "cluster.worker_id",
                format!("{id:?} must use only letters, digits, `-`, `_` or `.`"),
            ));
        }
        Ok(())
    }

    /// The configured worker id, or the host name.
    pub fn worker_id(&self) -> String {
        self.worker_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_default();
            let host: String = host
                .trim()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if host.is_empty() {
                "worker".into()
            } else {
                host
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(result: Result<(), ConfigError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn topics_follow_the_prefix_unless_named() {
        let mut kafka = KafkaConfig::default();
        assert_eq!(kafka.topic(EventKind::Conversation), "soma.conversations");
        assert_eq!(kafka.dead_letter_topic(), "soma.dead_letters");
        kafka
            .topics
            .insert("conversations".into(), "llm-calls".into());
        kafka.dead_letter_topic = Some("dlq".into());
        assert_eq!(kafka.topic(EventKind::Conversation), "llm-calls");
        let all = kafka.all_topics();
        assert_eq!(all.len(), EventKind::ALL.len() + 1);
        assert_eq!(
            (all[0].as_str(), all.last().map(String::as_str)),
            ("llm-calls", Some("dlq"))
        );
    }

    #[test]
    fn kafka_mistakes_are_named() {
        KafkaConfig::default().validate().unwrap();
        let mut kafka = KafkaConfig::default();
        kafka.topics.insert("chats".into(), "x".into());
        assert!(error(kafka.validate()).contains("kafka.topics.chats"));
        let kafka = KafkaConfig {
            partitions: 0,
            ..KafkaConfig::default()
        };
        assert!(error(kafka.validate()).contains("kafka.partitions"));
    }

    #[test]
    fn cluster_mistakes_are_named() {
        ClusterConfig::default().validate().unwrap();
        let bad = |c: ClusterConfig| error(c.validate());
        let e = bad(ClusterConfig {
            group_id: String::new(),
            ..ClusterConfig::default()
        });
        assert!(e.contains("cluster.group_id"), "{e}");
        let e = bad(ClusterConfig {
            partitions: vec!["soma.conversations".into()],
            ..ClusterConfig::default()
        });
        assert!(
            e.contains("cluster.partitions") && e.contains("topic@partition"),
            "{e}"
        );
        let e = bad(ClusterConfig {
            worker_id: Some("w 1".into()),
            ..ClusterConfig::default()
        });
        assert!(e.contains("cluster.worker_id"), "{e}");
        let named = ClusterConfig {
            worker_id: Some("w-1".into()),
            ..ClusterConfig::default()
        };
        assert_eq!(named.worker_id(), "w-1");
        assert!(!ClusterConfig::default().worker_id().is_empty());
    }
}
