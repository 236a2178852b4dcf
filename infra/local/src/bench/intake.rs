//! `pulse bench intake`: how fast this machine takes in webhooks.
//!
//! It starts `pulse serve` as a child process on a temporary embedded store
//! (free loopback ports, fresh secrets), signs unique requests of the load
//! harness's mix ([`crate::load`]) ahead of time, then loads `POST /webhook`:
//!
//! - **closed loop** (no `--rate`): `--connections` clients each send their next
//!   request as soon as the last is answered, for `--duration`: the saturation
//!   throughput;
//! - **open loop** (`--rate R`): a request is due every 1/R s whatever the answers,
//!   and its latency counts from when it was due, so a stall shows in the figures
//!   instead of slowing the load (no coordinated omission).
//!
//! Then it checks the count: every event stored must be counted by the metrics API
//! (`/api/webhook/stats/realtime`, last hour), and reads the server's peak memory
//! (`VmHWM`). Run it on the release build: `cargo run --release -- bench intake`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use pulse_shared::signature::{sign, SIGNATURE_HEADER};
use tokio::process::{Child, Command};

use super::{free_port, mib, peak_memory_kib, positive_rate, progress, Case, Percentiles, Report};
use crate::load::Mix;

/// `pulse bench intake`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Updates per request (Meta batches up to 1000).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    updates: u16,
    /// How long to load, e.g. `20s`.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    connections: u16,
    /// Requests per second, open loop (latency from each request's due time);
    /// without it, as fast as answered.
    #[arg(long, value_parser = positive_rate)]
    rate: Option<f64>,
    /// Requests signed ahead (default: enough for the run).
    #[arg(long)]
    requests: Option<usize>,
}

/// Runs `pulse bench intake`, loading a child `pulse serve` of this very binary;
/// fails when the counts do not match.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let updates = usize::from(args.updates);
    let plan = IntakePlan {
        updates,
        duration: args.duration,
        connections: usize::from(args.connections),
        rate: args.rate,
        requests: args
            .requests
            .unwrap_or_else(|| IntakePlan::default_requests(updates, args.duration, args.rate)),
    };
    let pulse = std::env::current_exe().context("where is this binary?")?;
    let report = intake(plan, pulse).await?;
    print!("{}", report.render());
    if report.verified() {
        Ok(())
    } else {
        bail!("the counts do not match what was sent (see above)")
    }
}

/// What to load the webhook with.
#[derive(Debug, Clone)]
pub struct IntakePlan {
    /// Updates per request.
    pub updates: usize,
    pub duration: Duration,
    /// Concurrent clients (closed loop) or connections at most (open loop).
    pub connections: usize,
    /// Requests per second (open loop); `None`: as fast as answered.
    pub rate: Option<f64>,
    /// Requests signed ahead; a closed-loop run that uses them all stops early
    /// (resending would be duplicates, which are cheaper).
    pub requests: usize,
}

