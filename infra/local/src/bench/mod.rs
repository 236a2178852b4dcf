//! `pulse bench …`: the benchmarks, one subcommand each, on one harness.
//!
//! - [`intake`]: webhooks a second into a fresh `pulse serve`, counts checked;
//! - [`live`]: webhook POST to every connected WebSocket client's receipt;
//! - [`metrics`]: the 30-day metrics query's cost as stored events grow;
//! - [`dynamodb`]: DynamoDB requests and capacity units per event (moto);
//! - [`coldstart`]: each Lambda function's cold start and peak memory.
//!
//! Every one prints its figures the same way ([`Report`]): one header line saying
//! what was measured and on what machine and build, then a table, one block per
//! case (a size, a client count, a function), one named figure a line, with its
//! units. Progress goes to standard error ([`progress`]), figures to standard
//! output. Run them on the release build: `cargo run --release -- bench …`.

pub mod coldstart;
pub mod dynamodb;
pub mod intake;
pub mod live;
pub mod metrics;

use std::fmt::Write as _;
use std::future::Future;
use std::time::Instant;

use anyhow::Context;

pub use intake::{IntakePlan, IntakeReport};

/// A loopback port nobody listens on now (for a server about to be started).
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

/// A rate, for `--rate`: more than 0, at most 100 000 a second.
pub fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 100_000.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate between 0 and 100000 webhooks per second"
        )),
    }
}

/// Progress for the person waiting, on standard error (the figures go to
/// standard output).
pub fn progress(benchmark: &str, message: impl std::fmt::Display) {
    eprintln!("pulse bench {benchmark}: {message}");
}

/// A process's peak resident memory (`VmHWM`), in KiB.
pub fn peak_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// KiB as MiB, for a figure: `12.3 MiB`, or `unknown`.
pub fn mib(kib: Option<u64>) -> String {
    kib.map_or("unknown".to_owned(), |kib| {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    })
}

/// Milliseconds since `started`.
pub fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

/// Times `runs` runs of `run`, one after the other: each one's time in ms, in
/// the order run. The first error stops it.
pub async fn time_runs<F, Fut, T>(runs: usize, mut run: F) -> anyhow::Result<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(run().await?);
        times.push(ms_since(started));
    }
    Ok(times)
}

/// The distribution of a set of samples (ms, or anything else).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (in any order); NaN when empty.
    pub fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| match samples.len() {
            0 => f64::NAN,
            n => samples[((n - 1) as f64 * q).round() as usize],
        };
        Self {
            count: samples.len(),
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }

    /// `p50 1.20 ms, p95 1.40 ms, p99 1.50 ms, max 2.00 ms`, with `decimals`.
    pub fn ms(&self, decimals: usize) -> String {
        format!(
            "p50 {:.d$} ms, p95 {:.d$} ms, p99 {:.d$} ms, max {:.d$} ms",
            self.p50,
            self.p95,
            self.p99,
            self.max,
            d = decimals
        )
    }
}

/// What this runs on, for the header: `2 CPUs (AMD EPYC), release build`.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "CPU model unknown".to_owned());
    format!("{cpus} CPUs ({model}), {} build", build_profile())
}

/// The Cargo profile this binary was built with: the name of its folder under
/// `target/` (`release`, `debug`, `profiling`), else whether it is optimised.
fn build_profile() -> String {
    let from_path = std::env::current_exe().ok().and_then(|exe| {
        let folder = exe.parent()?;
        (folder.parent()?.file_name()? == "target")
            .then(|| folder.file_name()?.to_str().map(str::to_owned))
            .flatten()
    });
    from_path.unwrap_or_else(|| {
        if cfg!(debug_assertions) {
            "debug".into()
        } else {
            "release".into()
        }
    })
}

/// Width of the figure names' column, the same in every benchmark.
const NAME_WIDTH: usize = 10;

