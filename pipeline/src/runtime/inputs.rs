//! A task's inputs merged into one stream: barriers aligned across inputs
//! (Chandy–Lamport), watermarks as the minimum over inputs, stop when all stop.

use std::future::poll_fn;
use std::task::Poll;

use super::channel::RowReceiver;
use super::message::{Batch, Message, Watermark};

/// What a task sees next from its inputs.
#[derive(Debug)]
pub enum InputEvent {
    Batch(Batch),
    Watermark(Watermark),
    /// Every live input has delivered this barrier.
    Barrier(u64),
    /// Every input has stopped.
    Stop,
}

pub struct Inputs {
    receivers: Vec<RowReceiver>,
    /// Input delivered the pending barrier and is held until the others do.
    blocked: Vec<bool>,
    stopped: Vec<bool>,
    watermarks: Vec<Option<Watermark>>,
    pending_barrier: Option<u64>,
    emitted_watermark: Option<Watermark>,
    next_start: usize,
}

impl Inputs {
    pub fn new(receivers: Vec<RowReceiver>) -> Self {
        let n = receivers.len();
        Self {
            receivers,
            blocked: vec![false; n],
            stopped: vec![false; n],
            watermarks: vec![None; n],
            pending_barrier: None,
            emitted_watermark: None,
            next_start: 0,
        }
    }

    /// Rows queued on all inputs (backpressure gauge).
    pub fn queued_rows(&self) -> usize {
        self.receivers.iter().map(|r| r.queued_rows()).sum()
    }

    /// Rows all inputs hold before their producers wait.
    pub fn capacity_rows(&self) -> usize {
        self.receivers.iter().map(RowReceiver::capacity).sum()
    }

    pub async fn next(&mut self) -> InputEvent {
        loop {
            if self.stopped.iter().all(|s| *s) {
                return InputEvent::Stop;
            }
            let (i, message) = self.poll_any().await;
            match message {
                Some(Message::Batch(b)) => return InputEvent::Batch(b),
                Some(Message::Watermark(w)) => {
                    self.watermarks[i] = Some(self.watermarks[i].map_or(w, |old| old.max(w)));
                    if let Some(w) = self.advance_watermark() {
                        return InputEvent::Watermark(w);
                    }
                }
                Some(Message::Barrier(epoch)) => {
                    self.blocked[i] = true;
                    self.pending_barrier = Some(epoch);
                    if let Some(e) = self.release_barrier() {
                        return InputEvent::Barrier(e);
                    }
                }
                Some(Message::Stop) | None => {
                    self.stopped[i] = true;
                    self.blocked[i] = false;
                    if let Some(e) = self.release_barrier() {
                        return InputEvent::Barrier(e);
                    }
                    if let Some(w) = self.advance_watermark() {
                        return InputEvent::Watermark(w);
                    }
                }
            }
        }
    }

    /// The barrier is complete once every input still running has sent it.
    fn release_barrier(&mut self) -> Option<u64> {
        let epoch = self.pending_barrier?;
        let aligned = self
            .blocked
            .iter()
            .zip(&self.stopped)
            .all(|(b, s)| *b || *s);
        if !aligned {
            return None;
        }
        self.blocked.iter_mut().for_each(|b| *b = false);
        self.pending_barrier = None;
        Some(epoch)
    }

    fn advance_watermark(&mut self) -> Option<Watermark> {
        let mut min: Option<Watermark> = None;
        for (w, stopped) in self.watermarks.iter().zip(&self.stopped) {
            if *stopped {
                continue;
            }
            let w = (*w)?;
            min = Some(min.map_or(w, |m| m.min(w)));
        }
        let min = min?;
        if self.emitted_watermark.is_some_and(|e| e >= min) {
            return None;
        }
        self.emitted_watermark = Some(min);
        Some(min)
    }

    async fn poll_any(&mut self) -> (usize, Option<Message>) {
        let n = self.receivers.len();
        let start = self.next_start;
        self.next_start = (start + 1) % n.max(1);
        poll_fn(|cx| {
            for k in 0..n {
                let i = (start + k) % n;
                if self.blocked[i] || self.stopped[i] {
                    continue;
                }
                if let Poll::Ready(m) = self.receivers[i].poll_recv(cx) {
                    return Poll::Ready((i, m));
                }
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::channel::row_channel;

    #[tokio::test]
    async fn aligns_barriers_and_holds_the_early_input() {
        let (a_tx, a_rx) = row_channel(10);
        let (b_tx, b_rx) = row_channel(10);
        let mut inputs = Inputs::new(vec![a_rx, b_rx]);
        a_tx.send(Message::Barrier(1)).await.unwrap();
        a_tx.send(Message::Watermark(99)).await.unwrap();
        b_tx.send(Message::Watermark(5)).await.unwrap();
        // b's watermark is seen, but a's post-barrier watermark is held back.
        b_tx.send(Message::Barrier(1)).await.unwrap();
        assert!(matches!(inputs.next().await, InputEvent::Barrier(1)));
        assert!(matches!(inputs.next().await, InputEvent::Watermark(5)));
        a_tx.send(Message::Stop).await.unwrap();
        b_tx.send(Message::Watermark(7)).await.unwrap();
        assert!(matches!(inputs.next().await, InputEvent::Watermark(7)));
        b_tx.send(Message::Stop).await.unwrap();
        assert!(matches!(inputs.next().await, InputEvent::Stop));
    }
}
