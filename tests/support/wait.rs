//! Waiting for a condition instead of sleeping for a guess: the one poll loop of the tests.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is looked at: often enough that a test does not wait much longer than
/// the thing it waits for, seldom enough that looking costs nothing. A check that is itself
/// expensive (a `rabbitmqctl` call, a connection attempt) or that samples an invariant (every
/// look asserts something) says how often with the `_every` forms.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns `Ok`, and returns that value. After `timeout` it panics with
/// `what` and the last `Err` (which says how far things got: "812 of 1000 records").
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    until_every(what, timeout, POLL, check).await
}

/// [`until`], looking every `poll`.
pub async fn until_every<T, F, Fut>(what: &str, timeout: Duration, poll: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(state) if start.elapsed() >= timeout => panic!("timed out after {timeout:?} waiting for {what}: {state}"),
            Err(_) => tokio::time::sleep(poll).await,
        }
    }
}

/// [`until`] for a check that needs no IO.
pub async fn eventually<T>(what: &str, timeout: Duration, check: impl FnMut() -> Result<T, String>) -> T {
    eventually_every(what, timeout, POLL, check).await
}

/// [`eventually`], looking every `poll`.
pub async fn eventually_every<T>(what: &str, timeout: Duration, poll: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    until_every(what, timeout, poll, || std::future::ready(check())).await
}

/// Waits until `done` holds.
pub async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    eventually(what, timeout, || if done() { Ok(()) } else { Err("not yet".into()) }).await
}