/// A benchmark's figures, as every benchmark prints them: one header line, then
/// one block per case, its label then its figures, one a line, name and value:
///
/// ```text
/// pulse bench live: webhook POST to each client's receipt, 3 events per client count; on 2 CPUs (AMD EPYC), release build
/// 1 client
///   events      3 posted, 3 samples (client × event)
///   delivery    p50 1.20 ms, p95 1.40 ms, p99 1.50 ms, max 2.00 ms
/// 3 clients
///   …
/// ```
///
/// [`Report::print_header`] and [`Report::print`] write it as it is measured,
/// so that a long benchmark shows each case when it is done.
#[derive(Debug, Clone)]
pub struct Report {
    /// The subcommand: `live`.
    pub benchmark: &'static str,
    /// What was measured, and how much of it.
    pub measured: String,
    /// The machine and build ([`machine`]).
    pub machine: String,
    pub cases: Vec<Case>,
}

/// One block of a [`Report`]: a size, a client count, a function.
#[derive(Debug, Clone)]
pub struct Case {
    pub label: String,
    /// (name, value with its units), in order.
    pub figures: Vec<(String, String)>,
}

impl Case {
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            figures: Vec::new(),
        }
    }

    /// Adds a figure: its name, and its value with units.
    pub fn figure(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.figures.push((name.into(), value.into()));
        self
    }

    /// The label, then each figure indented, names in a column.
    pub fn render(&self) -> String {
        let mut text = format!("{}\n", self.label);
        for (name, value) in &self.figures {
            let _ = writeln!(text, "  {name:<NAME_WIDTH$}  {value}");
        }
        text
    }
}

impl Report {
    /// A report on this machine, no cases yet.
    pub fn new(benchmark: &'static str, measured: impl Into<String>) -> Self {
        Self {
            benchmark,
            measured: measured.into(),
            machine: machine(),
            cases: Vec::new(),
        }
    }

    /// `pulse bench NAME: what was measured; on MACHINE`, and a newline.
    pub fn header(&self) -> String {
        format!(
            "pulse bench {}: {}; on {}\n",
            self.benchmark, self.measured, self.machine
        )
    }

    /// The header line and every case.
    pub fn render(&self) -> String {
        let mut text = self.header();
        for case in &self.cases {
            text.push_str(&case.render());
        }
        text
    }

    /// Prints the header line on standard output.
    pub fn print_header(&self) {
        print!("{}", self.header());
    }

    /// Prints a case on standard output, and keeps it.
    pub fn print(&mut self, case: Case) {
        print!("{}", case.render());
        self.cases.push(case);
    }
}

/// A DynamoDB client for `endpoint`, credentials and region from the environment.
pub async fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_config::from_env().endpoint_url(endpoint).load().await;
    aws_sdk_dynamodb::Client::new(&config)
}

/// Fresh events and connections tables, `bench-…` and `bench-…-connections`;
/// returns the events table's name.
pub async fn fresh_tables(client: &aws_sdk_dynamodb::Client) -> anyhow::Result<String> {
    let table = format!("bench-{:x}", rand::random::<u32>());
    pulse_shared::store::dynamodb::create_tables(client, &table, &format!("{table}-connections"))
        .await
        .with_context(|| format!("cannot create the table {table}"))?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = Percentiles::of(vec![9.0, 1.0, 2.0]);
        assert_eq!((p.count, p.p50, p.p99, p.max), (3, 2.0, 9.0, 9.0));
        assert_eq!(
            p.ms(2),
            "p50 2.00 ms, p95 9.00 ms, p99 9.00 ms, max 9.00 ms"
        );
        assert!(Percentiles::of(Vec::new()).p50.is_nan());
    }

    #[test]
    fn every_report_has_one_header_line_then_aligned_figures() {
        let mut report = Report::new("demo", "something, twice");
        report.machine = "2 CPUs (a CPU), debug build".into();
        report.cases.push(Case::new("small").figure("time", "1 ms"));
        report
            .cases
            .push(Case::new("large").figure("a longer name", "2 ms"));
        assert_eq!(
            report.render(),
            "pulse bench demo: something, twice; on 2 CPUs (a CPU), debug build\n\
             small\n  time        1 ms\n\
             large\n  a longer name  2 ms\n"
        );
    }
}
