//! The synthetic records: deterministic from their number, so a test (or a function under
//! load) can tell exactly which records it should see, and which of them are poison.

use super::{SeedError, SeedOptions};

/// Largest record: Kinesis' and Kafka's default limit (SQS and DynamoDB refuse less; they say so).
pub const MAX_RECORD_BYTES: usize = 1_048_576;
/// The poison fraction in parts per million: integer arithmetic keeps the spread exact.
const PPM: u64 = 1_000_000;

pub use esmd_api::seed::SeedRecord;

/// Builds record `n` of a run.
#[derive(Clone, Debug)]
pub struct Generator {
    count: u64,
    record_bytes: usize,
    keys: u64,
    poison_ppm: u64,
}

impl Generator {
    /// Checks the options: the payload must fit the largest record's fields.
    pub fn new(o: &SeedOptions) -> Result<Self, SeedError> {
        let bad = |m: String| Err(SeedError::Options(m));
        if o.count == 0 {
            return bad("--count must be at least 1".into());
        }
        if o.keys == 0 {
            return bad("--keys must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&o.poison_fraction) {
            return bad(format!("--poison-fraction {} is outside 0.0–1.0", o.poison_fraction));
        }
        if o.record_bytes > MAX_RECORD_BYTES {
            return bad(format!("--record-bytes {} is above {MAX_RECORD_BYTES} (Kinesis' and Kafka's record limit)", o.record_bytes));
        }
        let g = Generator { count: o.count, record_bytes: o.record_bytes, keys: o.keys, poison_ppm: (o.poison_fraction * PPM as f64).round() as u64 };
        let smallest = g.smallest_record_bytes();
        if o.record_bytes < smallest {
            return bad(format!("--record-bytes {} is too small: these records need at least {smallest} bytes", o.record_bytes));
        }
        Ok(g)
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// The payload size of the widest record: its fields without padding (the last number,
    /// the widest key, `false`).
    fn smallest_record_bytes(&self) -> usize {
        let widest_key = self.keys.min(self.count) - 1;
        fields(self.count - 1, &format!("key-{widest_key}"), false).len() + PAD_SUFFIX.len()
    }

    /// Spread evenly: record `n` is poison when `floor((n+1)·F)` passes a whole number, so
    /// exactly `floor(count·F)` records are poison, `1/F` apart (F counted in millionths, in
    /// integers, so the pattern never drifts with floating-point error).
    pub fn is_poison(&self, n: u64) -> bool {
        // u128: count × PPM overflows u64 above 1.8e13 records.
        let (p, n) = (u128::from(self.poison_ppm), u128::from(n));
        (n + 1) * p / u128::from(PPM) > n * p / u128::from(PPM)
    }

    /// How many of the `count` records are poison.
    pub fn poison_total(&self) -> u64 {
        (u128::from(self.count) * u128::from(self.poison_ppm) / u128::from(PPM)) as u64
    }

    pub fn key(&self, n: u64) -> String {
        format!("key-{}", n % self.keys)
    }

    pub fn record(&self, n: u64) -> SeedRecord {
        let key = self.key(n);
        let poison = self.is_poison(n);
        let mut payload = fields(n, &key, poison).into_bytes();
        // `new` made sure the fields fit.
        let pad = self.record_bytes.saturating_sub(payload.len() + PAD_SUFFIX.len());
        payload.resize(payload.len() + pad, b'x');
        payload.extend_from_slice(PAD_SUFFIX.as_bytes());
        SeedRecord { n, key, poison, payload }
    }
}

const PAD_SUFFIX: &str = "\"}";

/// Everything but the padding and the closing `"}`. Keys are `key-N`: nothing to escape.
fn fields(n: u64, key: &str, poison: bool) -> String {
    format!("{{\"n\":{n},\"key\":\"{key}\",\"poison\":{poison},\"pad\":\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn generator(count: u64, bytes: usize, keys: u64, poison: f64) -> Generator {
        Generator::new(&SeedOptions { count, record_bytes: bytes, keys, poison_fraction: poison, rate: None }).unwrap()
    }

    #[test]
    fn payloads_are_exactly_the_size_asked_and_parse() {
        let g = generator(12_345, 100, 7, 0.1);
        for n in [0, 1, 9, 99, 12_344] {
            let r = g.record(n);
            assert_eq!(r.payload.len(), 100, "record {n}");
            let v: Value = serde_json::from_slice(&r.payload).unwrap();
            assert_eq!(v["n"], n);
            assert_eq!(v["key"], r.key.as_str());
            assert_eq!(v["poison"], r.poison);
            assert!(v["pad"].as_str().unwrap().bytes().all(|b| b == b'x'));
        }
        // Poison records write `true`, one byte shorter: the pad makes up for it.
        assert!(g.record(9).poison && g.record(9).payload.len() == 100);
    }

    #[test]
    fn the_smallest_size_is_the_widest_record_without_padding() {
        let opts = |bytes| SeedOptions { count: 1000, record_bytes: bytes, keys: 50, poison_fraction: 0.0, rate: None };
        // {"n":999,"key":"key-49","poison":false,"pad":""}
        let smallest = r#"{"n":999,"key":"key-49","poison":false,"pad":""}"#.len();
        assert!(Generator::new(&opts(smallest)).is_ok());
        let e = Generator::new(&opts(smallest - 1)).unwrap_err().to_string();
        assert!(e.contains(&format!("at least {smallest} bytes")), "{e}");
        let g = Generator::new(&opts(smallest)).unwrap();
        assert_eq!(g.record(999).payload.len(), smallest);
        assert!(g.record(0).payload.len() == smallest);
    }

    #[test]
    fn options_out_of_range_are_refused() {
        let base = SeedOptions { count: 10, record_bytes: 1024, keys: 1, poison_fraction: 0.0, rate: None };
        for (opts, needle) in [
            (SeedOptions { count: 0, ..base.clone() }, "--count"),
            (SeedOptions { keys: 0, ..base.clone() }, "--keys"),
            (SeedOptions { poison_fraction: 1.5, ..base.clone() }, "--poison-fraction"),
            (SeedOptions { poison_fraction: f64::NAN, ..base.clone() }, "--poison-fraction"),
            (SeedOptions { record_bytes: MAX_RECORD_BYTES + 1, ..base.clone() }, "--record-bytes"),
        ] {
            let e = Generator::new(&opts).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn poison_is_spread_evenly_and_counted_exactly() {
        let poisoned = |g: &Generator| (0..g.count()).filter(|n| g.is_poison(*n)).collect::<Vec<_>>();
        let g = generator(1000, 100, 10, 0.1);
        let p = poisoned(&g);
        assert_eq!(p.len(), 100);
        assert_eq!(g.poison_total(), 100);
        assert!(p.iter().enumerate().all(|(i, n)| *n == 10 * i as u64 + 9), "every 10th: {:?}", &p[..5]);
        // A fraction that is not 1/k: gaps of 3 or 4, never clustered.
        let g = generator(1000, 100, 10, 0.3);
        let p = poisoned(&g);
        assert_eq!((p.len() as u64, g.poison_total()), (300, 300));
        assert!(p.windows(2).all(|w| (3..=4).contains(&(w[1] - w[0]))), "{:?}", &p[..10]);
        assert!(poisoned(&generator(50, 100, 10, 0.0)).is_empty());
        assert_eq!(poisoned(&generator(50, 100, 10, 1.0)).len(), 50);
        // 1 in 3 over 10 records: 3 poison (floor). F counts in millionths (333333), so the
        // first comes one record later than 1/3 exactly would put it.
        assert_eq!(poisoned(&generator(10, 100, 10, 1.0 / 3.0)), [3, 6, 9]);
    }

    #[test]
    fn keys_cycle_through_the_cardinality() {
        let g = generator(100, 100, 7, 0.0);
        let keys: BTreeSet<String> = (0..100).map(|n| g.record(n).key).collect();
        assert_eq!(keys.len(), 7);
        assert_eq!(g.record(8).key, "key-1");
        // Fewer records than keys: only the keys used count towards the smallest size.
        assert!(Generator::new(&SeedOptions { count: 3, record_bytes: 50, keys: 1_000_000, poison_fraction: 0.0, rate: None }).is_ok());
    }
}
