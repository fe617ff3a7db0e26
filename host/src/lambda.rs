//! Lambda mode: the cold start (configuration, TLS, the WES client, the sandbox and the
//! guest, all once; the AWS SDK's clients and the callback key in the background) and the
//! runtime loop. The commands share the cold start.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::adapters::aws;
use crate::adapters::enricher::AwsEnricher;
use crate::adapters::lazy::Lazy;
use crate::adapters::metrics::Emf;
use crate::adapters::refresh::{self, GuestSlot, Refresher};
use crate::adapters::s3::S3Archive;
use crate::adapters::sqs::Requeue;
use crate::adapters::tls;
use crate::adapters::wes::{KeyLoader, WesClient};
use crate::config::{Config, GuestLimits, GuestSource, KeySource};
use crate::error::{ConfigError, Error, InitError, LoadError};
use crate::pipeline::{ArchiveTarget, Handler, reconcile};
use crate::queue::{self, Batch};
use crate::sandbox::{Guest, Limits, Runtime};

/// The handler with real AWS and HTTP behind it.
pub type Function = Handler<AwsEnricher, S3Archive, WesClient>;

/// The sandbox for guests under `limits` (`GUEST_MEMORY_MB`, `GUEST_TIMEOUT_MS`): the
/// engine, and the limits each event runs under.
pub fn sandbox(limits: &GuestLimits) -> Result<(Runtime, Limits), LoadError> {
    Ok((Runtime::new()?, event_limits(limits)))
}

/// The limits each event's guest runs under.
fn event_limits(limits: &GuestLimits) -> Limits {
    Limits { memory: limits.memory_mb << 20, time: limits.timeout, ..Limits::default() }
}

/// When `main` started: the process's own clock (for the phases of a cold start) and the
/// wall clock (which the benchmark compares with the time it spawned the process).
pub static MAIN_STARTED: OnceLock<(Instant, SystemTime)> = OnceLock::new();

/// Microseconds since `t`.
fn us(t: Instant) -> u64 {
    t.elapsed().as_micros() as u64
}

/// Microseconds since `main` started, when it recorded it.
pub fn since_main_us() -> Option<u64> {
    MAIN_STARTED.get().map(|(t, _)| us(*t))
}

/// The sandbox being made on a thread of its own: the engine and, for the bundled guest,
/// the guest (deserialized and linked; nothing of it runs). In Lambda mode it starts first
/// thing in `main`, before the configuration is read, beside the async runtime, logging,
/// TLS and the WES client; on two vCPUs that hides most of its 0.4 ms. The thread then
/// stays on for the background work that follows `ready` (`in_background`).
pub struct SandboxStart {
    made: oneshot::Receiver<Result<Sandboxed, LoadError>>,
}

/// Work for the thread that made the sandbox, once the cold start is over.
type Later = Box<dyn FnOnce() + Send>;

struct Sandboxed {
    /// The thread that made the sandbox, waiting for work for the background (so that
    /// starting one costs the main thread nothing between `ready` and `/next`).
    later: std::sync::mpsc::Sender<Later>,
    runtime: Runtime,
    /// The bundled guest, loaded with the default limits; `None` for a guest from a file or
    /// S3.
    guest: Option<Guest>,
    engine_us: u64,
    guest_us: u64,
}

impl SandboxStart {
    /// Starts making the sandbox, and loading the bundled guest when `bundled`.
    pub fn spawn(bundled: bool) -> SandboxStart {
        let (tx, made) = oneshot::channel();
        let make = move || {
            let t = Instant::now();
            let (later, work) = std::sync::mpsc::channel::<Later>();
            let made = Runtime::new().and_then(|runtime| {
                let engine_us = us(t);
                let t = Instant::now();
                let guest = if bundled { Some(runtime.bundled_now(Limits::default())?) } else { None };
                Ok(Sandboxed { later, runtime, guest, engine_us, guest_us: us(t) })
            });
            let _ = tx.send(made);
            // Until the cold start hands over its background work, or gives up on it.
            if let Ok(work) = work.recv() {
                work();
            }
        };
        // Should the thread not start, the receiver says so (its sender is gone).
        let _ = std::thread::Builder::new().name("sandbox-start".into()).spawn(make);
        SandboxStart { made }
    }

    async fn wait(self) -> Result<Sandboxed, InitError> {
        match self.made.await {
            Ok(made) => Ok(made?),
            Err(_) => Err(InitError::Setup("the thread making the wasm sandbox did not finish".into())),
        }
    }
}

