//! The drain's live view: progress bars on a terminal, plain periodic lines otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;

/// One mapping's progress at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub mapping: String,
    pub source: &'static str,
    /// Records finished so far.
    pub done: u64,
    /// Records known to be left; `None` when the source cannot tell.
    pub remaining: Option<u64>,
    /// Records per second over the last few seconds.
    pub rate: f64,
    pub function_errors: u64,
    pub caught_up: bool,
}

impl Progress {
    /// Time to finish at the current rate.
    pub fn eta(&self) -> Option<Duration> {
        let left = self.remaining?;
        (self.rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / self.rate))
    }

    /// `orders (kinesis): 4500/10000 (45%), 1200 rec/s, ETA 5s, 0 errors`
    pub fn line(&self) -> String {
        let amount = match self.remaining {
            Some(left) => {
                let total = self.done + left;
                let pct = if total == 0 { 100.0 } else { 100.0 * self.done as f64 / total as f64 };
                format!("{}/{total} ({pct:.0}%)", self.done)
            }
            None => format!("{} done", self.done),
        };
        let eta = match (self.caught_up, self.eta()) {
            (true, _) => "caught up".to_owned(),
            (false, Some(eta)) => format!("ETA {}", short(eta)),
            (false, None) => "ETA -".to_owned(),
        };
        format!("{} ({}): {amount}, {:.0} rec/s, {eta}, {} function errors", self.mapping, self.source, self.rate, self.function_errors)
    }
}

fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub trait View: Send {
    /// Called a few times a second with every mapping's progress.
    fn update(&mut self, elapsed: Duration, rows: &[Progress]);
    /// The run is over; leave the screen ready for the report.
    fn finish(&mut self);
}

/// Progress bars (indicatif) on the terminal, one per mapping.
pub struct Bars {
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
}

impl Bars {
    pub fn new(mappings: usize) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(4));
        let bars = (0..mappings).map(|_| multi.add(ProgressBar::new(0))).collect();
        Bars { multi, bars }
    }
}

fn bar_style(known: bool) -> ProgressStyle {
    let template = if known {
        "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} {msg}"
    } else {
        "{prefix:.bold} {spinner} {pos} records {msg}"
    };
    // The templates are constants: a failure here is a bug, and the default style still works.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}

impl View for Bars {
    fn update(&mut self, _elapsed: Duration, rows: &[Progress]) {
        for (bar, row) in self.bars.iter().zip(rows) {
            bar.set_prefix(format!("{} ({})", row.mapping, row.source));
            match row.remaining {
                Some(left) => {
                    bar.set_style(bar_style(true));
                    bar.set_length(row.done + left);
                }
                None => bar.set_style(bar_style(false)),
            }
            bar.set_position(row.done);
            let eta = if row.caught_up { "caught up".to_owned() } else { row.eta().map_or("ETA -".to_owned(), |e| format!("ETA {}", short(e))) };
            bar.set_message(format!("{:.0} rec/s, {eta}, {} errors", row.rate, row.function_errors));
            if row.remaining.is_none() {
                bar.tick();
            }
        }
    }

    fn finish(&mut self) {
        for bar in &self.bars {
            bar.finish();
        }
        let _ = self.multi.clear();
    }
}

/// One line per mapping every `every`, for logs and pipes.
pub struct Lines {
    every: Duration,
    next: Duration,
    out: Box<dyn std::io::Write + Send>,
}

impl Lines {
    pub fn new(every: Duration, out: Box<dyn std::io::Write + Send>) -> Self {
        Lines { every, next: every, out }
    }
}

impl View for Lines {
    fn update(&mut self, elapsed: Duration, rows: &[Progress]) {
        if elapsed < self.next {
            return;
        }
        while self.next <= elapsed {
            self.next += self.every;
        }
        for row in rows {
            let _ = writeln!(self.out, "[{:>6.1}s] {}", elapsed.as_secs_f64(), row.line());
        }
        let _ = self.out.flush();
    }

    fn finish(&mut self) {}
}

/// No live view (`--quiet`).
pub struct Silent;

impl View for Silent {
    fn update(&mut self, _: Duration, _: &[Progress]) {}
    fn finish(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn row(done: u64, remaining: Option<u64>, rate: f64) -> Progress {
        Progress { mapping: "orders".into(), source: "kinesis", done, remaining, rate, function_errors: 2, caught_up: false }
    }

    #[test]
    fn lines_show_progress_rate_and_eta() {
        assert_eq!(row(4500, Some(5500), 1100.0).line(), "orders (kinesis): 4500/10000 (45%), 1100 rec/s, ETA 5s, 2 function errors");
        assert_eq!(row(10, None, 0.0).line(), "orders (kinesis): 10 done, 0 rec/s, ETA -, 2 function errors");
        assert_eq!(row(0, Some(7200), 1.0).eta(), Some(Duration::from_secs(7200)));
        assert_eq!(short(Duration::from_secs(7260)), "2h01m");
        let mut done = row(10, Some(0), 0.0);
        done.caught_up = true;
        assert!(done.line().contains("10/10 (100%)") && done.line().contains("caught up"));
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_written_once_per_interval() {
        let buf = Buffer::default();
        let mut view = Lines::new(Duration::from_secs(5), Box::new(buf.clone()));
        for ms in (0..=12_000).step_by(200) {
            view.update(Duration::from_millis(ms), &[row(ms, None, 1.0)]);
        }
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("[   5.0s] orders (kinesis): 5000 done"), "{text}");
        assert!(lines[1].starts_with("[  10.0s]"), "{text}");
    }
}
