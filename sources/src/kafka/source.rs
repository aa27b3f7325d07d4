//! The pipeline's Kafka source (`type = "kafka"`): forwards the consumer
//! thread's batches, keeps each partition's position for checkpoints, and
//! commits those positions to Kafka once a checkpoint is durable, so the
//! group's lag is visible to Kafka tools. Positions come from checkpoints,
//! never from Kafka's committed offsets.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use somaflow_pipeline::checkpoint::{NodeCheckpoint, Positions, parse_shard};
use somaflow_pipeline::events::schema::RAW_TABLE;
use somaflow_pipeline::metrics::{PartitionLabels, metrics};
use somaflow_pipeline::runtime::{Batch, Committer, NodeError, Source, SourcePoll};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::feed::{FeedConsumer, PartitionBatch};

pub struct KafkaSource {
    inbox: mpsc::Receiver<PartitionBatch>,
    positions: Positions,
    committer: Arc<OffsetCommitter>,
}

impl KafkaSource {
    /// A source over the inbox of one assignment; `owned` are its shards.
    pub fn new(
        inbox: mpsc::Receiver<PartitionBatch>,
        consumer: Arc<FeedConsumer>,
        owned: BTreeSet<String>,
    ) -> Self {
        Self {
            inbox,
            positions: Positions::new(),
            committer: Arc::new(OffsetCommitter { consumer, owned }),
        }
    }
}

fn read_offset_gauge(shard: &str, next: i64) {
    if let Some((topic, partition)) = parse_shard(shard) {
        metrics()
            .kafka_read_offset
            .get_or_create(&PartitionLabels {
                topic: topic.to_string(),
                partition,
            })
            .set(next);
    }
}

#[async_trait]
impl Source for KafkaSource {
    async fn restore(&mut self, positions: &Positions) -> Result<(), NodeError> {
        // The consumer already starts each partition here (set at assignment).
        self.positions = positions.clone();
        for (s, p) in &self.positions {
            read_offset_gauge(s, *p);
        }
        Ok(())
    }

    async fn poll(&mut self) -> Result<SourcePoll, NodeError> {
        match tokio::time::timeout(Duration::from_millis(100), self.inbox.recv()).await {
            Ok(Some(batch)) => {
                read_offset_gauge(&batch.shard, batch.next_offset);
                self.positions.insert(batch.shard, batch.next_offset);
                Ok(SourcePoll::Batch(Batch::new(RAW_TABLE, batch.rows)))
            }
            // Closed: the assignment ended and this instance is being stopped.
            Ok(None) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(SourcePoll::Idle)
            }
            Err(_) => Ok(SourcePoll::Idle),
        }
    }

    fn position(&self) -> Positions {
        self.positions.clone()
    }

    fn committer(&self) -> Option<Arc<dyn Committer>> {
        Some(self.committer.clone())
    }
}

/// Commits checkpointed positions to Kafka (offset of the next record).
/// Only for lag visibility: a failed commit is logged, never fatal.
pub struct OffsetCommitter {
    consumer: Arc<FeedConsumer>,
    owned: BTreeSet<String>,
}

#[async_trait]
impl Committer for OffsetCommitter {
    async fn commit(&self, epoch: u64, checkpoint: &NodeCheckpoint) -> Result<(), NodeError> {
        let mut tpl = TopicPartitionList::new();
        for (s, offset) in &checkpoint.positions {
            if !self.owned.contains(s) {
                continue;
            }
            if let Some((topic, partition)) = parse_shard(s) {
                tpl.add_partition_offset(topic, partition, Offset::Offset(*offset))?;
            }
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        match self.consumer.commit(&tpl, CommitMode::Async) {
            Ok(()) => debug!(
                epoch,
                partitions = tpl.count(),
                "offsets committed to Kafka"
            ),
            Err(e) => {
                warn!(epoch, error = %e, "committing offsets to Kafka failed (lag metrics only)")
            }
        }
        Ok(())
    }

    async fn recover(&self, _checkpoint: Option<&NodeCheckpoint>) -> Result<(), NodeError> {
        Ok(())
    }
}