/// What `main` starts in Lambda mode before the async runtime exists: the sandbox, being
/// made, and the configuration, read.
pub struct Early {
    sandbox: SandboxStart,
    config: Result<Config, ConfigError>,
    config_us: u64,
}

impl Early {
    /// Starts making the sandbox (with the bundled guest unless `GUEST_COMPONENT` names
    /// another), then reads the configuration.
    pub fn start() -> Early {
        let sandbox = SandboxStart::spawn(crate::config::bundled_guest_in_env());
        let t = Instant::now();
        let config = Config::from_env();
        Early { sandbox, config, config_us: us(t) }
    }
}

/// How long each part of a cold start took, in microseconds: logged with `ready` at DEBUG,
/// and printed by the benchmark. The sandbox's parts ran on their own thread.
#[derive(Debug, Default, Clone, Copy)]
struct Phases {
    /// From `main` to the cold start: the configuration, the async runtime, logging.
    runtime_us: u64,
    config_us: u64,
    tls_us: u64,
    wes_us: u64,
    engine_us: u64,
    guest_us: u64,
    /// How long the cold start waited for the sandbox's thread.
    sandbox_wait_us: u64,
}

/// Everything made once per cold start, and what is left to the first event.
///
/// Before the first event is asked for: the configuration files (TLS additions) checked,
/// the WES client, the sandbox and the guest: whatever can fail is tried here, so that a
/// failure is an init error. The AWS SDK's configuration and clients cannot fail; they are
/// made in the background from here on, beside asking for the first event and admitting
/// it (the guest decides what to fetch before anything is fetched), as is the callback key
/// from Secrets Manager, which only the first callback needs.
pub async fn cold_start(config: &Config) -> Result<Function, InitError> {
    let sandbox = SandboxStart::spawn(matches!(config.guest, GuestSource::Bundled));
    Ok(cold_start_with(config, sandbox, Phases::default()).await?.0)
}

