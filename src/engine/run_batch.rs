//! Running one batch of an ordered shard to the end: age cut, invoke, partial responses,
//! bisection, retries, and giving up to the failure destination (DESIGN.md §4). With a tumbling
//! window, each invocation carries the window's state and must return the next one.

use super::bisect::{Bisector, Outcome};
use super::call::{backoff, call_until_ran, pause, NotRan};
use super::context::MappingCtx;
use super::give_up::give_up;
use super::settings::StreamSettings;
use super::window::OpenWindow;
use crate::destination::record::{Condition, ResponseContext};
use crate::invoke::response::{batch_verdict, window_state, BatchVerdict};
use crate::invoke::InvokeResponse;
use bytes::Bytes;
use esmd_api::{time::now_ms, Record, ShardId};
use std::ops::Range;
use std::time::{Duration, Instant};

/// Shutdown interrupted the batch; records not reported finished are unfinished.
#[derive(Debug, PartialEq, Eq)]
pub struct Aborted;

/// Counts for reports and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub invocations: u32,
    pub bisections: u32,
    pub given_up: usize,
}

/// Processes `records` until every one is finished. `finished` is called with ranges of the
/// batch as they finish; the ranges come in order and together form a growing prefix. With a
/// `window`, a range the function processed comes with the window as its state then stood.
pub async fn run_batch(
    ctx: &MappingCtx,
    settings: &StreamSettings,
    shard: &ShardId,
    records: &[Record],
    mut window: Option<&mut OpenWindow>,
    mut finished: impl FnMut(Range<usize>, Option<&OpenWindow>),
) -> Result<BatchReport, Aborted> {
    let mut bisector =
        Bisector::new(records.len(), settings.maximum_retry_attempts, settings.bisect_batch_on_function_error);
    let mut report = BatchReport::default();
    ctx.metrics.batch();
    let mut delays = backoff(&settings.backoff);
    let max_age_ms = settings.maximum_record_age.map(|d| d.as_millis() as i64);

    while let Some(span) = bisector.current().cloned() {
        // Cut what has expired from the front before invoking (AWS: RecordAgeExceeded, no
        // responseContext; the rest is still delivered).
        if let Some(max_age) = max_age_ms {
            let now = now_ms();
            let expired = records[span.range()].iter().take_while(|r| now - r.arrival_ms > max_age).count();
            if let Some(cut) = bisector.cut_front(expired) {
                let range = cut.range.clone();
                give_up(ctx, shard, &records[range.clone()], Condition::RecordAgeExceeded, cut.invocations, None, &settings.backoff)
                    .await
                    .map_err(|()| Aborted)?;
                report.given_up += range.len();
                finished(range, None);
                continue;
            }
        }

        let batch = &records[span.range()];
        // When the oldest record of the span will expire: retries must not outlive it.
        let deadline = max_age_ms.map(|max_age| {
            let left = (batch[0].arrival_ms + max_age + 1 - now_ms()).max(0) as u64;
            Instant::now() + Duration::from_millis(left)
        });
        if let Some(last) = batch.last() {
            ctx.metrics.iterator_age(shard.as_str(), (now_ms() - last.arrival_ms).max(0) as u64);
        }
        let extras = window.as_deref().map(|w| w.extras(shard.as_str(), ctx.encoder.event_source_arn(), false));
        let payload = Bytes::from(ctx.encoder.encode_event(shard, batch, extras.as_ref()));
        let response = match call_until_ran(ctx, payload, batch.len() as u64, &settings.backoff, deadline).await {
            Ok(r) => r,
            Err(NotRan::Expired) => continue,
            Err(NotRan::Cancelled) => return Err(Aborted),
        };
        report.invocations += 1;
        let (outcome, context, state) = judge(ctx, settings, batch, &response, window.is_some());
        if outcome != Outcome::Success {
            ctx.metrics.failed_invoke_events(batch.len() as u64);
        }
        let step = bisector.record(outcome);
        let progressed = step.finished.is_some() || step.give_up.is_some() || step.split;
        if step.split {
            report.bisections += 1;
            ctx.metrics.bisected();
        }
        if let Some(range) = step.finished {
            match (window.as_deref_mut(), state) {
                (Some(w), Some(state)) => {
                    w.update(state);
                    finished(range, Some(w));
                }
                _ => finished(range, None),
            }
        }
        if let Some(g) = step.give_up {
            give_up(
                ctx,
                shard,
                &records[g.range.clone()],
                Condition::RetryAttemptsExhausted,
                g.invocations,
                Some(&context),
                &settings.backoff,
            )
            .await
            .map_err(|()| Aborted)?;
            report.given_up += g.range.len();
            finished(g.range, None);
        }
        if progressed {
            delays = backoff(&settings.backoff);
        } else if !bisector.is_done() {
            // The same span failed again: wait before retrying it.
            let wait = delays.next().unwrap_or(settings.backoff.max);
            if !pause(ctx, wait, deadline).await {
                return Err(Aborted);
            }
        }
    }
    Ok(report)
}