impl IntakePlan {
    /// Enough requests for the run: rate × duration in the open loop; in the
    /// closed loop about 400 000 updates' worth (more than 20 s at 15 000
    /// requests a second), at least 1 000 requests.
    pub fn default_requests(updates: usize, duration: Duration, rate: Option<f64>) -> usize {
        match rate {
            Some(rate) => (rate * duration.as_secs_f64()).ceil() as usize,
            None => {
                let per_second = (400_000 / 20 / updates.max(1)).max(50);
                (per_second as f64 * duration.as_secs_f64())
                    .ceil()
                    .max(1_000.0) as usize
            }
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct IntakeReport {
    pub plan: IntakePlan,
    /// Requests sent and answered 200.
    pub answered: usize,
    /// Requests answered otherwise, or not at all.
    pub failed: usize,
    /// Events the answers said were stored.
    pub stored: u64,
    /// Events the metrics API counts afterwards.
    pub counted: u64,
    pub elapsed: Duration,
    /// Latencies in ms, sorted.
    pub latencies_ms: Vec<f64>,
    /// The server's peak resident memory, in KiB.
    pub peak_memory_kib: Option<u64>,
}

impl IntakeReport {
    /// Every request answered 200 and every stored event counted, exactly.
    pub fn verified(&self) -> bool {
        self.failed == 0 && self.stored == self.counted
    }

    /// The figures, as every benchmark prints them ([`Report`]).
    pub fn render(&self) -> String {
        let seconds = self.elapsed.as_secs_f64();
        let mode = match self.plan.rate {
            Some(rate) => {
                format!("open loop at {rate} req/s (latency from each request's due time)")
            }
            None => format!("closed loop, {} connections", self.plan.connections),
        };
        let check = if self.verified() { "exact" } else { "MISMATCH" };
        let mut report = Report::new(
            "intake",
            "POST /webhook on a fresh `pulse serve` (temporary SQLite store), \
             every stored event then counted through the metrics API",
        );
        report.cases.push(
            Case::new(format!(
                "{} update(s) per request, {mode}, {seconds:.1} s",
                self.plan.updates
            ))
            .figure(
                "requests",
                format!(
                    "{} answered 200, {} failed: {:.0} req/s",
                    self.answered,
                    self.failed,
                    self.answered as f64 / seconds
                ),
            )
            .figure(
                "events",
                format!(
                    "{} stored: {:.0} events/s; the metrics API counts {} ({check})",
                    self.stored,
                    self.stored as f64 / seconds,
                    self.counted
                ),
            )
            .figure("latency", Percentiles::of(self.latencies_ms.clone()).ms(2))
            .figure(
                "memory",
                format!("server peak (VmHWM) {}", mib(self.peak_memory_kib)),
            ),
        );
        report.render()
    }
}

/// A `pulse serve` child on a temporary store.
struct Server {
    child: Child,
    base: String,
    token: String,
    secret: String,
    _data: tempfile::TempDir,
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl Server {
    async fn start(pulse: &Path, client: &reqwest::Client) -> anyhow::Result<Self> {
        let data = tempfile::tempdir().context("no temporary folder")?;
        let (http_port, ws_port) = (
            free_port().context("no free port")?,
            free_port().context("no free port")?,
        );
        let (secret, token) = (random_hex(), random_hex());
        let child = Command::new(pulse)
            .args(["serve", "--http-port", &http_port.to_string()])
            .args(["--ws-port", &ws_port.to_string()])
            .arg("--data-dir")
            .arg(data.path())
            .env("WHATSAPP_APP_SECRET", &secret)
            .env("WHATSAPP_VERIFY_TOKEN", random_hex())
            .env("DASHBOARD_TOKEN", &token)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("could not start {}", pulse.display()))?;
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{http_port}"),
            token,
            secret,
            _data: data,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            let health = client.get(format!("{}/health", server.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("pulse serve did not answer /health within 15 s")
    }

    fn peak_memory_kib(&self) -> Option<u64> {
        peak_memory_kib(self.child.id()?)
    }
}

/// One request's answer: latency in ms, and the events stored (`None`: failed).
type Answer = (f64, Option<u64>);

async fn post(client: &reqwest::Client, url: &str, body: &(Vec<u8>, String)) -> Option<u64> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, &body.1)
        .body(body.0.clone())
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let answer: serde_json::Value = response.json().await.ok()?;
    answer["data"]["stored"].as_u64()
}

/// Runs the benchmark with `pulse` (this very binary, usually).
pub async fn intake(plan: IntakePlan, pulse: PathBuf) -> anyhow::Result<IntakeReport> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.connections)
        .timeout(Duration::from_secs(30))
        .build()
        .context("no HTTP client")?;
    let server = Server::start(&pulse, &client).await?;
    progress(
        "intake",
        format_args!(
            "signing {} requests of {} update(s)…",
            plan.requests, plan.updates
        ),
    );
    let mut mix = Mix::new(rand::random());
    let bodies: Arc<Vec<(Vec<u8>, String)>> = Arc::new(
        (0..plan.requests)
            .map(|_| {
                let body = mix.delivery(plan.updates);
                let signature = sign(server.secret.as_bytes(), &body);
                (body, signature)
            })
            .collect(),
    );
    let url = Arc::new(format!("{}/webhook", server.base));
    progress(
        "intake",
        format_args!("loading {url} for {:?}…", plan.duration),
    );
    let started = Instant::now();
    let answers: Vec<Answer> = match plan.rate {
        None => closed_loop(&plan, &client, &url, &bodies).await,
        Some(rate) => open_loop(&plan, rate, &client, &url, &bodies).await,
    };
    let elapsed = started.elapsed();
    let peak_memory_kib = server.peak_memory_kib();

    let realtime: serde_json::Value = client
        .get(format!("{}/api/webhook/stats/realtime", server.base))
        .bearer_auth(&server.token)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .context("the metrics API did not answer")?
        .json()
        .await
        .context("the metrics API's answer is not JSON")?;
    let counted = realtime["data"]["last_hour"]
        .as_u64()
        .context("the metrics API's answer has no data.last_hour")?;

    let mut latencies_ms: Vec<f64> = answers.iter().map(|(ms, _)| *ms).collect();
    latencies_ms.sort_by(f64::total_cmp);
    let stored = answers.iter().filter_map(|(_, s)| *s).sum();
    let answered = answers.iter().filter(|(_, s)| s.is_some()).count();
    Ok(IntakeReport {
        failed: answers.len() - answered,
        plan,
        answered,
        stored,
        counted,
        elapsed,
        latencies_ms,
        peak_memory_kib,
    })
}

async fn closed_loop(
    plan: &IntakePlan,
    client: &reqwest::Client,
    url: &Arc<String>,
    bodies: &Arc<Vec<(Vec<u8>, String)>>,
) -> Vec<Answer> {
    let next = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + plan.duration;
    let workers = (0..plan.connections).map(|_| {
        let (client, url, bodies, next) =
            (client.clone(), url.clone(), bodies.clone(), next.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while Instant::now() < end {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(index) else { break };
                let sent = Instant::now();
                let stored = post(&client, &url, body).await;
                answers.push((sent.elapsed().as_secs_f64() * 1e3, stored));
            }
            answers
        })
    });
    let mut answers = Vec::new();
    for worker in futures::future::join_all(workers).await {
        answers.extend(worker.unwrap_or_default());
    }
    if next.load(Ordering::Relaxed) >= bodies.len() {
        progress(
            "intake",
            format_args!(
                "all {} signed requests sent before the duration ended (pass --requests for more)",
                bodies.len()
            ),
        );
    }
    answers
}

