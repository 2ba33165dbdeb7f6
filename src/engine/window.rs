//! Tumbling windows (Kinesis, DynamoDB Streams): records are grouped into fixed windows by
//! arrival time; every invocation of a window carries the state the function returned last,
//! and a final invocation (`isFinalInvokeForWindow`) hands the function the finished state.
//!
//! Pure logic: which window a record belongs to, what an invocation adds to the event, and
//! how a window is kept in the checkpoint. The lane in `stream.rs` drives it.

use esmd_api::time::iso_seconds;
use esmd_api::ExtraFields;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

/// AWS ends a window early when the function's state grows past 1 MB.
pub const MAX_STATE_BYTES: usize = 1024 * 1024;

/// Room an event needs for the window fields beside the records: the largest state an
/// invocation with records can carry, plus the fixed fields around it.
pub fn reserved_bytes(shard: &str, arn: &str) -> usize {
    MAX_STATE_BYTES + 256 + shard.len() + arn.len()
}

/// The window a lane is aggregating, as it is kept in the checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenWindow {
    pub start_ms: i64,
    pub end_ms: i64,
    /// What the function returned last (`{}` before the window's first invocation).
    pub state: Value,
    /// The state outgrew [`MAX_STATE_BYTES`] and was handed over early: the window goes on
    /// with a fresh state.
    #[serde(default)]
    pub terminated_early: bool,
}

impl OpenWindow {
    /// A fresh window of `size` that contains `arrival_ms`. Windows are aligned to the epoch,
    /// as AWS's are (a 120 s window runs 07:04:00–07:06:00).
    pub fn containing(arrival_ms: i64, size: Duration) -> Self {
        let size_ms = (size.as_millis() as i64).max(1);
        let start_ms = arrival_ms.div_euclid(size_ms) * size_ms;
        OpenWindow { start_ms, end_ms: start_ms + size_ms, state: Value::Object(Map::new()), terminated_early: false }
    }

    /// Whether a record that arrived at `arrival_ms` belongs after this window. A record that
    /// arrived before the window started (a late one) joins it: windows never go back.
    pub fn is_before(&self, arrival_ms: i64) -> bool {
        arrival_ms >= self.end_ms
    }

    /// The fields AWS adds to a windowed event beside `Records`.
    pub fn extras(&self, shard: &str, event_source_arn: &str, is_final: bool) -> ExtraFields {
        let mut m = Map::new();
        m.insert("window".into(), serde_json::json!({"start": iso_seconds(self.start_ms), "end": iso_seconds(self.end_ms)}));
        m.insert("state".into(), self.state.clone());
        m.insert("shardId".into(), Value::String(shard.to_owned()));
        m.insert("eventSourceARN".into(), Value::String(event_source_arn.to_owned()));
        m.insert("isFinalInvokeForWindow".into(), Value::Bool(is_final));
        m.insert("isWindowTerminatedEarly".into(), Value::Bool(is_final && self.terminated_early));
        m
    }

    /// Takes the state a function returned. Returns true when it is too large to go on with:
    /// the window must be handed over now (a final invocation marked terminated early).
    pub fn update(&mut self, state: Value) -> bool {
        let too_large = serde_json::to_vec(&state).map_or(true, |v| v.len() > MAX_STATE_BYTES);
        self.state = state;
        self.terminated_early = too_large;
        too_large
    }

    /// The same window with a fresh state, after it was handed over early.
    pub fn restarted(&self) -> Self {
        OpenWindow { state: Value::Object(Map::new()), terminated_early: false, ..self.clone() }
    }

    pub fn to_checkpoint(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a window back from a checkpoint; `None` for anything else (a checkpoint written
    /// without windows).
    pub fn from_checkpoint(v: &Value) -> Option<Self> {
        serde_json::from_value(v.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn windows_are_aligned_to_the_epoch() {
        // 2020-12-09T07:05:12.345Z in a 120 s window: 07:04:00–07:06:00, AWS's example.
        let w = OpenWindow::containing(1_607_497_512_345, Duration::from_secs(120));
        let extras = w.extras("shardId-000000000006", "arn:aws:kinesis:us-east-1:123456789012:stream/s", false);
        assert_eq!(extras["window"], json!({"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"}));
        assert_eq!(extras["state"], json!({}));
        assert_eq!(extras["shardId"], "shardId-000000000006");
        assert_eq!(extras["isFinalInvokeForWindow"], false);
        assert_eq!(extras["isWindowTerminatedEarly"], false);
        assert!(!w.is_before(1_607_497_559_999));
        assert!(w.is_before(1_607_497_560_000));
        // A late record does not move the window back.
        assert!(!w.is_before(1_607_497_000_000));
    }

    #[test]
    fn oversized_state_terminates_the_window_early() {
        let mut w = OpenWindow::containing(0, Duration::from_secs(60));
        assert!(!w.update(json!({"n": 1})));
        let big = json!({"blob": "x".repeat(MAX_STATE_BYTES)});
        assert!(w.update(big.clone()));
        let extras = w.extras("s", "arn", true);
        assert_eq!((extras["isFinalInvokeForWindow"].clone(), extras["isWindowTerminatedEarly"].clone()), (json!(true), json!(true)));
        assert_eq!(extras["state"], big);
        let fresh = w.restarted();
        assert_eq!((fresh.start_ms, fresh.end_ms, fresh.state.clone(), fresh.terminated_early), (0, 60_000, json!({}), false));
    }

    #[test]
    fn checkpoint_round_trip() {
        let mut w = OpenWindow::containing(61_000, Duration::from_secs(60));
        w.update(json!({"sum": 7}));
        assert_eq!(OpenWindow::from_checkpoint(&w.to_checkpoint()), Some(w));
        assert_eq!(OpenWindow::from_checkpoint(&json!("something else")), None);
    }
}
