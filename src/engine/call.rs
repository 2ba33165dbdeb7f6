//! Calling the function until it has run: throttles and errors before the function runs are
//! waited out with backoff and never count as attempts (AWS's accounting).

use super::context::MappingCtx;
use super::settings::RetryBackoff;
use crate::invoke::{InvokeError, InvokeResponse};
use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use std::time::{Duration, Instant};

/// Why [`call_until_ran`] returned without a response.
#[derive(Debug, PartialEq, Eq)]
pub enum NotRan {
    /// The deadline (the oldest record's age limit) passed first.
    Expired,
    /// Shutdown.
    Cancelled,
}

/// An endless, jittered exponential backoff.
pub fn backoff(b: &RetryBackoff) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(b.min)
        .with_max_delay(b.max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Sleeps for `d`, cut short by shutdown or `deadline`. Returns false on shutdown.
pub async fn pause(ctx: &MappingCtx, d: Duration, deadline: Option<Instant>) -> bool {
    let d = match deadline {
        Some(dl) => d.min(dl.saturating_duration_since(Instant::now())),
        None => d,
    };
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = ctx.shutdown.cancelled() => false,
    }
}

pub async fn call_until_ran(
    ctx: &MappingCtx,
    payload: Bytes,
    records: u64,
    backoff_settings: &RetryBackoff,
    deadline: Option<Instant>,
) -> Result<InvokeResponse, NotRan> {
    let mut delays = backoff(backoff_settings);
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(NotRan::Expired);
        }
        if ctx.shutdown.is_cancelled() {
            return Err(NotRan::Cancelled);
        }
        ctx.metrics.concurrent_executions(1);
        let started = Instant::now();
        let result = ctx.invoker.invoke(payload.clone()).await;
        ctx.metrics.concurrent_executions(-1);
        let wait = match result {
            Ok(response) => {
                ctx.metrics.invocation(started.elapsed());
                ctx.metrics.invoked_events(records);
                return Ok(response);
            }
            Err(InvokeError::Throttled { retry_after }) => {
                ctx.metrics.throttle();
                let next = delays.next().unwrap_or(backoff_settings.max);
                retry_after.map_or(next, |r| r.max(next))
            }
            Err(e @ (InvokeError::Unavailable(_) | InvokeError::Rejected(_))) => {
                // Rejected requests reach here only when the caller did not handle them:
                // treat them like an outage rather than lose the batch.
                ctx.metrics.invoke_unavailable();
                tracing::warn!(mapping = %ctx.name, error = %e, "function not reachable; retrying");
                ctx.status.set_error(Some(e.to_string()));
                delays.next().unwrap_or(backoff_settings.max)
            }
        };
        if !pause(ctx, wait, deadline).await {
            return Err(NotRan::Cancelled);
        }
    }
}