async fn open_loop(
    plan: &IntakePlan,
    rate: f64,
    client: &reqwest::Client,
    url: &Arc<String>,
    bodies: &Arc<Vec<(Vec<u8>, String)>>,
) -> Vec<Answer> {
    let start = tokio::time::Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(plan.connections.max(1) * 64));
    let mut requests = tokio::task::JoinSet::new();
    for index in 0..bodies.len() {
        let due = start + Duration::from_secs_f64(index as f64 / rate);
        if due.duration_since(start) >= plan.duration {
            break;
        }
        tokio::time::sleep_until(due).await;
        let (client, url, bodies, limit) =
            (client.clone(), url.clone(), bodies.clone(), limit.clone());
        requests.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let stored = post(&client, &url, &bodies[index]).await;
            (due.elapsed().as_secs_f64() * 1e3, stored)
        });
    }
    requests.join_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enough_requests_for_the_run() {
        let twenty = Duration::from_secs(20);
        assert_eq!(
            IntakePlan::default_requests(1, twenty, Some(2000.0)),
            40_000
        );
        assert_eq!(IntakePlan::default_requests(1, twenty, None), 400_000);
        assert_eq!(IntakePlan::default_requests(50, twenty, None), 8_000);
        assert_eq!(
            IntakePlan::default_requests(1000, Duration::from_secs(2), None),
            1_000
        );
    }

    #[test]
    fn a_report_is_exact_only_when_everything_counted() {
        let report = IntakeReport {
            plan: IntakePlan {
                updates: 1,
                duration: Duration::from_secs(1),
                connections: 1,
                rate: None,
                requests: 3,
            },
            answered: 3,
            failed: 0,
            stored: 3,
            counted: 3,
            elapsed: Duration::from_secs(1),
            latencies_ms: vec![1.0, 2.0, 9.0],
            peak_memory_kib: Some(2048),
        };
        assert!(report.verified());
        let text = report.render();
        assert!(text.contains("3 answered 200, 0 failed: 3 req/s"), "{text}");
        assert!(
            text.contains("  latency     p50 2.00 ms, p95 9.00 ms, p99 9.00 ms, max 9.00 ms"),
            "{text}"
        );
        assert!(
            text.contains("(exact)") && text.contains("2.0 MiB"),
            "{text}"
        );
        let short = IntakeReport {
            counted: 2,
            ..report.clone()
        };
        assert!(!short.verified());
        assert!(short.render().contains("MISMATCH"));
        let failed = IntakeReport {
            failed: 1,
            ..report
        };
        assert!(!failed.verified());
    }
}
