//! `esmd seed`: fills the source of a mapping with a synthetic backlog (load tests: fill, then
//! drain with `esmd drain`) and reports what it wrote.
//!
//! The target comes from the same config file the backlog is drained with, so credentials,
//! endpoints and TLS are the ones the mapping uses. Records come from [`Generator`]
//! (deterministic JSON payloads of an exact size, `key-{n % keys}` keys, evenly spread poison
//! records), leave at `--rate` through [`Pacer`], and go to the source through a [`Seeder`]:
//! each connector crate brings its own.

mod pace;
mod record;

pub use esmd_api::seed::{Seeder, TargetError};
pub use pace::Pacer;
pub use record::{Generator, SeedRecord, MAX_RECORD_BYTES};

use crate::config::{Config, MappingConfig};
use esmd_api::connector::{SeedContext, SeedSetupError};
use serde::Serialize;
use std::time::{Duration, Instant};

/// What to write (the command-line options).
#[derive(Clone, Debug, PartialEq)]
pub struct SeedOptions {
    pub count: u64,
    /// Each payload's exact size.
    pub record_bytes: usize,
    /// Key cardinality.
    pub keys: u64,
    /// 0.0–1.0 of the records carry `"poison":true`.
    pub poison_fraction: f64,
    /// Records per second; `None`: as fast as the target takes them.
    pub rate: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{0}")]
    Options(String),
    /// Which mapping: none, several without `--mapping`, or an unknown name.
    #[error("{0}")]
    Mapping(String),
    #[error("mapping {mapping:?}: {message}")]
    Unsupported { mapping: String, message: String },
    #[error("mapping {mapping:?}: {message}")]
    Setup { mapping: String, message: String },
    #[error("mapping {mapping:?}: writing to {target}: {message} ({written} records were written before the failure)")]
    Write { mapping: String, target: String, written: u64, message: String },
}

/// The report `esmd seed` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub mapping: String,
    pub source: &'static str,
    pub target: String,
    pub records: u64,
    /// Payload bytes (keys and envelopes not counted).
    pub bytes: u64,
    pub poison: u64,
    pub keys: u64,
    pub elapsed_seconds: f64,
    pub records_per_second: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "mapping: {}", self.mapping)?;
        writeln!(f, "source: {}", self.source)?;
        writeln!(f, "target: {}", self.target)?;
        writeln!(f, "records: {}", self.records)?;
        writeln!(f, "bytes: {}", self.bytes)?;
        writeln!(f, "poison: {}", self.poison)?;
        writeln!(f, "keys: {}", self.keys)?;
        writeln!(f, "elapsed_seconds: {:.3}", self.elapsed_seconds)?;
        writeln!(f, "records_per_second: {:.1}", self.records_per_second)
    }
}

/// The mapping to fill: the one named, or the only one.
pub fn select_mapping<'a>(cfg: &'a Config, name: Option<&str>) -> Result<&'a MappingConfig, SeedError> {
    let names = || cfg.mappings.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ");
    match (name, cfg.mappings.as_slice()) {
        (Some(n), _) => cfg.mapping(n).ok_or_else(|| SeedError::Mapping(format!("no mapping named {n:?} in the config (mappings: {})", names()))),
        (None, [one]) => Ok(one),
        (None, []) => Err(SeedError::Mapping("the config has no mappings".into())),
        (None, many) => Err(SeedError::Mapping(format!("the config has {} mappings: choose one with --mapping NAME (mappings: {})", many.len(), names()))),
    }
}

/// Fills the source of the mapping `mapping` (or the config's only one).
pub async fn seed(cfg: &Config, mapping: Option<&str>, opts: &SeedOptions) -> Result<Summary, SeedError> {
    if let Some(r) = opts.rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
        return Err(SeedError::Options(format!("--rate {r}: give a positive number of records per second")));
    }
    let generator = Generator::new(opts)?;
    let m = select_mapping(cfg, mapping)?;
    let mut seeder = connect(cfg, m, generator.keys()).await?;
    fill(seeder.as_mut(), &generator, opts.rate, m).await
}

