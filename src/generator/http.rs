//! Posting generated traffic to `POST /v1/events` as NDJSON batches, paced to
//! a rate, with retries on 503/429/connection errors (a retried batch that had
//! landed is dropped again by dedup, so retries never double-count).

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Deserialize;
use tracing::warn;

use super::produce::{Pacer, ProduceError, ProduceOptions, ProduceReport};
use super::traffic::Generator;

#[derive(Deserialize)]
struct IngestAnswer {
    accepted: u64,
    #[serde(default)]
    rejected: Vec<serde_json::Value>,
}

const MAX_ATTEMPTS: u32 = 30;

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Bytes,
) -> Result<(IngestAnswer, u32), ProduceError> {
    let mut backoff = Duration::from_millis(100);
    let mut last = String::new();
    for attempt in 1..=MAX_ATTEMPTS {
        let mut request = client
            .post(url)
            .header("content-type", "application/x-ndjson")
            .body(body.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let sent = request.send().await;
        match sent {
            Ok(resp) => {
                let status = resp.status();
                if status.is_server_error() || status.as_u16() == 429 {
                    last = format!("HTTP {status}");
                } else {
                    let text = resp.text().await.unwrap_or_default();
                    return match serde_json::from_str::<IngestAnswer>(&text) {
                        Ok(answer) => Ok((answer, attempt - 1)),
                        Err(_) => Err(ProduceError::Refused {
                            url: url.to_string(),
                            status: status.as_u16(),
                            body: text,
                        }),
                    };
                }
            }
            Err(e) => last = e.to_string(),
        }
        warn!(attempt, error = %last, "ingest request failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    Err(ProduceError::GaveUp {
        url: url.to_string(),
        attempts: MAX_ATTEMPTS,
        reason: last,
    })
}

/// Generates and posts to the server at `url` until `count` events or
/// `duration` is reached, calling `progress` after each answered request.
pub async fn produce_http(
    generator: &mut Generator,
    url: &str,
    opts: &ProduceOptions,
    mut progress: impl FnMut(&ProduceReport),
) -> Result<ProduceReport, ProduceError> {
    let client = reqwest::Client::new();
    let url = format!("{}/v1/events", url.trim_end_matches('/'));
    let mut pacer = Pacer::new(opts);
    let mut report = ProduceReport::default();
    let mut in_flight = FuturesUnordered::new();
    let mut exhausted = false;
    loop {
        if !exhausted && in_flight.len() < opts.concurrency.max(1) {
            match pacer.next_batch(generator).await {
                Some(batch) => {
                    let mut body = BytesMut::new();
                    for g in batch {
                        body.put_slice(&g.bytes);
                        body.put_u8(b'\n');
                    }
                    let client = client.clone();
                    let url = url.clone();
                    let token = opts.token.clone();
                    in_flight.push(async move {
                        post(&client, &url, token.as_deref(), body.freeze()).await
                    });
                    continue;
                }
                None => exhausted = true,
            }
        }
        let Some(answered) = in_flight.next().await else {
            break;
        };
        let (answer, retries) = answered?;
        report.accepted += answer.accepted;
        report.rejected += answer.rejected.len() as u64;
        report.requests += 1;
        report.retries += u64::from(retries);
        report.refresh(&pacer, generator);
        progress(&report);
    }
    report.refresh(&pacer, generator);
    Ok(report)
}
