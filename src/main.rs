//! The `esmd` binary: parses the command line, sets up logging, and hands over to the library.
//! This is the only place `anyhow` is used.

#![forbid(unsafe_code)]

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

// Why not the system allocator: see Cargo.toml. The benches set the same one
// (benches/common/mod.rs), so they measure what the binary runs.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "esmd", version, about = "Event source mappings, self-hosted: streams and queues to functions with AWS Lambda's semantics")]
struct Cli {
    /// Log format (overrides the config file's [log] format).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum LiveView {
    /// Bars when stdout is a terminal, lines otherwise.
    Auto,
    Bars,
    Lines,
    Off,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the mappings of a config file until SIGTERM/SIGINT.
    Run {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Check a config file without connecting to anything.
    Validate {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Run the mappings of a config file until every shard has caught up (or the time limit
    /// passes), with a live view, then print a report: a load test of the function against
    /// the sources' backlog. Exit code 0 when everything caught up, 3 when the time limit came
    /// first, 130 when interrupted (the report is printed in every case).
    Drain {
        #[arg(short, long)]
        config: PathBuf,
        /// Stop after this long even if not caught up (e.g. `90s`, `15m`).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        time_limit: std::time::Duration,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Live view: bars on a terminal, else a line per mapping every `--interval`.
        #[arg(long, value_enum, default_value_t = LiveView::Auto)]
        live: LiveView,
        /// How often `--live lines` prints.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
    },
    /// A self-contained demonstration: a backlog with poison and expired records in an
    /// embedded Kafka topic (librdkafka's mock cluster; `--source memory` for an in-memory
    /// stream), a local HTTP function, bisection and a file destination kept in ./esmd-demo.
    /// Needs no servers.
    Demo(esmd::demo::DemoOptions),
    /// Fill the source of a mapping with a synthetic backlog (load tests: seed, then `drain`)
    /// and print what was written.
    Seed(SeedArgs),
    /// Convert AWS event source mapping definitions (get-/list-event-source-mappings output,
    /// CloudFormation and SAM templates) into an esmd config (TOML).
    Import(esmd::import::ImportArgs),
    /// Try a filter pattern against an event (like AWS's test-event-pattern). The last line of
    /// output is `match`, `nomatch` or `invalid`.
    FilterTest {
        /// The pattern (JSON, or @file).
        #[arg(long, requires = "event", conflicts_with = "file")]
        pattern: Option<String>,
        /// The event (JSON, or @file).
        #[arg(long, requires = "pattern")]
        event: Option<String>,
        /// A file holding `Event` and `EventPattern` (JSON or JSON5), like the test vectors.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct SeedArgs {
    /// The config file `run` drains with: its mapping's source is the target, with the same
    /// credentials, endpoint and TLS.
    #[arg(short, long)]
    config: PathBuf,
    /// The mapping whose source to fill (needed when the file has several).
    #[arg(long)]
    mapping: Option<String>,
    /// How many records to write.
    #[arg(long)]
    count: u64,
    /// Size of each payload, a JSON object padded to exactly this many bytes:
    /// {"n":123,"key":"key-7","poison":false,"pad":"xxx…"}.
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// Key cardinality: record n has key `key-{n % K}` (partition key, Kafka key, FIFO
    /// message group, DynamoDB hash key).
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// This fraction (0.0–1.0) of the records, spread evenly, carry "poison":true, for a test
    /// function to fail on.
    #[arg(long, default_value_t = 0.0)]
    poison_fraction: f64,
    /// Records per second (default: as fast as the target takes them).
    #[arg(long)]
    rate: Option<f64>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn init_logging(format: LogFormat) {
    init_logging_at(format, "info");
}

/// Colours only for a person at a terminal: a log file or collector gets plain text, and
/// `NO_COLOR` (any non-empty value, no-color.org) turns them off everywhere.
fn colour_logs() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && !matches!(std::env::var_os("NO_COLOR"), Some(v) if !v.is_empty())
}

/// `default` applies when RUST_LOG is not set. Events of client libraries that would log a
/// credential are dropped at every level (`esmd::connectors::logs_secrets`).
fn init_logging_at(format: LogFormat, default: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour_logs());
    let no_secrets = tracing_subscriber::filter::filter_fn(|metadata| !esmd::connectors::logs_secrets(metadata));
    match format {
        LogFormat::Json => builder.json().flatten_event(true).finish().with(no_secrets).init(),
        LogFormat::Text => builder.finish().with(no_secrets).init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Validate { config } => {
            let cfg = esmd::config::Config::load(&config).map_err(|e| anyhow::anyhow!("{}:\n{e}", config.display()))?;
            esmd::app::check(&cfg).map_err(|e| anyhow::anyhow!("{}:\n{e}", config.display()))?;
            for warning in cfg.warnings() {
                eprintln!("warning: {}: {warning}", config.display());
            }
            println!("{}: ok ({} mapping{})", config.display(), cfg.mappings.len(), if cfg.mappings.len() == 1 { "" } else { "s" });
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::FilterTest { pattern, event, file } => Ok(filter_test(pattern, event, file)?),
        Command::Import(args) => {
            esmd::import::run(&args)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Run { config } => {
            let cfg = esmd::config::Config::load(&config).map_err(|e| anyhow::anyhow!("{}:\n{e}", config.display()))?;
            init_logging(cli.log_format.unwrap_or(if cfg.log.format == esmd::config::LogFormat::Json { LogFormat::Json } else { LogFormat::Text }));
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(esmd::app::run(cfg, esmd::app::shutdown_signal()))?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Drain { config, time_limit, json, live, interval } => {
            let cfg = esmd::config::Config::load(&config).map_err(|e| anyhow::anyhow!("{}:\n{e}", config.display()))?;
            esmd::app::check(&cfg).map_err(|e| anyhow::anyhow!("{}:\n{e}", config.display()))?;
            // Logs would tear the bars apart: only warnings unless RUST_LOG says otherwise.
            init_logging_at(cli.log_format.unwrap_or(LogFormat::Text), "warn");
            drain(cfg, time_limit, json, live, interval)
        }
        Command::Seed(args) => {
            let cfg = esmd::config::Config::load(&args.config).map_err(|e| anyhow::anyhow!("{}:\n{e}", args.config.display()))?;
            init_logging(cli.log_format.unwrap_or(if cfg.log.format == esmd::config::LogFormat::Json { LogFormat::Json } else { LogFormat::Text }));
            let opts = esmd::seed::SeedOptions {
                count: args.count,
                record_bytes: args.record_bytes,
                keys: args.keys,
                poison_fraction: args.poison_fraction,
                rate: args.rate,
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let summary = rt.block_on(esmd::seed::seed(&cfg, args.mapping.as_deref(), &opts))?;
            if args.json {
                println!("{}", serde_json::to_string(&summary).context("encoding the summary")?);
            } else {
                print!("{summary}");
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Demo(opts) => {
            init_logging(cli.log_format.unwrap_or(LogFormat::Text));
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(esmd::demo::run(opts, esmd::app::shutdown_signal(), |report| print!("{report}")))?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn drain(cfg: esmd::config::Config, time_limit: std::time::Duration, json: bool, live: LiveView, interval: std::time::Duration) -> anyhow::Result<std::process::ExitCode> {
    use esmd::drain::view::{Bars, Lines, Silent, View};
    use std::io::IsTerminal;
    let mappings = cfg.mappings.iter().filter(|m| m.enabled).count();
    let live = match live {
        LiveView::Auto if std::io::stdout().is_terminal() => LiveView::Bars,
        LiveView::Auto => LiveView::Lines,
        other => other,
    };
    // Lines go to stderr so that stdout holds only the report (`--json` stays parseable).
    let mut view: Box<dyn View> = match live {
        LiveView::Bars => Box::new(Bars::new(mappings)),
        LiveView::Lines => Box::new(Lines::new(interval, Box::new(std::io::stderr()))),
        _ => Box::new(Silent),
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let options = esmd::drain::DrainOptions { time_limit };
    let report = rt.block_on(esmd::drain::drain(&cfg, options, view.as_mut(), esmd::app::shutdown_signal()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    let code = match (report.interrupted, report.caught_up) {
        (true, _) => 130,
        (false, true) => 0,
        (false, false) => 3,
    };
    Ok(std::process::ExitCode::from(code))
}

fn read_arg(arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}")),
        None => Ok(arg.to_string()),
    }
}

fn filter_test(pattern: Option<String>, event: Option<String>, file: Option<PathBuf>) -> anyhow::Result<std::process::ExitCode> {
    use esmd_filter::TestOutcome;
    let (event, pattern) = match (pattern, event, file) {
        (Some(p), Some(e), None) => (read_arg(&e)?, read_arg(&p)?),
        (None, None, Some(f)) => {
            let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            match esmd_filter::parse_vector_file(&text) {
                Ok(pair) => pair,
                Err(e) => {
                    println!("{e}");
                    println!("invalid");
                    return Ok(std::process::ExitCode::from(1));
                }
            }
        }
        _ => anyhow::bail!("give --pattern and --event, or --file"),
    };
    let outcome = esmd_filter::test_event_pattern(&pattern, &event);
    let code = match &outcome {
        TestOutcome::Match => {
            println!("match");
            0
        }
        TestOutcome::NoMatch => {
            println!("nomatch");
            0
        }
        TestOutcome::Invalid(why) => {
            println!("{why}");
            println!("invalid");
            1
        }
    };
    Ok(std::process::ExitCode::from(code))
}
