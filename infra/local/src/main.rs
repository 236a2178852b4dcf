//! `pulse`: run Pulse locally (`pulse serve`, the default), send it signed
//! WhatsApp payloads (`pulse send`) or realistic traffic (`pulse simulate`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use pulse_local::backup;
use pulse_local::bench::{self, positive_rate};
use pulse_local::send::send_files;
use pulse_local::simulate::{simulate, Plan};
use pulse_local::stack::{
    open_store, read_env_file, LocalStack, Options, Settings, StoreKind, LOCAL_ENV_FILE,
    SECRET_SETTINGS, STACK_ONLY_SECRET,
};
use pulse_shared::alerts::notify::{self, Notifier};
use pulse_shared::config::Source;
use pulse_shared::telemetry;

#[derive(Parser)]
#[command(
    name = "pulse",
    version,
    about = "Pulse: WhatsApp webhooks to durable events and live metrics"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `pulse` alone is `pulse serve`.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the whole system on this machine (the default command).
    Serve(ServeArgs),
    /// Sign WhatsApp payload files with the app secret and POST them to a running stack.
    Send(SendArgs),
    /// Send realistic signed traffic to a running stack: clicks, chats, media,
    /// replies and their statuses out of order, re-deliveries.
    Simulate(SimulateArgs),
    /// Write every stored raw update as NDJSON, one webhook a line (the backup).
    Export(ExportArgs),
    /// Record the updates of an export exactly once (restore, or move stores).
    Import(ImportArgs),
    /// Measure this machine: `pulse bench intake` (and the others: `pulse bench help`).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Alerts: `pulse alert test` posts a test notification to ALERT_WEBHOOK_URL.
    #[command(subcommand)]
    Alert(AlertCommand),
}

#[derive(Subcommand)]
enum AlertCommand {
    /// Post a test notification to ALERT_WEBHOOK_URL (from the environment or
    /// the data folder's local.env) and say what came back.
    Test {
        /// Where `pulse serve` keeps its settings.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
    },
}

/// The benchmarks, each printing a header line (what, on what machine and
/// build) and then its figures the same way.
#[derive(Subcommand)]
enum BenchCommand {
    /// Load a fresh `pulse serve` (temporary store) with unique signed webhooks,
    /// check every event is counted, print req/s, events/s, latency and memory.
    Intake(bench::intake::Args),
    /// Connect WebSocket clients to the local stack (in this process), post
    /// webhooks one at a time, print the time to each client's receipt.
    Live(bench::live::Args),
    /// Fill empty stores through the real path, time the 30-day metrics query,
    /// print the fill rate, the query's times and the rows or items it read.
    Metrics(bench::metrics::Args),
    /// Record deliveries of each size on DynamoDB (moto), then again, print the
    /// requests and capacity units per delivery and per event.
    Dynamodb(bench::dynamodb::Args),
    /// Start each built Lambda function as Lambda would, on a local Runtime API,
    /// print its cold start and peak memory.
    Coldstart(bench::coldstart::Args),
}

/// Which store `export` and `import` read and write.
#[derive(clap::Args)]
struct StoreArgs {
    /// The data folder of the embedded store (and of local.env's settings).
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// `dynamodb`: the table EVENTS_TABLE names (AWS_ENDPOINT_URL for moto or
    /// DynamoDB Local), with credentials and region from the environment.
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    store: StoreKind,
}

#[derive(clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Write to this file (standard output without it).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// An export of `pulse export` (NDJSON); `-` reads standard input.
    file: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address both APIs listen on. The default keeps Pulse on this machine;
    /// to serve Meta, put a TLS reverse proxy or tunnel in front (docs/deploy.md).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Port of the HTTP API (webhook and metrics).
    #[arg(long, default_value_t = 3000)]
    http_port: u16,
    /// Port of the WebSocket API (and its Management API).
    #[arg(long, default_value_t = 3001)]
    ws_port: u16,
    /// Folder of the embedded store and of the generated development settings.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Which store to use.
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    store: StoreKind,
    /// With --store dynamodb: create EVENTS_TABLE and CONNECTIONS_TABLE if missing.
    #[arg(long)]
    create_tables: bool,
}

#[derive(clap::Args)]
struct SendArgs {
    /// WhatsApp webhook payload files (JSON), each posted as one delivery.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The webhook URL.
    #[arg(long, default_value = "http://127.0.0.1:3000/webhook")]
    url: String,
    /// Where `pulse serve` keeps its settings; the app secret is read from there
    /// unless WHATSAPP_APP_SECRET is set.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Send the files byte for byte. By default their WhatsApp times are moved so
    /// that the newest is now (spacing kept), so that samples count today.
    #[arg(long)]
    keep_timestamps: bool,
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// The webhook URL (a deployed one: `WebhookUrl` of the stack's outputs).
    #[arg(long, default_value = "http://127.0.0.1:3000/webhook")]
    url: String,
    /// Webhooks per second.
    #[arg(long, default_value_t = 5.0, value_parser = positive_rate)]
    rate: f64,
    /// How long to send, e.g. `60s`, `5m`; Ctrl-C stops sooner.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: std::time::Duration,
    /// How many customers write.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    contacts: u32,
    /// Share of the webhooks sent again, as Meta re-delivers (0–1).
    #[arg(long, default_value_t = 0.1, value_parser = share)]
    duplicates: f64,
    /// The same seed sends the same traffic (message ids included, so a second run
    /// is all duplicates); without it, every run is new.
    #[arg(long)]
    seed: Option<u64>,
    /// Spread the traffic over the last N days, with WhatsApp times of those
    /// days, for a history on the dashboard; 0 sends it as of now.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=90))]
    days: u32,
    /// Where `pulse serve` keeps its settings; the app secret is read from there
    /// unless WHATSAPP_APP_SECRET is set.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
}

fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("{text:?} is not a share between 0 and 1")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The benchmarks log nothing of their own: a log line a request would be
    // part of what they measure (`bench intake`'s server logs warnings only).
    if !matches!(cli.command, Some(Command::Bench(_))) {
        telemetry::init();
    }
    let result = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Send(args)) => send(args).await,
        Some(Command::Simulate(args)) => simulate_traffic(args).await,
        Some(Command::Export(args)) => export(args).await,
        Some(Command::Import(args)) => import(args).await,
        Some(Command::Bench(command)) => match command {
            BenchCommand::Intake(args) => bench::intake::run(args).await,
            BenchCommand::Live(args) => bench::live::run(args).await,
            BenchCommand::Metrics(args) => bench::metrics::run(args).await,
            BenchCommand::Dynamodb(args) => bench::dynamodb::run(args).await,
            BenchCommand::Coldstart(args) => bench::coldstart::run(args).await,
        },
        Some(Command::Alert(AlertCommand::Test { data_dir })) => alert_test(&data_dir).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}`: the error and each of its causes, `outer: inner: root`.
            eprintln!("pulse: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let options = Options {
        http_addr: SocketAddr::from((args.host, args.http_port)),
        ws_addr: SocketAddr::from((args.host, args.ws_port)),
        data_dir: args.data_dir,
        store: args.store,
        create_tables: args.create_tables,
    };
    let stack = LocalStack::start(options)
        .await
        .context("the local stack did not start")?;
    print_banner(&stack);
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    println!("\nStopping: finishing requests in flight…");
    stack
        .stop()
        .await
        .context("stopping: the store did not close cleanly")?;
    println!("Stopped. Everything acknowledged is stored.");
    Ok(())
}

fn print_banner(stack: &LocalStack) {
    let settings = &stack.settings;
    let value = |name: &str| settings.get(name).unwrap_or_default();
    // A secret given in the environment is the user's own: never shown. Those in
    // the data folder's file are Pulse's development ones, shown to be used.
    let shown = |name: &str| {
        if settings.given(name) {
            format!("${name}")
        } else {
            value(name)
        }
    };
    println!("Pulse is running. Store: {}", stack.store_description);
    println!();
    println!("  Webhook    POST {}", stack.url("/webhook"));
    println!(
        "  Verify     GET  {}?hub.mode=subscribe&hub.verify_token=$WHATSAPP_VERIFY_TOKEN&hub.challenge=42",
        stack.url("/webhook")
    );
    println!("  Health     GET  {}", stack.url("/health"));
    println!(
        "  Metrics    GET  {}?days=7",
        stack.url("/api/webhook/metrics")
    );
    println!(
        "  Chats      GET  {}",
        stack.url("/api/webhook/conversations")
    );
    println!(
        "  Realtime   GET  {}",
        stack.url("/api/webhook/stats/realtime")
    );
    println!(
        "  Events     GET  {}?limit=20",
        stack.url("/api/webhook/events/recent")
    );
    println!(
        "  Live       {}?token=$DASHBOARD_TOKEN  (send {{\"type\":\"ping\"}} or {{\"type\":\"subscribe\",\"types\":[…]}})",
        stack.ws_url()
    );
    println!(
        "  Management {}/@connections/{{id}}  (API Gateway's, for the broadcast function)",
        stack.management_endpoint()
    );
    println!();
    if settings.generated.is_empty() {
        println!(
            "Settings: from the environment and {}",
            settings.file.display()
        );
    } else {
        println!(
            "Generated development settings (kept in {}):",
            settings.file.display()
        );
    }
    for name in SECRET_SETTINGS
        .into_iter()
        .filter(|n| *n != STACK_ONLY_SECRET)
    {
        if settings.given(name) {
            println!("  {name}: given in the environment, not shown");
        } else {
            println!("  {name}={}", value(name));
        }
    }
    println!(
        "  PULSE_TIMEZONE={}",
        value("PULSE_TIMEZONE").if_empty("UTC")
    );
    println!();
    println!("Try, in another terminal:");
    println!(
        "  npx wscat -c \"{}?token={}\"",
        stack.ws_url(),
        shown("DASHBOARD_TOKEN")
    );
    println!("  cargo run --release -- send events/whatsapp/button_click.json");
    println!(
        "  curl -s -H \"Authorization: Bearer {}\" '{}?days=7' | jq .data.button_clicks",
        shown("DASHBOARD_TOKEN"),
        stack.url("/api/webhook/metrics")
    );
    println!();
    println!("Ctrl-C stops; the next start shows the same data.");
}

trait IfEmpty {
    fn if_empty(self, default: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, default: &str) -> String {
        if self.is_empty() {
            default.to_owned()
        } else {
            self
        }
    }
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let (store, _, description) = open_store(args.store.store, &args.store.data_dir, false)
        .await
        .context("cannot open the store")?;
    let count = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            backup::export(&*store, &mut std::io::BufWriter::new(file)).await?
        }
        None => {
            backup::export(
                &*store,
                &mut std::io::BufWriter::new(std::io::stdout().lock()),
            )
            .await?
        }
    };
    let to = args
        .output
        .map_or_else(|| "standard output".to_owned(), |p| p.display().to_string());
    eprintln!("Exported {count} updates from {description} to {to}.");
    Ok(())
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let (store, retention_days, description) =
        open_store(args.store.store, &args.store.data_dir, true)
            .await
            .context("cannot open the store")?;
    let imported = if args.file.as_os_str() == "-" {
        backup::import(&*store, std::io::stdin().lock(), retention_days).await?
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?;
        backup::import(&*store, std::io::BufReader::new(file), retention_days).await?
    };
    for (line, error) in &imported.skipped {
        eprintln!("{}:{line}: skipped: {error}", args.file.display());
    }
    eprintln!(
        "Imported {} lines into {description}: {} updates stored, {} already there, {} lines skipped.",
        imported.lines,
        imported.stored,
        imported.duplicates,
        imported.skipped.len()
    );
    if imported.skipped.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} lines could not be read (listed above); the rest is imported",
            imported.skipped.len()
        )
    }
}

async fn alert_test(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let settings = Settings::load(data_dir);
    let notifier = Notifier::from_source(&settings, "local")?.ok_or_else(|| {
        anyhow!(
            "ALERT_WEBHOOK_URL is not set: set it in the environment or in {}",
            settings.file.display()
        )
    })?;
    let transition = notify::test_transition(chrono::Utc::now());
    let mut notice = notifier.notice(&transition);
    notice.test = true;
    eprintln!("Posting a test notification to {}…", notifier.destination());
    match notifier.post(&notice).await {
        Ok(reply) if reply.ok() => {
            println!(
                "Sent: {} answered {}.",
                notifier.destination(),
                reply.describe()
            );
            Ok(())
        }
        Ok(reply) => bail!(
            "{} answered {}: check the URL, and that the incoming webhook is enabled",
            notifier.destination(),
            reply.describe()
        ),
        Err(error) => bail!("{} could not be reached: {error}", notifier.destination()),
    }
}

/// `WHATSAPP_APP_SECRET`, else the one `pulse serve` keeps in the data folder.
fn app_secret(data_dir: &std::path::Path) -> anyhow::Result<String> {
    std::env::var("WHATSAPP_APP_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| read_env_file(&data_dir.join(LOCAL_ENV_FILE)).remove("WHATSAPP_APP_SECRET"))
        .ok_or_else(|| {
            anyhow!(
                "no app secret: set WHATSAPP_APP_SECRET, or start `pulse serve` first (it keeps one in {})",
                data_dir.join(LOCAL_ENV_FILE).display()
            )
        })
}

async fn simulate_traffic(args: SimulateArgs) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let plan = Plan {
        url: args.url,
        secret: app_secret(&args.data_dir)?,
        rate: args.rate,
        duration: args.duration,
        contacts: args.contacts as usize,
        duplicates: args.duplicates,
        seed,
        days: args.days,
    };
    let spread = match plan.days {
        0 => String::new(),
        days => format!(", WhatsApp times spread over the last {days} days"),
    };
    eprintln!(
        "Simulating {} webhooks/s for {} to {} ({} contacts, {:.0} % re-sent{spread}, seed {seed}); Ctrl-C stops.",
        plan.rate,
        humantime::format_duration(plan.duration),
        plan.url,
        plan.contacts,
        plan.duplicates * 100.0
    );
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let summary = simulate(&plan, stop).await;
    println!(
        "Sent {} webhooks in {:.1} s ({:.1}/s), {} of them re-sent: {} accepted, {} events stored, {} duplicates, {} errors.",
        summary.sent,
        summary.elapsed.as_secs_f64(),
        summary.rate(),
        summary.resent,
        summary.accepted,
        summary.stored,
        summary.duplicates,
        summary.errors
    );
    match summary.first_error {
        Some(error) => Err(anyhow!(
            "{} webhooks failed; the first: {error}",
            summary.errors
        )),
        None => Ok(()),
    }
}

async fn send(args: SendArgs) -> anyhow::Result<()> {
    let secret = app_secret(&args.data_dir)?;
    let sent = send_files(&args.url, &secret, &args.files, args.keep_timestamps).await?;
    let mut failed = 0;
    for outcome in &sent {
        println!(
            "{} → {} {}",
            outcome.file.display(),
            outcome.status,
            outcome.body
        );
        if !(200..300).contains(&outcome.status) {
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} deliveries were not accepted", sent.len());
    }
    Ok(())
}
