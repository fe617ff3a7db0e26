//! Lambda mode: the cold start (configuration, SDK clients, callback key, guest, all once)
//! and the runtime loop. `process` shares the cold start.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use tracing::{error, info};

use crate::adapters::aws;
use crate::adapters::enricher::AwsEnricher;
use crate::adapters::metrics::Emf;
use crate::adapters::refresh::{self, GuestSlot, Refresher};
use crate::adapters::s3::S3Archive;
use crate::adapters::secrets;
use crate::adapters::wes::WesClient;
use crate::config::{Config, GuestLimits, KeySource};
use crate::error::{Error, InitError, LoadError};
use crate::pipeline::{ArchiveTarget, Handler, reconcile};
use crate::sandbox::{Limits, Runtime, blocking};

/// The handler with real AWS and HTTP behind it.
pub type Function = Handler<AwsEnricher, S3Archive, WesClient>;

/// The sandbox for guests under `limits` (`GUEST_MEMORY_MB`, `GUEST_TIMEOUT_MS`): the
/// engine, and the limits each event runs under.
pub fn sandbox(limits: &GuestLimits) -> Result<(Runtime, Limits), LoadError> {
    let memory = limits.memory_mb << 20;
    let runtime = Runtime::with_memory(memory)?;
    Ok((runtime, Limits { memory, time: limits.timeout, ..Limits::default() }))
}

/// Everything made once per cold start. The guest and the callback key load concurrently.
pub async fn cold_start(config: &Config) -> Result<Function, InitError> {
    let started = Instant::now();
    let sdk = aws::sdk_config().await;
    let s3 = aws::s3_client(&sdk);
    let omics = aws::omics_client(&sdk);
    let guest_limits = config.guest_limits;
    let (runtime, limits) = blocking(move || sandbox(&guest_limits)).await?;
    let guest = refresh::load(&runtime, &config.guest, config.guest_sha256.as_deref(), Some(&s3), limits);
    let key = async {
        match &config.key {
            KeySource::Direct(key) => Ok(key.clone()),
            KeySource::Secret(id) => secrets::callback_key(&sdk, id).await,
        }
    };
    let (guest, key) = tokio::join!(guest, key);
    let (guest, etag) = guest?;
    let notifier = WesClient::new(config.callback_url(), key?, config.callback_timeout)?;
    info!(
        guest = %guest.label(),
        guest_source = %guest.origin(),
        guest_refresh_seconds = config.guest_refresh.as_secs(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "ready"
    );
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
    Ok(Handler {
        guest: slot,
        refresher,
        metrics: None,
        enricher: AwsEnricher { omics, s3: s3.clone() },
        archive: S3Archive { s3 },
        notifier,
        target: ArchiveTarget { bucket: config.bucket.clone(), prefix: config.prefix.clone() },
    })
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Diagnostic {
        Diagnostic { error_type: e.kind().into(), error_message: e.to_string() }
    }
}

/// Runs as the Lambda function until the runtime API goes away. A cold start that fails
/// is reported to the runtime API's init error endpoint, and the process exits.
pub async fn run() -> ExitCode {
    let function = match Config::from_env() {
        Ok(config) => cold_start(&config).await,
        Err(e) => Err(e.into()),
    };
    let function = match function {
        Ok(mut f) => {
            let emf = Emf::from_env();
            let refresher = f.refresher.take().map(|r| r.with_metrics(emf.clone()));
            Arc::new(Handler { metrics: Some(emf), refresher, ..f })
        }
        Err(e) => {
            error!("cold start failed: {e}");
            report_init_error(&e.to_string()).await;
            return ExitCode::FAILURE;
        }
    };
    let result = lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let function = function.clone();
        async move {
            if let Some(command) = Scheduled::parse(event.payload.get()) {
                return scheduled_reconcile(&function, command).await;
            }
            let bytes: Arc<[u8]> = Arc::from(event.payload.get().as_bytes());
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

/// Reconciles the runs of the window the command names, as the same function.
async fn scheduled_reconcile(function: &Function, command: Scheduled) -> Result<serde_json::Value, Error> {
    let since = reconcile::parse_duration(&command.reconcile.since).map_err(Error::Reconcile)?;
    let until = std::time::SystemTime::now();
    let window = reconcile::Window { since: until - since, until };
    let progress = |line: &str| info!("reconcile: {line}");
    let summary =
        reconcile::reconcile(function, &function.enricher.omics, window, command.reconcile.dry_run, &progress)
            .await
            .map_err(|e| Error::Reconcile(e.to_string()))?;
    info!(
        runs_seen = summary.runs_seen,
        in_window = summary.in_window,
        callbacks_sent = summary.callbacks_sent,
        already_current = summary.already_current,
        skipped = summary.skipped,
        rejected = summary.rejected,
        failed = summary.failed,
        "reconciled"
    );
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
