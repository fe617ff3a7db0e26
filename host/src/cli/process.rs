//! `process EVENT.json`: one event through the whole pipeline, as Lambda would run it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::{fail, read};
use crate::config::Config;
use crate::lambda::cold_start;

pub async fn run(event: &Path) -> ExitCode {
    let bytes = match read(event, "the event") {
        Ok(b) => b,
        Err(e) => return fail(2, e),
    };
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    let function = match cold_start(&config).await {
        Ok(f) => f,
        Err(e) => return fail(2, e),
    };
    match function.handle(Arc::from(bytes)).await {
        Ok(report) => {
            println!("{}", report.response());
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}
