//! `pulse bench coldstart`: each function's cold start and peak memory.
//!
//! For every function it serves the Lambda Runtime API on a free loopback port
//! (the part a function uses: `GET …/invocation/next`, `POST …/response` and
//! `…/error`), starts the built binary as Lambda would (`AWS_LAMBDA_RUNTIME_API`
//! and the function's settings in its environment), hands it its sample event from
//! `events/`, and measures the time from process start to the function's response
//! to that first event, then reads the process's peak resident memory (`VmHWM`).
//! The functions talk to the DynamoDB-compatible server at `--dynamodb-endpoint`
//! (moto), which also serves the broadcast function's Management API.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::oneshot;

use super::{
    dynamodb_client, fresh_tables, mib, peak_memory_kib, progress, Case, Percentiles, Report,
};

/// `pulse bench coldstart`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of the built function binaries (`cargo build --release --workspace`).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The DynamoDB-compatible server the functions use (tables are created there).
    #[arg(long)]
    dynamodb_endpoint: String,
    /// Cold starts measured per function.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// Each function with the sample event it is started with.
const FUNCTIONS: [(&str, &str); 6] = [
    ("webhook", "webhook/deliver.json"),
    ("metrics", "metrics/metrics.json"),
    ("ws-connect", "ws-connect/connect.json"),
    ("ws-default", "ws-default/ping.json"),
    ("ws-disconnect", "ws-disconnect/disconnect.json"),
    ("broadcast", "broadcast/stream-batch.json"),
];

/// One invocation in flight: its event, and who waits for its outcome.
struct Invocation {
    event: Option<Bytes>,
    done: Option<oneshot::Sender<Result<Instant, String>>>,
}

type Shared = Arc<Mutex<Invocation>>;

async fn next(State(shared): State<Shared>) -> impl IntoResponse {
    let event = shared.lock().unwrap().event.take();
    let Some(event) = event else {
        // One invocation per process: later polls wait until the process is killed.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let mut headers = HeaderMap::new();
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_static("cold-start-1"),
    );
    headers.insert("lambda-runtime-deadline-ms", HeaderValue::from(deadline));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:pulse"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
    );
    (headers, event)
}

async fn respond(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let _ = std::str::from_utf8(&body);
    if let Some(done) = shared.lock().unwrap().done.take() {
        let _ = done.send(Ok(at));
    }
    StatusCode::ACCEPTED
}

async fn fail(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    if let Some(done) = shared.lock().unwrap().done.take() {
        let _ = done.send(Err(String::from_utf8_lossy(&body).into_owned()));
    }
    StatusCode::ACCEPTED
}

async fn cold_start(
    args: &Args,
    binary: &Path,
    event: Bytes,
    tables: (&str, &str),
) -> anyhow::Result<(Duration, Option<u64>)> {
    let (done, outcome) = oneshot::channel();
    let shared: Shared = Arc::new(Mutex::new(Invocation {
        event: Some(event),
        done: Some(done),
    }));
    let api = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
        .route("/2018-06-01/runtime/init/error", post(fail))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("no loopback port for the Runtime API")?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, api).await });

    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env(
            "AWS_LAMBDA_FUNCTION_NAME",
            binary.file_name().unwrap_or_default(),
        )
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "cold-start")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", &args.dynamodb_endpoint)
        .env("WEBSOCKET_ENDPOINT", &args.dynamodb_endpoint)
        .env("EVENTS_TABLE", tables.0)
        .env("CONNECTIONS_TABLE", tables.1)
        .env("WHATSAPP_APP_SECRET", "sample-app-secret")
        .env("WHATSAPP_VERIFY_TOKEN", "sample-verify-token")
        .env("DASHBOARD_TOKEN", "sample-dashboard-token-0123456789")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("could not start {}", binary.display()))?;
    let answered = tokio::time::timeout(Duration::from_secs(30), outcome)
        .await
        .with_context(|| format!("{} did not answer within 30 s", binary.display()))?
        .context("the Runtime API stopped")?
        .map_err(|error| anyhow!("{} failed: {error}", binary.display()))?;
    let peak = child.id().and_then(peak_memory_kib);
    let _ = child.kill().await;
    server.abort();
    Ok((answered - started, peak))
}

/// Runs `pulse bench coldstart`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = dynamodb_client(&args.dynamodb_endpoint).await;
    let events_table = fresh_tables(&client).await?;
    let connections_table = format!("{events_table}-connections");
    let tables = (events_table.as_str(), connections_table.as_str());

    let mut report = Report::new(
        "coldstart",
        format!(
            "each function's process start to its answer to a first sample event, \
             and its peak memory, {} cold starts each, binaries from {}, DynamoDB at {}",
            args.runs,
            args.bin_dir.display(),
            args.dynamodb_endpoint
        ),
    );
    report.print_header();
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    for (function, file) in FUNCTIONS {
        let event = Bytes::from(
            std::fs::read(events.join(file))
                .with_context(|| format!("cannot read the sample event {file}"))?,
        );
        let binary = args.bin_dir.join(function);
        progress("coldstart", format_args!("{function} ×{}…", args.runs));
        let mut times = Vec::new();
        let mut peak = None;
        for _ in 0..args.runs {
            let (time, rss) = cold_start(&args, &binary, event.clone(), tables).await?;
            times.push(time.as_secs_f64() * 1000.0);
            peak = peak.max(rss);
        }
        let package = std::fs::metadata(format!("target/lambda/{function}/bootstrap"))
            .map(|m| format!("{} KiB", m.len() / 1024))
            .unwrap_or_else(|_| "not built".into());
        report.print(
            Case::new(format!("{function} ({file})"))
                .figure("cold start", Percentiles::of(times).ms(1))
                .figure("memory", format!("peak (VmHWM) {}", mib(peak)))
                .figure("package", format!("arm64 bootstrap {package}")),
        );
    }
    Ok(())
}
