//! Kafka plumbing against the real broker (tansu): topics are created as
//! configured, and `somaflow produce --to kafka` lands every generated record
//! in its kind's topic, keyed by tenant, through the idempotent producer.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

use crate::support::{BIN, EVENT_TABLES, kafka_broker};

fn somaflow(prefix: &str, brokers: &str, args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(args)
        .env("SOMAFLOW_KAFKA__BROKERS", brokers)
        .env("SOMAFLOW_KAFKA__TOPIC_PREFIX", prefix)
        .env("SOMAFLOW_KAFKA__PARTITIONS", "4")
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Messages in each partition of `topic` (high watermark; topics are new).
fn partition_counts(consumer: &BaseConsumer, topic: &str) -> Vec<i64> {
    (0..4)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            high - low
        })
        .collect()
}

#[test]
fn topics_are_created_and_produced_records_land_in_their_kind_topic() {
    let brokers = kafka_broker();
    let prefix = format!(
        "it{}-{}.",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );

    let (ok, stdout, stderr) = somaflow(&prefix, &brokers, &["topics", "create"]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.matches("created (4 partitions)").count(),
        7,
        "{stdout}"
    );
    let (ok, stdout, stderr) = somaflow(&prefix, &brokers, &["topics", "create"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.matches("already exists").count(), 7, "{stdout}");

    let (ok, stdout, stderr) = somaflow(
        &prefix,
        &brokers,
        &[
            "produce", "--to", "kafka", "--count", "3000", "--seed", "11", "--json",
        ],
    );
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["accepted"], 3000,
        "every record acknowledged by the broker"
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("{prefix}check"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut per_topic = BTreeMap::new();
    for table in EVENT_TABLES {
        let counts = partition_counts(&consumer, &format!("{prefix}{table}"));
        per_topic.insert(table, counts);
    }
    let total: i64 = per_topic.values().flatten().sum();
    assert_eq!(
        total, 3000,
        "all records, duplicates and malformed ones included: {per_topic:?}"
    );
    for table in EVENT_TABLES {
        let valid = report["stats"]["kinds"][table]["count"].as_i64().unwrap();
        let got: i64 = per_topic[table].iter().sum();
        assert!(
            got >= valid,
            "{table}: {got} records for {valid} distinct valid events"
        );
        assert!(
            per_topic[table].iter().filter(|c| **c > 0).count() > 1,
            "{table}: tenant keys spread over partitions"
        );
    }
    let (dl_low, dl_high) = consumer
        .fetch_watermarks(&format!("{prefix}dead_letters"), 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(dl_high - dl_low, 0, "the producer writes no dead letters");

    // The key is the tenant the event names. (Partitions are assigned
    // directly: no group join, no rebalance wait.)
    let mut partitions = TopicPartitionList::new();
    for p in 0..4 {
        partitions
            .add_partition_offset(&format!("{prefix}billing_events"), p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&partitions).unwrap();
    let mut checked = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while checked < 20 && std::time::Instant::now() < deadline {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let event: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        assert_eq!(
            m.key().unwrap(),
            event["tenantid"].as_str().unwrap().as_bytes()
        );
        assert_eq!(event["type"], "soma.billing.v1");
        checked += 1;
    }
    assert_eq!(checked, 20, "read back billing events from the topic");
}