/// The function, and the SDK configuration its clients share (for the queue's client,
/// which only a failed queued event needs).
async fn cold_start_with(
    config: &Config,
    sandbox: SandboxStart,
    mut phases: Phases,
) -> Result<(Function, Lazy<aws_config::SdkConfig>), InitError> {
    let started = Instant::now();
    let t = Instant::now();
    let tls = tls::Tls::from_env()?;
    phases.tls_us = us(t);
    let t = Instant::now();
    let wes_tls = tls.wes.clone();
    let tls = Arc::new(tls);
    let sdk = Lazy::new(move || {
        let http = tls.aws();
        async move {
            let t = Instant::now();
            let sdk = aws::sdk_config(http).await;
            debug!(sdk_us = us(t), at_us = since_main_us(), "AWS SDK configuration made");
            sdk
        }
    });
    let s3 = client(&sdk, aws::s3_client, |t| debug!(s3_us = t, at_us = since_main_us(), "S3 client made"));
    let omics =
        client(&sdk, aws::omics_client, |t| debug!(omics_us = t, at_us = since_main_us(), "HealthOmics client made"));
    let key = match &config.key {
        KeySource::Direct(key) => KeyLoader::Given(key.clone()),
        KeySource::Secret(id) => KeyLoader::Secret { sdk: sdk.clone(), id: id.clone() },
    };
    let notifier =
        WesClient::new(config.mounts(), config.callback_origins.clone(), key, config.callback_timeout, wes_tls)?;
    phases.wes_us = us(t);
    let t = Instant::now();
    let made = sandbox.wait().await?;
    phases.sandbox_wait_us = us(t);
    (phases.engine_us, phases.guest_us) = (made.engine_us, made.guest_us);
    let (runtime, limits, later) = (made.runtime, event_limits(&config.guest_limits), made.later);
    let (guest, etag) = match made.guest {
        Some(guest) if config.guest == GuestSource::Bundled => (guest.with_limits(limits), None),
        _ => {
            let t = Instant::now();
            let loaded = refresh::load(&runtime, &config.guest, config.guest_sha256.as_deref(), &s3, limits).await?;
            phases.guest_us = us(t);
            loaded
        }
    };
    let detail = tracing::enabled!(tracing::Level::DEBUG).then_some(phases);
    let main_unix_us = MAIN_STARTED
        .get()
        .and_then(|(_, w)| w.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as u64);
    info!(
        guest = %guest.label(),
        guest_source = %guest.origin(),
        guest_refresh_seconds = config.guest_refresh.as_secs(),
        callback = %notifier.url(),
        callback_origins = %config.callback_origins.listed(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        runtime_us = detail.map(|p| p.runtime_us),
        config_us = detail.map(|p| p.config_us),
        tls_us = detail.map(|p| p.tls_us),
        wes_us = detail.map(|p| p.wes_us),
        engine_us = detail.map(|p| p.engine_us),
        guest_us = detail.map(|p| p.guest_us),
        guest_in_place = detail.map(|_| crate::sandbox::bundled_in_place()),
        sandbox_wait_us = detail.map(|p| p.sandbox_wait_us),
        since_main_us = detail.and(since_main_us()),
        main_unix_us = detail.and(main_unix_us),
        "ready"
    );
    let key = matches!(config.key, KeySource::Secret(_)).then(|| notifier.clone());
    in_background(s3.clone(), omics.clone(), key, later);
    let slot = GuestSlot::new(guest);
    let refresher = Refresher::new(
        runtime,
        s3.clone(),
        &config.guest,
        config.guest_sha256.clone(),
        limits,
        config.guest_refresh,
        slot.clone(),
        etag,
    );
    let function = Handler {
        guest: slot,
        refresher,
        metrics: None,
        enricher: AwsEnricher { omics, s3: s3.clone() },
        archive: S3Archive { s3 },
        notifier,
        target: ArchiveTarget { bucket: config.bucket.clone(), prefix: config.prefix.clone(), layout: config.layout },
        capture: config.capture.clone(),
        throttle_budget: config.throttle_budget,
    };
    Ok((function, sdk))
}

/// Makes the S3 and HealthOmics clients (and the SDK configuration they share), and reads
/// the callback key from Secrets Manager when `key` is given, at low priority on the thread
/// that made the sandbox (`later`): the first
/// event needs the clients once its guest has admitted it and the key for its callback,
/// but making them (about 0.7 ms of CPU, and as much for the secret's request) must not
/// delay asking for it. A first event that needs them sooner waits for this work (or makes
/// them itself, should it not run).
fn in_background(
    s3: Lazy<aws_sdk_s3::Client>,
    omics: Lazy<aws_sdk_omics::Client>,
    key: Option<WesClient>,
    later: std::sync::mpsc::Sender<Later>,
) {
    let handle = tokio::runtime::Handle::current();
    let work = async move {
        let read_key = async {
            let Some(notifier) = key else { return };
            let t = Instant::now();
            match notifier.read_key().await {
                Ok(()) => debug!(key_us = us(t), at_us = since_main_us(), "callback key read"),
                // Said at once, not only when the first callback fails on it.
                Err(e) => error!("{e}"),
            }
        };
        let clients = async {
            s3.get().await;
            omics.get().await;
        };
        tokio::join!(read_key, clients);
    };
    let job: Later = Box::new(move || {
        lower_this_threads_priority();
        handle.block_on(work);
    });
    // The thread waits for this from the moment it has sent the sandbox; the clients and the
    // key are made on first use anyway.
    let _ = later.send(job);
}

/// Nice 10 for the calling thread (on Linux, niceness is per thread); where that cannot be
/// done, the thread keeps its priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only read their integer arguments.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Diagnostic {
        Diagnostic { error_type: e.kind().into(), error_message: e.to_string() }
    }
}