/// A tumbling window's final invocation: no records, the window's state, `isFinalInvokeForWindow`.
/// AWS retries it until it succeeds; the shard waits meanwhile.
pub async fn run_final_invoke(ctx: &MappingCtx, settings: &StreamSettings, shard: &ShardId, window: &OpenWindow) -> Result<(), Aborted> {
    let extras = window.extras(shard.as_str(), ctx.encoder.event_source_arn(), true);
    let payload = Bytes::from(ctx.encoder.encode_event(shard, &[], Some(&extras)));
    if payload.len() > ctx.invoker.max_payload_bytes() {
        // Only a state far over AWS's 1 MB can get here; it can never be sent, and waiting
        // would stall the shard for good.
        tracing::error!(mapping = %ctx.name, shard = %shard, bytes = payload.len(), "final window state exceeds the payload limit; window closed without its final invocation");
        return Ok(());
    }
    let mut delays = backoff(&settings.backoff);
    loop {
        let response = match call_until_ran(ctx, payload.clone(), 0, &settings.backoff, None).await {
            Ok(r) => r,
            Err(_) => return Err(Aborted),
        };
        if response.function_error.is_none() {
            return Ok(());
        }
        ctx.metrics.function_error();
        tracing::warn!(mapping = %ctx.name, shard = %shard, "final window invocation failed; retrying");
        if !pause(ctx, delays.next().unwrap_or(settings.backoff.max), None).await {
            return Err(Aborted);
        }
    }
}

/// Reads an invocation's result as the bisector's outcome, the `responseContext` a failure
/// record would carry, and (`windowed`) the state the function returned.
fn judge(
    ctx: &MappingCtx,
    settings: &StreamSettings,
    batch: &[Record],
    r: &InvokeResponse,
    windowed: bool,
) -> (Outcome, ResponseContext, Option<serde_json::Value>) {
    let mut context = ResponseContext {
        status_code: r.status_code,
        executed_version: r.executed_version.clone(),
        function_error: r.function_error.clone(),
    };
    if r.function_error.is_some() {
        ctx.metrics.function_error();
        return (Outcome::Error, context, None);
    }
    // AWS: a windowed function that returns no `state` failed its invocation.
    let state = if windowed {
        match window_state(&r.body) {
            Some(s) => Some(s),
            None => {
                tracing::warn!(mapping = %ctx.name, "tumbling window response without state: the whole batch failed");
                return (Outcome::Error, context, None);
            }
        }
    } else {
        None
    };
    if !settings.report_batch_item_failures {
        return (Outcome::Success, context, state);
    }
    match batch_verdict(&r.body, batch) {
        BatchVerdict::Success => (Outcome::Success, context, state),
        BatchVerdict::Partial(failed) => {
            let first_failed = failed.first().copied().unwrap_or(batch.len());
            (Outcome::Partial { first_failed }, context, state)
        }
        BatchVerdict::Malformed(why) => {
            tracing::warn!(mapping = %ctx.name, reason = %why, "partial batch response rejected: the whole batch failed");
            // AWS reports these with functionError null: the function itself succeeded.
            context.function_error = None;
            (Outcome::Error, context, None)
        }
    }
}
