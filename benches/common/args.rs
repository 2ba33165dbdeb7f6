//! Arguments every bench takes: `--bench` (cargo bench passes it; without it, as under
//! `cargo test --all-targets`, a bench is a quick smoke run), an explicit count, or `--scale F`
//! (the full counts times F, for a shorter run that still means something).

pub struct Args {
    /// Run with full counts: `cargo bench` passes `--bench`.
    pub benching: bool,
    /// The first plain number among the arguments.
    pub count: Option<usize>,
    /// `--scale F`: full counts times F.
    pub scale: Option<f64>,
    /// `BxC` arguments (e.g. `100x1`): the configurations a drain bench runs instead of its
    /// defaults (batch size × lanes or concurrency).
    pub configs: Vec<(usize, usize)>,
}

impl Args {
    pub fn parse() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let scale = args.iter().position(|a| a == "--scale").map(|i| {
            args.get(i + 1).and_then(|s| s.parse::<f64>().ok()).filter(|f| *f > 0.0).expect("--scale takes a positive number, e.g. --scale 0.1")
        });
        // The number after --scale is the scale, not a count.
        let count = args.iter().enumerate().filter(|(i, _)| *i == 0 || args[i - 1] != "--scale").find_map(|(_, a)| a.parse().ok());
        let configs = args
            .iter()
            .filter_map(|a| {
                let (b, c) = a.split_once('x')?;
                Some((b.parse().ok()?, c.parse().ok()?))
            })
            .collect();
        Args { benching: args.iter().any(|a| a == "--bench"), count, scale, configs }
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
