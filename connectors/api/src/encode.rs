use crate::{Record, ShardId};
use serde_json::{Map, Value};

/// Top-level fields added to an event beside the records (tumbling windows: `window`, `state`,
/// `shardId`, `isFinalInvokeForWindow`, ...).
pub type ExtraFields = Map<String, Value>;

/// How AWS shapes events and failure records for one source. One per mapping.
pub trait EventEncoder: Send + Sync {
    /// The whole event for one batch of one shard, byte-compatible with AWS's for this source.
    /// Records are written from their pre-encoded fragments ([`Record::encoded`]).
    fn encode_event(&self, shard: &ShardId, records: &[Record], extra: Option<&ExtraFields>) -> Vec<u8>;

    /// An upper bound of what the event adds around the records' fragments, so the batcher can
    /// close a batch at the payload limit without encoding it.
    fn envelope_size(&self) -> usize;

    /// The batch-info block of a failure record: its key (`KinesisBatchInfo`,
    /// `DDBStreamBatchInfo`, `KafkaBatchInfo`, ...) and value.
    fn batch_info(&self, shard: &ShardId, records: &[Record]) -> (String, Value);

    /// The JSON a filter pattern is matched against for this record, or `None` when the record
    /// cannot be matched (a JSON pattern never matches it then). Each source says what its
    /// filters see: Kinesis decodes `data`, SQS parses `body`, ...
    fn filter_target(&self, record: &Record) -> Option<Value>;

    /// The source's ARN (or its stand-in for non-AWS sources), for events and failure records.
    fn event_source_arn(&self) -> &str;
}

/// Writes the records' pre-encoded fragments separated by commas: the inside of every event's
/// record array.
pub fn write_fragments(out: &mut Vec<u8>, records: &[Record]) {
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&r.encoded);
    }
}