async fn connect(cfg: &Config, m: &MappingConfig, keys: u64) -> Result<Box<dyn Seeder>, SeedError> {
    let ctx = SeedContext { mapping: m.name.clone(), region: cfg.aws.region.clone(), keys };
    m.source.spec().seeder(&ctx).await.map_err(|e| match e {
        SeedSetupError::Unsupported(message) => SeedError::Unsupported { mapping: m.name.clone(), message },
        SeedSetupError::Setup(message) => SeedError::Setup { mapping: m.name.clone(), message },
    })
}

/// Progress goes to the log this often on long runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Writes every record of `generator` through `seeder`, paced at `rate`.
pub async fn fill(seeder: &mut dyn Seeder, generator: &Generator, rate: Option<f64>, m: &MappingConfig) -> Result<Summary, SeedError> {
    let mut pacer = Pacer::new(rate);
    let chunk = pacer.chunk(seeder.chunk()) as u64;
    let target = seeder.target();
    let failed = |written: u64, e: TargetError| SeedError::Write { mapping: m.name.clone(), target: target.clone(), written, message: e.0 };
    let started = Instant::now();
    let mut last_report = started;
    let (mut written, mut bytes, mut poison) = (0u64, 0u64, 0u64);
    let mut records = Vec::with_capacity(chunk as usize);
    while written < generator.count() {
        let end = (written + chunk).min(generator.count());
        records.clear();
        records.extend((written..end).map(|n| generator.record(n)));
        pacer.admit(end - written).await;
        seeder.write(&records).await.map_err(|e| failed(written, e))?;
        written = end;
        bytes += records.iter().map(|r| r.payload.len() as u64).sum::<u64>();
        poison += records.iter().filter(|r| r.poison).count() as u64;
        if last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            tracing::info!(written, total = generator.count(), target = %target, "seeding");
        }
    }
    seeder.finish().await.map_err(|e| failed(written, e))?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Summary {
        mapping: m.name.clone(),
        source: m.source.type_name(),
        target,
        records: written,
        bytes,
        poison,
        keys: generator.keys().min(generator.count()),
        elapsed_seconds: elapsed,
        records_per_second: if elapsed > 0.0 { written as f64 / elapsed } else { 0.0 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mappings: &[&str]) -> Config {
        let mut text = String::new();
        for name in mappings {
            text.push_str(&format!(
                "[[mappings]]\nname = \"{name}\"\nsource = {{ type = \"memory\", stream_name = \"s\" }}\nfunction = {{ type = \"http\", url = \"http://127.0.0.1:9/\" }}\nstarting_position = \"TRIM_HORIZON\"\n"
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).unwrap()
    }

    #[test]
    fn the_mapping_is_the_only_one_or_the_one_named() {
        let one = config(&["a"]);
        assert_eq!(select_mapping(&one, None).unwrap().name, "a");
        let two = config(&["a", "b"]);
        assert_eq!(select_mapping(&two, Some("b")).unwrap().name, "b");
        let e = select_mapping(&two, None).unwrap_err().to_string();
        assert!(e.contains("--mapping") && e.contains("a, b"), "{e}");
        let e = select_mapping(&two, Some("c")).unwrap_err().to_string();
        assert!(e.contains("\"c\"") && e.contains("a, b"), "{e}");
    }

    #[tokio::test]
    async fn memory_sources_are_refused_with_a_pointer_to_their_seed_table() {
        let cfg = config(&["a"]);
        let opts = SeedOptions { count: 1, record_bytes: 100, keys: 1, poison_fraction: 0.0, rate: None };
        let e = seed(&cfg, None, &opts).await.unwrap_err().to_string();
        assert!(e.contains("inside the esmd process") && e.contains("seed = {"), "{e}");
        let e = seed(&cfg, None, &SeedOptions { rate: Some(0.0), ..opts }).await.unwrap_err().to_string();
        assert!(e.contains("--rate"), "{e}");
    }
}
