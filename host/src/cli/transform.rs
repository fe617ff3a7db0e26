//! `transform`: one event through a guest, offline.

use std::path::Path;
use std::process::ExitCode;

use super::cases::{Shaped, shape};
use super::{command_sandbox, fail, read};
use crate::adapters::context_file::ContextFile;
use crate::adapters::refresh::load_named;
use crate::config::{DEFAULT_PREFIX, Layout};
use crate::pipeline::ArchiveTarget;
use crate::sandbox::Callback;

pub async fn run(event: &Path, context: Option<&Path>, component: Option<&str>) -> ExitCode {
    let event = match read(event, "the event") {
        Ok(bytes) => bytes,
        Err(e) => return fail(2, e),
    };
    let context = match context.map(|p| {
        read(p, "the context").and_then(|b| ContextFile::parse(&b).map_err(|e| format!("context {}: {e}", p.display())))
    }) {
        None => ContextFile::default(),
        Some(Ok(c)) => c,
        Some(Err(e)) => return fail(2, e),
    };
    let (runtime, limits) = match command_sandbox() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let guest = match load_named(&runtime, component.unwrap_or("bundled"), limits).await {
        Ok(g) => g,
        Err(e) => return fail(2, e),
    };
    let outcome = match shape(&guest, &event, &context).await {
        Ok(Shaped::Ignored(reason)) => {
            eprintln!("ignored: {reason}");
            return ExitCode::SUCCESS;
        }
        Ok(Shaped::Record(outcome)) => outcome,
        Err(e) => return fail(1, e),
    };
    println!("{}", outcome.record);
    let id = &outcome.identity;
    eprintln!("guest: {} ({})", guest.label(), guest.origin());
    eprintln!(
        "event: run {}, status {}, event id {}",
        id.run_id,
        id.status,
        id.event_id.as_deref().unwrap_or("(none)")
    );
    match &outcome.callback {
        Callback::Send => eprintln!("callback: send"),
        Callback::Skip(why) => eprintln!("callback: skip ({why})"),
    }
    let target = ArchiveTarget {
        bucket: std::env::var("DATA_LAKE_BUCKET").unwrap_or_else(|_| "$DATA_LAKE_BUCKET".into()),
        prefix: std::env::var("S3_PREFIX").unwrap_or_else(|_| DEFAULT_PREFIX.into()).trim_matches('/').to_owned(),
        layout: std::env::var("ARCHIVE_LAYOUT").ok().and_then(|v| Layout::parse(&v).ok()).unwrap_or_default(),
    };
    eprintln!("archive: {}", target.uri(&target.key(&outcome.archive_key, std::time::SystemTime::now())));
    for e in &outcome.enrichment_errors {
        eprintln!("enrichment error: {e}");
    }
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    ExitCode::SUCCESS
}
