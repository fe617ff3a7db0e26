//! `reconcile --since DURATION [--until TIME] [--dry-run]`: every run whose status dates
//! from within the window, rebuilt from HealthOmics and processed as the function would.

use std::process::ExitCode;
use std::time::SystemTime;

use super::fail;
use crate::config::Config;
use crate::lambda::cold_start;
use crate::pipeline::reconcile::{self, Window};

pub async fn run(since: &str, until: Option<&str>, dry_run: bool) -> ExitCode {
    let since = match reconcile::parse_duration(since) {
        Ok(d) => d,
        Err(e) => return fail(2, format!("--since: {e}")),
    };
    let until = match until.map(reconcile::parse_time).transpose() {
        Ok(t) => t.unwrap_or_else(SystemTime::now),
        Err(e) => return fail(2, format!("--until: {e}")),
    };
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    let function = match cold_start(&config).await {
        Ok(f) => f,
        Err(e) => return fail(2, e),
    };
    let progress = |line: &str| eprintln!("{line}");
    let window = Window { since: until - since, until };
    let settings = reconcile::Settings {
        rate: config.reconcile_rate,
        stop_at: None,
        ledger: Some(reconcile::Ledger::beside(function.enricher.s3.get().await, &function.target)),
    };
    let omics = function.enricher.omics.get().await;
    match reconcile::reconcile(&function, omics, window, dry_run, &settings, &progress).await {
        Ok(summary) => {
            println!("{}", serde_json::to_string_pretty(&summary).expect("a summary serialises"));
            if summary.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => fail(1, e),
    }
}