/// Runs as the Lambda function until the runtime API goes away. A cold start that fails
/// is reported to the runtime API's init error endpoint, and the process exits.
pub async fn run(early: Early) -> ExitCode {
    let started = match early.config {
        Ok(config) => {
            let runtime_us = since_main_us().unwrap_or_default();
            let phases = Phases { runtime_us, config_us: early.config_us, ..Phases::default() };
            let started = cold_start_with(&config, early.sandbox, phases).await;
            started.map(|(function, sdk)| (function, sdk, config.reconcile_rate, config.queue_retry))
        }
        Err(e) => Err(e.into()),
    };
    let (function, requeue, reconcile_rate) = match started {
        Ok((mut f, sdk, reconcile_rate, queue_retry)) => {
            let emf = Emf::from_env();
            let refresher = f.refresher.take().map(|r| r.with_metrics(emf.clone()));
            let sqs = client(&sdk, aws_sdk_sqs::Client::new, |t| debug!(sqs_us = t, "SQS client made"));
            let requeue = Arc::new(Requeue { sqs, delay: queue_retry });
            (Arc::new(Handler { metrics: Some(emf), refresher, ..f }), requeue, reconcile_rate)
        }
        Err(e) => {
            error!("cold start failed: {e}");
            report_init_error(&e.to_string()).await;
            return ExitCode::FAILURE;
        }
    };
    let result = lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let (function, requeue) = (function.clone(), requeue.clone());
        async move {
            let payload = event.payload.get();
            if let Some(command) = Scheduled::parse(payload) {
                let deadline = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(event.context.deadline);
                return scheduled_reconcile(&function, command, reconcile_rate, deadline).await;
            }
            if let Some(batch) = Batch::parse(payload) {
                return queue::process(&*function, &requeue, batch).await;
            }
            let bytes: Arc<[u8]> = Arc::from(payload.as_bytes());
            function.handle(bytes).await.map(|report| report.response())
        }
    }))
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("the Lambda runtime loop stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The scheduled invocation the template sets up: `{"reconcile": {"since": "26h"}}`
/// (behaviour §9). Nothing else has exactly this shape; EventBridge events do not.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Scheduled {
    reconcile: ReconcileArgs,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileArgs {
    since: String,
    #[serde(default)]
    dry_run: bool,
}

impl Scheduled {
    fn parse(payload: &str) -> Option<Scheduled> {
        payload.trim_start().starts_with("{\"reconcile\"").then(|| serde_json::from_str(payload).ok()).flatten()
    }
}

/// How long before the function's time limit a scheduled reconciliation stops starting runs.
const RECONCILE_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

/// Reconciles the runs of the window the command names, as the same function, at `rate`
/// HealthOmics calls per second, starting no run within a minute of `deadline` (the
/// invocation's); its ledger is beside the archive.
async fn scheduled_reconcile(
    function: &Function,
    command: Scheduled,
    rate: f64,
    deadline: SystemTime,
) -> Result<serde_json::Value, Error> {
    let since = reconcile::parse_duration(&command.reconcile.since).map_err(Error::Reconcile)?;
    let until = SystemTime::now();
    let window = reconcile::Window { since: until - since, until };
    let progress = |line: &str| info!("reconcile: {line}");
    let left = deadline.duration_since(until).unwrap_or_default().saturating_sub(RECONCILE_MARGIN);
    let settings = reconcile::Settings {
        rate,
        stop_at: Some(Instant::now() + left),
        ledger: Some(reconcile::Ledger::beside(function.enricher.s3.get().await, &function.target)),
    };
    let summary = reconcile::reconcile(
        function,
        function.enricher.omics.get().await,
        window,
        command.reconcile.dry_run,
        &settings,
        &progress,
    )
    .await
    .map_err(|e| Error::Reconcile(e.to_string()))?;
    info!(
        runs_seen = summary.runs_seen,
        in_window = summary.in_window,
        unchanged = summary.unchanged,
        list_runs_pages = summary.list_runs_pages,
        get_run_calls = summary.get_run_calls,
        callbacks_sent = summary.callbacks_sent,
        already_current = summary.already_current,
        skipped = summary.skipped,
        rejected = summary.rejected,
        failed = summary.failed,
        left = summary.left,
        "reconciled"
    );
    if summary.left > 0 {
        warn!(
            left = summary.left,
            "reconcile: {} runs were not reached before the function's time limit; the next pass takes them",
            summary.left
        );
    }
    if summary.failed > 0 {
        return Err(Error::Reconcile(format!(
            "{} of {} runs failed: {}",
            summary.failed,
            summary.in_window,
            summary.failures.join("; ")
        )));
    }
    Ok(serde_json::json!({"statusCode": 200, "outcome": "reconciled", "summary": summary}))
}

/// POST /2018-06-01/runtime/init/error, as the Lambda runtime API asks of a runtime whose
/// initialisation failed.
async fn report_init_error(message: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else { return };
    let body = serde_json::json!({ "errorType": "Runtime.InitError", "errorMessage": message });
    let sent = reqwest::Client::new()
        .post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    if let Err(e) = sent {
        error!("could not report the init error to the runtime API: {e}");
    }
}

/// An AWS client made from the SDK's configuration when first needed; `made` logs how long
/// making it took (in microseconds).
fn client<T: Send + Sync + 'static>(
    sdk: &Lazy<aws_config::SdkConfig>,
    make: fn(&aws_config::SdkConfig) -> T,
    made: fn(u64),
) -> Lazy<T> {
    let sdk = sdk.clone();
    Lazy::new(move || {
        let sdk = sdk.clone();
        async move {
            let config = sdk.get().await;
            let t = Instant::now();
            let client = make(config);
            made(us(t));
            client
        }
    })
}
