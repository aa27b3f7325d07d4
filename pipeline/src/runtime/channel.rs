//! Bounded channels whose capacity is counted in rows, not messages, so a
//! slow consumer slows its producer and memory stays flat whatever the batch
//! size (docs/architecture.md, "The runtime").

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::message::Message;

struct Envelope {
    message: Message,
    /// Returned to the channel's budget when the receiver takes the message.
    _permit: Option<OwnedSemaphorePermit>,
}

/// Sending half; cheap to clone.
#[derive(Clone)]
pub struct RowSender {
    tx: mpsc::UnboundedSender<Envelope>,
    budget: Arc<Semaphore>,
    capacity: usize,
}

/// Receiving half.
pub struct RowReceiver {
    rx: mpsc::UnboundedReceiver<Envelope>,
    budget: Arc<Semaphore>,
    capacity: usize,
}

/// The receiver is gone: the downstream task ended.
#[derive(Debug, thiserror::Error)]
#[error("the downstream task has stopped")]
pub struct ChannelClosed;

/// A channel holding at most `capacity_rows` rows in flight. A batch larger
/// than the capacity is let through alone rather than blocking forever.
pub fn row_channel(capacity_rows: usize) -> (RowSender, RowReceiver) {
    let capacity = capacity_rows.clamp(1, Semaphore::MAX_PERMITS);
    let budget = Arc::new(Semaphore::new(capacity));
    let (tx, rx) = mpsc::unbounded_channel();
    (
        RowSender {
            tx,
            budget: budget.clone(),
            capacity,
        },
        RowReceiver {
            rx,
            budget,
            capacity,
        },
    )
}

impl RowSender {
    /// Waits until the channel has room for the message's rows, then sends it.
    /// Control messages take no room, so barriers never wait behind a budget.
    pub async fn send(&self, message: Message) -> Result<(), ChannelClosed> {
        let rows = message.rows().min(self.capacity);
        let permit = if rows == 0 {
            None
        } else {
            let n = u32::try_from(rows).unwrap_or(u32::MAX);
            Some(
                self.budget
                    .clone()
                    .acquire_many_owned(n)
                    .await
                    .map_err(|_| ChannelClosed)?,
            )
        };
        self.tx
            .send(Envelope {
                message,
                _permit: permit,
            })
            .map_err(|_| ChannelClosed)
    }

    /// Rows currently queued.
    pub fn queued_rows(&self) -> usize {
        self.capacity - self.budget.available_permits()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl RowReceiver {
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await.map(|e| e.message)
    }

    pub fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Message>> {
        self.rx.poll_recv(cx).map(|o| o.map(|e| e.message))
    }

    pub fn queued_rows(&self) -> usize {
        self.capacity - self.budget.available_permits()
    }

    /// Rows the channel holds before its sender waits.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::message::Batch;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use std::time::Duration;

    fn batch(n: i64) -> Message {
        let rows =
            RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from_iter_values(0..n)) as _)])
                .unwrap();
        Message::Batch(Batch::new("t", rows))
    }

    #[tokio::test]
    async fn blocks_when_rows_exceed_capacity_and_resumes_on_receive() {
        let (tx, mut rx) = row_channel(100);
        tx.send(batch(60)).await.unwrap();
        assert_eq!(tx.queued_rows(), 60);
        let blocked = tokio::time::timeout(Duration::from_millis(50), tx.send(batch(60))).await;
        assert!(blocked.is_err(), "second batch must wait for room");
        // Barriers are never held back by the row budget.
        tx.send(Message::Barrier(1)).await.unwrap();
        assert_eq!(rx.recv().await.unwrap().rows(), 60);
        assert!(matches!(rx.recv().await, Some(Message::Barrier(1))));
        tx.send(batch(60)).await.unwrap();
        assert_eq!(rx.queued_rows(), 60);
    }

    #[tokio::test]
    async fn oversized_batch_passes_alone() {
        let (tx, mut rx) = row_channel(10);
        tx.send(batch(500)).await.unwrap();
        assert_eq!(rx.recv().await.unwrap().rows(), 500);
    }
}
