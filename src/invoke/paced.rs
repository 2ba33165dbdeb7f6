//! `max_invocations_per_second`: an invoker that spaces the calls of a whole mapping evenly.
//!
//! A load test drives a function at a chosen rate; every shard, lane, retry and bisection of
//! the mapping shares one pace. Calls are spaced by 1/rate with no burst: after an idle spell
//! the next call goes at once, the one after waits a full interval. A call waiting for its slot
//! holds its batch (and, for streams, its lane); nothing is dropped or reordered.

use super::{InvokeError, InvokeResponse, Invoker};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Hands out evenly spaced start times.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    /// The earliest start of the next call.
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// `rate` calls per second; validation keeps it finite and positive.
    pub fn new(rate: f64) -> Self {
        Pacer { interval: Duration::from_secs_f64(1.0 / rate), next: Mutex::new(None) }
    }

    /// Waits for this call's slot. Slots are taken in call order, so a waiter is never passed.
    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Wraps an invoker; each call first waits for its slot.
pub struct PacedInvoker {
    inner: Arc<dyn Invoker>,
    pacer: Pacer,
}

impl PacedInvoker {
    pub fn new(inner: Arc<dyn Invoker>, rate: f64) -> Self {
        PacedInvoker { inner, pacer: Pacer::new(rate) }
    }
}

#[async_trait]
impl Invoker for PacedInvoker {
    async fn invoke(&self, payload: Bytes) -> Result<InvokeResponse, InvokeError> {
        self.pacer.wait().await;
        self.inner.invoke(payload).await
    }

    fn function_arn(&self) -> &str {
        self.inner.function_arn()
    }

    fn max_payload_bytes(&self) -> usize {
        self.inner.max_payload_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_by_the_interval_without_burst() {
        let pacer = Arc::new(Pacer::new(4.0));
        let start = Instant::now();
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let p = pacer.clone();
            calls.spawn(async move {
                p.wait().await;
                Instant::now()
            });
        }
        let mut at: Vec<Duration> = Vec::new();
        while let Some(t) = calls.join_next().await {
            at.push(t.unwrap() - start);
        }
        at.sort();
        let ms: Vec<u128> = at.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![0, 250, 500, 750, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_spell_does_not_build_up_a_burst() {
        let pacer = Pacer::new(2.0);
        pacer.wait().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let start = Instant::now();
        pacer.wait().await;
        assert_eq!(Instant::now() - start, Duration::ZERO, "first call after idling goes at once");
        pacer.wait().await;
        assert_eq!(Instant::now() - start, Duration::from_millis(500), "the next one waits a full interval");
    }
}
