//! Giving up on records: build the failure record, deliver it, and never drop it silently.
//! A destination that fails holds the shard (or the queue batch) and is retried with backoff.

use super::call::{backoff, pause};
use super::context::MappingCtx;
use super::settings::RetryBackoff;
use crate::destination::record::{failure_record, Condition, FailureInfo, ResponseContext};
use crate::destination::Failure;
use bytes::Bytes;
use esmd_api::{time::now_ms, Record, ShardId};

/// The records were handed to the destination (or dropped where none is configured).
/// `Err(())` means shutdown came first: the records are not finished.
pub async fn give_up(
    ctx: &MappingCtx,
    shard: &ShardId,
    records: &[Record],
    condition: Condition,
    invocations: u32,
    response: Option<&ResponseContext>,
    backoff_settings: &RetryBackoff,
) -> Result<(), ()> {
    if records.is_empty() {
        return Ok(());
    }
    let n = records.len() as u64;
    ctx.metrics.dropped(n);
    let request_id = uuid::Uuid::new_v4().to_string();
    let record = failure_record(FailureInfo {
        request_id: &request_id,
        function_arn: ctx.invoker.function_arn(),
        condition,
        invocations,
        response,
        batch_info: ctx.encoder.batch_info(shard, records),
        now_ms: now_ms(),
    });
    let Some(destination) = &ctx.destination else {
        tracing::warn!(
            mapping = %ctx.name, shard = %shard, records = n, condition = condition.as_str(),
            failure = %record, "no on-failure destination configured: records discarded"
        );
        return Ok(());
    };
    let failure = Failure {
        record,
        payload: Bytes::from(ctx.encoder.encode_event(shard, records, None)),
        shard: shard.clone(),
        records: records.to_vec(),
    };
    let mut delays = backoff(backoff_settings);
    loop {
        match destination.deliver(&failure).await {
            Ok(()) => {
                ctx.metrics.destination_delivered(n);
                tracing::info!(
                    mapping = %ctx.name, shard = %shard, records = n, condition = condition.as_str(),
                    destination = destination.describe(), "records sent to the on-failure destination"
                );
                return Ok(());
            }
            Err(e) => {
                ctx.metrics.destination_delivery_failure();
                tracing::warn!(mapping = %ctx.name, shard = %shard, error = %e, "on-failure destination failed; holding the shard and retrying");
                ctx.status.set_error(Some(e.to_string()));
                let wait = delays.next().unwrap_or(backoff_settings.max);
                if !pause(ctx, wait, None).await {
                    return Err(());
                }
            }
        }
    }
}
