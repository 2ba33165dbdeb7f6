//! Running one batch of an ordered shard to the end: age cut, invoke, partial responses,
//! bisection, retries, and giving up to the failure destination (DESIGN.md §4).

use super::bisect::{Bisector, Outcome};
use super::call::{backoff, call_until_ran, pause, NotRan};
use super::context::MappingCtx;
use super::give_up::give_up;
use super::settings::StreamSettings;
use crate::destination::record::{Condition, ResponseContext};
use crate::invoke::response::{batch_verdict, BatchVerdict};
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
/// batch as they finish; the ranges come in order and together form a growing prefix.
pub async fn run_batch(
    ctx: &MappingCtx,
    settings: &StreamSettings,
    shard: &ShardId,
    records: &[Record],
    mut finished: impl FnMut(Range<usize>),
) -> Result<BatchReport, Aborted> {
    let mut bisector =
        Bisector::new(records.len(), settings.maximum_retry_attempts, settings.bisect_batch_on_function_error);
    let mut report = BatchReport::default();
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
                finished(range);
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
        let payload = Bytes::from(ctx.encoder.encode_event(shard, batch, None));
        let response = match call_until_ran(ctx, payload, batch.len() as u64, &settings.backoff, deadline).await {
            Ok(r) => r,
            Err(NotRan::Expired) => continue,
            Err(NotRan::Cancelled) => return Err(Aborted),
        };
        report.invocations += 1;
        let (outcome, context) = judge(ctx, settings, batch, &response);
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
            finished(range);
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
            finished(g.range);
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

/// Reads an invocation's result as the bisector's outcome, and the `responseContext` a failure
/// record would carry.
fn judge(ctx: &MappingCtx, settings: &StreamSettings, batch: &[Record], r: &InvokeResponse) -> (Outcome, ResponseContext) {
    let mut context = ResponseContext {
        status_code: r.status_code,
        executed_version: r.executed_version.clone(),
        function_error: r.function_error.clone(),
    };
    if r.function_error.is_some() {
        ctx.metrics.function_error();
        return (Outcome::Error, context);
    }
    if !settings.report_batch_item_failures {
        return (Outcome::Success, context);
    }
    match batch_verdict(&r.body, batch) {
        BatchVerdict::Success => (Outcome::Success, context),
        BatchVerdict::Partial(failed) => {
            let first_failed = failed.first().copied().unwrap_or(batch.len());
            (Outcome::Partial { first_failed }, context)
        }
        BatchVerdict::Malformed(why) => {
            tracing::warn!(mapping = %ctx.name, reason = %why, "partial batch response rejected: the whole batch failed");
            // AWS reports these with functionError null: the function itself succeeded.
            context.function_error = None;
            (Outcome::Error, context)
        }
    }
}
