//! Arguments every bench takes: `--bench` (cargo bench passes it; without it, as under
//! `cargo test --all-targets`, a bench is a quick smoke run), an explicit count, or `--scale F`
//! (the full counts times F, for a shorter run that still means something), and `--runs N`
//! (repetitions of each measured drain where a bench repeats them).

/// Flags followed by a value: that value is not a count or a configuration.
const VALUED: [&str; 4] = ["--scale", "--runs", "--only", "--partitions"];

pub struct Args {
    /// Run with full counts: `cargo bench` passes `--bench`.
    pub benching: bool,
    /// The first plain number among the arguments.
    pub count: Option<usize>,
    /// `--scale F`: full counts times F.
    pub scale: Option<f64>,
    /// `--runs N`: how often a bench that repeats its drains runs each.
    pub runs: Option<usize>,
    /// `--partitions P`: the Kafka backlog's partition count instead of its default.
    pub partitions: Option<usize>,
    /// `BxC` arguments (e.g. `100x1`): the configurations a drain bench runs instead of its
    /// defaults (batch size × lanes or concurrency).
    pub configs: Vec<(usize, usize)>,
}

impl Args {
    pub fn parse() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let value = |flag: &str| args.iter().position(|a| a == flag).map(|i| args.get(i + 1).cloned().unwrap_or_default());
        let scale = value("--scale").map(|s| s.parse::<f64>().ok().filter(|f| *f > 0.0).expect("--scale takes a positive number, e.g. --scale 0.1"));
        let runs = value("--runs").map(|s| s.parse::<usize>().ok().filter(|n| *n > 0).expect("--runs takes a positive count, e.g. --runs 3"));
        let partitions = value("--partitions").map(|s| s.parse::<usize>().ok().filter(|n| *n > 0).expect("--partitions takes a positive count, e.g. --partitions 64"));
        let plain: Vec<&String> = args.iter().enumerate().filter(|(i, _)| *i == 0 || !VALUED.contains(&args[i - 1].as_str())).map(|(_, a)| a).collect();
        let count = plain.iter().find_map(|a| a.parse().ok());
        let configs = plain
            .iter()
            .filter_map(|a| {
                let (b, c) = a.split_once('x')?;
                Some((b.parse().ok()?, c.parse().ok()?))
            })
            .collect();
        Args { benching: args.iter().any(|a| a == "--bench"), count, scale, runs, partitions, configs }
    }

    /// The count of a single-count bench: explicit, else scaled, else full or smoke.
    pub fn count(&self, full: usize, smoke: usize) -> usize {
        self.count.unwrap_or_else(|| self.scaled(full, smoke))
    }

    /// One of several counts (the suite): scaled, else full or smoke; never below 1.
    pub fn scaled(&self, full: usize, smoke: usize) -> usize {
        match self.scale {
            Some(f) => ((full as f64 * f).round() as usize).max(1),
            None if self.benching => full,
            None => smoke,
        }
    }

    /// Repetitions: `--runs`, else `full` when measuring and 1 in a smoke run.
    pub fn runs(&self, full: usize) -> usize {
        self.runs.unwrap_or(if self.measuring() { full } else { 1 })
    }

    /// The `BxC` configurations given, else `defaults`.
    pub fn configs_or(&self, defaults: &[(usize, usize)]) -> Vec<(usize, usize)> {
        if self.configs.is_empty() {
            defaults.to_vec()
        } else {
            self.configs.clone()
        }
    }

    /// Whether counts are the real ones (full, or scaled by the caller's choice).
    pub fn measuring(&self) -> bool {
        self.benching || self.scale.is_some() || self.count.is_some()
    }
}
