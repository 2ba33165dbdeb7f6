//! `esmd drain`: run a config's mappings until every shard has caught up (or a time limit
//! passes), show progress while it runs, and report what happened.
//!
//! This is esmd as a load generator: seed a backlog (`esmd seed`), then replay it into a
//! function at full parallelism and see how the function holds. The mappings run exactly as
//! under `esmd run` (same engine, checkpoints, destinations), with two differences: queue
//! receives wait 1 s instead of 20 s so an empty queue is noticed quickly, and there is no
//! admin endpoint.

mod done;
pub mod report;
pub mod view;

use crate::app::{self, AppError, StartOptions};
use crate::config::Config;
use report::{DrainReport, MappingReport};
use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use view::{Progress, View};

/// How often progress is sampled.
const TICK: Duration = Duration::from_millis(200);
/// Caught up on this many ticks in a row before the drain ends: one lucky sample between a
/// read and the next batch must not end it.
const STABLE_TICKS: u32 = 3;
/// The live rate is measured over this much recent time.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Queue receives during a drain.
const DRAIN_RECEIVE_WAIT: Duration = Duration::from_secs(1);

pub struct DrainOptions {
    /// Stop (and report) after this long even if not caught up.
    pub time_limit: Duration,
}

/// Runs the drain; `view` shows progress. Ends when every mapping has caught up, the time
/// limit passes or `interrupt` resolves; `Ok` in each case, the report says which.
pub async fn drain(cfg: &Config, options: DrainOptions, view: &mut dyn View, interrupt: impl Future<Output = ()>) -> Result<DrainReport, AppError> {
    let running = app::start(cfg, StartOptions { receive_wait: Some(DRAIN_RECEIVE_WAIT), admin: false }).await?;
    tokio::pin!(interrupt);
    let mut interrupted = false;
    let started = Instant::now();
    let mut history: Vec<VecDeque<(Instant, u64)>> = vec![VecDeque::new(); running.mappings.len()];
    let mut stable = 0;
    let mut caught: Vec<bool>;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = &mut interrupt => interrupted = true,
        }
        let now = Instant::now();
        let status = running.registry.snapshot();
        let mut rows = Vec::with_capacity(running.mappings.len());
        caught = Vec::with_capacity(running.mappings.len());
        for (m, samples) in running.mappings.iter().zip(history.iter_mut()) {
            let totals = m.metrics.tally();
            let st = status.get(&m.name);
            let is_caught_up = st.is_some_and(done::caught_up);
            samples.push_back((now, totals.finished));
            while samples.len() > 2 && samples.front().is_some_and(|(t, _)| now - *t > RATE_WINDOW) {
                samples.pop_front();
            }
            let rate = match (samples.front(), samples.back()) {
                (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => (n1 - n0) as f64 / (*t1 - *t0).as_secs_f64(),
                _ => 0.0,
            };
            rows.push(Progress {
                mapping: m.name.clone(),
                source: m.source,
                done: totals.finished,
                remaining: st.and_then(done::remaining),
                rate,
                function_errors: totals.function_errors,
                caught_up: is_caught_up,
            });
            caught.push(is_caught_up);
        }
        let elapsed = now - started;
        view.update(elapsed, &rows);
        stable = if caught.iter().all(|c| *c) { stable + 1 } else { 0 };
        if interrupted || stable >= STABLE_TICKS || elapsed >= options.time_limit {
            break;
        }
    }
    let elapsed = started.elapsed();
    view.finish();
    let mappings: Vec<(String, &'static str, crate::metrics::MappingMetrics)> =
        running.mappings.iter().map(|m| (m.name.clone(), m.source, m.metrics.clone())).collect();
    // Stopping writes the last checkpoints; the totals are read after it so they include them.
    running.stop().await;
    let secs = elapsed.as_secs_f64();
    let reports: Vec<MappingReport> = mappings
        .into_iter()
        .zip(caught)
        .map(|((mapping, source, metrics), caught_up)| {
            let totals = metrics.tally();
            MappingReport {
                mapping,
                source: source.to_owned(),
                caught_up,
                elapsed_seconds: secs,
                records_per_second: if secs > 0.0 { totals.finished as f64 / secs } else { 0.0 },
                totals,
            }
        })
        .collect();
    Ok(DrainReport { caught_up: reports.iter().all(|r| r.caught_up), interrupted, elapsed_seconds: secs, mappings: reports })
}
