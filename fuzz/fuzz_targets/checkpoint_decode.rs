//! The embedded store's checkpoint decoder (src/checkpoint/embedded.rs): a value read from the
//! redb file is the `Checkpoint` as JSON. A damaged or foreign value must be an error that
//! names the mapping and shard, never a panic; a value that decodes must survive a save and
//! a load unchanged.
//!
//! Input: the stored bytes. Besides decoding them as they are, the input also builds a
//! checkpoint with `arbitrary` (any position text, any state) that must round-trip.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use esmd::checkpoint::embedded::decode;
use esmd::checkpoint::Checkpoint;
use esmd_api::Position;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Whether `v` holds a float.
fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

fn round_trip(cp: &Checkpoint) {
    let bytes = serde_json::to_vec(cp).expect("a checkpoint always serializes");
    let back = decode("m", "s", &bytes).unwrap_or_else(|e| panic!("saved checkpoint does not load: {e}"));
    assert_eq!(back.position, cp.position);
    assert_eq!(back.shard_finished, cp.shard_finished);
    match (&back.state, &cp.state) {
        // serde_json reads a float back to the nearest value only by its best effort (no
        // `float_roundtrip`): such a state only has to load.
        (Some(_), Some(b)) if has_float(b) => {}
        (a, b) => assert_eq!(a, b),
    }
}

#[derive(Arbitrary, Debug)]
struct Built {
    position: Option<String>,
    shard_finished: bool,
    /// Parsed as JSON for the state; not JSON: no state.
    state: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    match decode("orders", "shardId-000000000001", data) {
        Ok(cp) => round_trip(&cp),
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("\"orders\"") && e.contains("\"shardId-000000000001\""), "{e}");
        }
    }

    let Ok(built) = Built::arbitrary(&mut Unstructured::new(data)) else { return };
    let cp = Checkpoint {
        position: built.position.map(Position::new),
        shard_finished: built.shard_finished,
        // A `null` state is no state: it is written as `"state":null` and read back as none
        // (the engine never keeps one: response.rs drops a null `state`).
        state: built.state.and_then(|s| serde_json::from_str::<Value>(&s).ok()).filter(|v| !v.is_null()),
    };
    round_trip(&cp);
});
