//! One process's link to Redis, shared by enrich and budget: connects
//! lazily, bounds every command by a timeout, and after a failure stops
//! trying for a short pause so a down Redis costs the pipeline nothing but
//! stale data (never a stall). Keeps `somaflow_redis_up` current.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use somaflow_pipeline::metrics::{metrics, node};
use tokio::sync::Mutex;

use super::error::RedisLinkError;

/// A cheap-to-clone handle; every clone shares the connection and its state.
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    client: redis::Client,
    timeout: Duration,
    connection: Mutex<Option<ConnectionManager>>,
    /// No attempt before this instant after a failure.
    paused_until: std::sync::Mutex<Option<Instant>>,
    up: AtomicBool,
}

/// How long to leave Redis alone after a failed command.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(1_000);

impl RedisLink {
    pub fn new(url: &str, timeout: Duration) -> Result<RedisLink, RedisLinkError> {
        let client = redis::Client::open(url).map_err(|e| RedisLinkError::BadUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        // Up until a command says otherwise, as the link's own flag.
        metrics().redis_up.set(1);
        Ok(RedisLink {
            inner: Arc::new(Inner {
                url: url.to_string(),
                client,
                timeout,
                connection: Mutex::new(None),
                paused_until: std::sync::Mutex::new(None),
                up: AtomicBool::new(true),
            }),
        })
    }

    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Whether the last command answered.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    fn unavailable(&self, reason: impl std::fmt::Display) -> RedisLinkError {
        RedisLinkError::Unavailable {
            url: self.inner.url.clone(),
            reason: reason.to_string(),
        }
    }

    fn paused(&self) -> bool {
        let paused = self
            .inner
            .paused_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        paused.is_some_and(|until| Instant::now() < until)
    }

    fn mark(&self, ok: bool, node_id: &str) {
        self.inner.up.store(ok, Ordering::Relaxed);
        metrics().redis_up.set(i64::from(ok));
        let mut paused = self
            .inner
            .paused_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *paused = (!ok).then(|| Instant::now() + PAUSE_AFTER_FAILURE);
        // Touched on success too: the node's series reads 0, not absent.
        let errors = metrics().redis_errors.get_or_create(&node(node_id));
        if !ok {
            errors.inc();
        }
    }

    /// Runs `command` against Redis within the timeout. Fails fast while
    /// paused after an earlier failure; `node_id` labels the error metric.
    pub async fn run<T, F, Fut>(&self, node_id: &str, command: F) -> Result<T, RedisLinkError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.paused() {
            return Err(self.unavailable("paused after an earlier failure"));
        }
        let attempt = async {
            let connection = {
                let mut slot = self.inner.connection.lock().await;
                match slot.as_ref() {
                    Some(c) => c.clone(),
                    None => {
                        let config = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(self.inner.timeout))
                            .set_response_timeout(Some(self.inner.timeout))
                            .set_number_of_retries(1);
                        let c = self
                            .inner
                            .client
                            .get_connection_manager_with_config(config)
                            .await
                            .map_err(|e| self.unavailable(e))?;
                        *slot = Some(c.clone());
                        c
                    }
                }
            };
            command(connection).await.map_err(|e| self.unavailable(e))
        };
        let result = match tokio::time::timeout(self.inner.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(self.unavailable(format!(
                "no answer within {} ms",
                self.inner.timeout.as_millis()
            ))),
        };
        self.mark(result.is_ok(), node_id);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port nothing listens on.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap()
    }

    #[test]
    fn a_url_that_is_not_redis_is_refused_at_once() {
        assert!(matches!(
            RedisLink::new("not a url", Duration::from_millis(100)),
            Err(RedisLinkError::BadUrl { .. })
        ));
    }

    #[tokio::test]
    async fn a_redis_that_does_not_answer_fails_then_pauses_instead_of_stalling() {
        let url = format!("redis://127.0.0.1:{}", closed_port());
        let link = RedisLink::new(&url, Duration::from_millis(300)).unwrap();
        assert!(link.is_up(), "up until a command says otherwise");
        let ping = |mut c: ConnectionManager| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        };
        let started = Instant::now();
        let first = link.run("test", ping).await;
        assert!(
            matches!(first, Err(RedisLinkError::Unavailable { .. })),
            "{first:?}"
        );
        assert!(!link.is_up());
        let second = link.run("test", ping).await;
        match second {
            Err(RedisLinkError::Unavailable { reason, .. }) => {
                assert!(reason.contains("paused"), "{reason}")
            }
            other => panic!("expected a paused failure, got {other:?}"),
        }
        // Bounded by the timeout, not by the operating system's connect retries.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
