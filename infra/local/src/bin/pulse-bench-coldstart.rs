//! `pulse-bench-coldstart`: each function's cold start and peak memory.
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

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;
use tokio::sync::oneshot;

#[derive(Parser)]
struct Args {
    /// Folder of the built function binaries (`cargo build --release`).
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

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn cold_start(
    args: &Args,
    binary: &Path,
    event: Bytes,
    tables: (&str, &str),
) -> (Duration, u64) {
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, api).await });

    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", binary.file_name().unwrap())
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
        .spawn()
        .expect("the function starts");
    let answered = tokio::time::timeout(Duration::from_secs(30), outcome)
        .await
        .expect("the function answers within 30 s")
        .unwrap();
    let answered = answered.unwrap_or_else(|error| panic!("{}: {error}", binary.display()));
    let peak = child.id().and_then(peak_rss_kib).unwrap_or_default();
    let _ = child.kill().await;
    server.abort();
    (answered - started, peak)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let tables = ("coldstart-events", "coldstart-connections");
    let config = aws_config::from_env()
        .endpoint_url(&args.dynamodb_endpoint)
        .load()
        .await;
    pulse_shared::store::dynamodb::create_tables(
        &aws_sdk_dynamodb::Client::new(&config),
        tables.0,
        tables.1,
    )
    .await
    .expect("the tables can be created");

    println!("| function | sample event | cold start median (ms) | worst (ms) | peak memory (MiB) | arm64 bootstrap (KiB) |");
    println!("|---|---|---|---|---|---|");
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    for (function, file) in FUNCTIONS {
        let event = Bytes::from(std::fs::read(events.join(file)).unwrap());
        let binary = args.bin_dir.join(function);
        let mut times = Vec::new();
        let mut peak = 0;
        for _ in 0..args.runs {
            let (time, rss) = cold_start(&args, &binary, event.clone(), tables).await;
            times.push(time.as_secs_f64() * 1000.0);
            peak = peak.max(rss);
        }
        times.sort_by(f64::total_cmp);
        let package = std::fs::metadata(format!("target/lambda/{function}/bootstrap"))
            .map(|m| (m.len() / 1024).to_string())
            .unwrap_or_else(|_| "not built".into());
        println!(
            "| {function} | {file} | {:.1} | {:.1} | {:.1} | {package} |",
            times[times.len() / 2],
            times.last().unwrap(),
            peak as f64 / 1024.0,
        );
    }
}
