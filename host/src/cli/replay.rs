//! `replay --queue QUEUE_URL [--dry-run] [--max N]` and `replay FILE|DIR`: dead letters
//! through the same pipeline as the function, oldest event time first (a run's RUNNING
//! before its COMPLETED). A message is deleted only once its event succeeded; the others
//! stay, with their error printed, and the command exits 1.
//!
//! A dead letter may be what Lambda's on-failure destination sends (the event in
//! `requestPayload`, the error in `responsePayload`), an SNS notification (the event in
//! `Message`, as the Python stack's topic mailed it), or the event itself (what SQS moves
//! from the run event queue at its receive limit).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_sqs::error::DisplayErrorContext;
use serde_json::Value;

use super::fail;
use crate::adapters::aws;
use crate::config::Config;
use crate::lambda::cold_start;
use crate::pipeline::Report;
use crate::pipeline::reconcile::parse_time;

/// How long a received message stays hidden from other readers while a replay runs.
const VISIBILITY_SECONDS: i32 = 1800;

/// One dead letter.
struct Letter {
    /// The message id, or the file's path.
    name: String,
    event: Vec<u8>,
    time: Option<SystemTime>,
    /// The error the function last gave, when the letter says.
    error: Option<String>,
    /// The SQS receipt handle, to delete or release the message.
    receipt: Option<String>,
}

/// The event inside a dead letter, and the error it carries, if any.
fn unwrap_letter(body: &str) -> Result<(Value, Option<String>), String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON ({e})"))?;
    if let Some(event) = value.get("requestPayload") {
        let error = value
            .pointer("/responsePayload/errorMessage")
            .and_then(Value::as_str)
            .or_else(|| value.pointer("/requestContext/condition").and_then(Value::as_str))
            .map(str::to_owned);
        return Ok((event.clone(), error));
    }
    if value.get("Type").and_then(Value::as_str) == Some("Notification")
        && let Some(message) = value.get("Message").and_then(Value::as_str)
    {
        return unwrap_letter(message);
    }
    Ok((value, None))
}

fn letter(name: String, body: &str, receipt: Option<String>) -> Result<Letter, String> {
    let (event, error) = unwrap_letter(body)?;
    let time = event.get("time").and_then(Value::as_str).and_then(|t| parse_time(t).ok());
    Ok(Letter { name, event: event.to_string().into_bytes(), time, error, receipt })
}

/// Letters read, and those that could not be read (their name, and why).
type Read = (Vec<Letter>, Vec<(String, String)>);

/// What the command reads.
pub enum Source {
    Queue(String),
    Paths(Vec<PathBuf>),
}

pub async fn run(source: Source, dry_run: bool, max: Option<usize>) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    let sqs = match &source {
        Source::Queue(_) => match crate::adapters::tls::Tls::from_env() {
            Ok(tls) => Some(aws_sdk_sqs::Client::new(&aws::sdk_config(tls.aws()).await)),
            Err(e) => return fail(2, e),
        },
        Source::Paths(_) => None,
    };
    let (mut letters, unreadable) = match (&source, &sqs) {
        (Source::Queue(url), Some(sqs)) => match receive(sqs, url, max).await {
            Ok(l) => l,
            Err(e) => return fail(2, e),
        },
        (Source::Paths(paths), _) => match read_files(paths, max) {
            Ok(l) => l,
            Err(e) => return fail(2, e),
        },
        (Source::Queue(_), None) => unreachable!("a queue has a client"),
    };
    for (name, why) in &unreadable {
        eprintln!("skipped {name}: {why}");
    }
    // Oldest event first; letters without a time keep their order, last.
    letters.sort_by_key(|l| (l.time.is_none(), l.time));
    let total = letters.len();
    if dry_run {
        for l in &letters {
            println!("{}", describe(l));
        }
        println!("{total} dead letters (dry run: nothing replayed)");
        if let (Some(sqs), Source::Queue(url)) = (&sqs, &source) {
            release(sqs, url, letters.iter().filter_map(|l| l.receipt.as_deref())).await;
        }
        return if unreadable.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let function = match cold_start(&config).await {
        Ok(f) => f,
        Err(e) => return fail(2, e),
    };
    let live = std::io::stderr().is_terminal();
    let mut remaining = Vec::new();
    for (i, l) in letters.iter().enumerate() {
        let result = function.handle(Arc::from(l.event.clone())).await;
        let line = match &result {
            Ok(report @ Report::Processed { archived, .. }) => {
                format!("replayed: archive {}, {}", archived.as_str(), report.callback_line().unwrap_or_default())
            }
            Ok(Report::Ignored(why)) => format!("ignored: {why}"),
            Err(e) => format!("failed: {e}"),
        };
        progress(live, i + 1, total, &format!("{} {line}", describe(l)));
        match result {
            Ok(_) => {
                if let (Some(sqs), Source::Queue(url), Some(receipt)) = (&sqs, &source, &l.receipt)
                    && let Err(e) = sqs.delete_message().queue_url(url).receipt_handle(receipt).send().await
                {
                    let why = format!("replayed, but the message could not be deleted: {}", DisplayErrorContext(&e));
                    remaining.push((l, why));
                }
            }
            Err(e) => remaining.push((l, e.to_string())),
        }
    }
    if live {
        eprintln!();
    }
    if let (Some(sqs), Source::Queue(url)) = (&sqs, &source) {
        release(sqs, url, remaining.iter().filter_map(|(l, _)| l.receipt.as_deref())).await;
    }
    for (l, why) in &remaining {
        println!("remains: {}: {why}", l.name);
    }
    println!(
        "{} of {total} dead letters replayed; {} remain",
        total - remaining.len(),
        remaining.len() + unreadable.len()
    );
    if remaining.is_empty() && unreadable.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// One line about a letter: its event, and the error it carries.
fn describe(l: &Letter) -> String {
    let event: Value = serde_json::from_slice(&l.event).unwrap_or_default();
    let field = |k: &str| {
        event.pointer(&format!("/detail/{k}")).or(event.get(k)).and_then(Value::as_str).unwrap_or("-").to_owned()
    };
    let id = event.get("id").and_then(Value::as_str).unwrap_or("-");
    let time = event.get("time").and_then(Value::as_str).unwrap_or("-");
    let error = l
        .error
        .as_deref()
        .map(|e| format!(" (last error: {})", crate::sandbox::plain_text(e, 200)))
        .unwrap_or_default();
    format!("{}: run {} {} at {time}, event {id}{error}", l.name, field("runId"), field("status"))
}

/// A live counter on a terminal, one line per event otherwise.
fn progress(live: bool, done: usize, total: usize, line: &str) {
    let mut err = std::io::stderr().lock();
    if live {
        let _ = write!(err, "\r\x1b[2K[{done}/{total}] {}", crate::sandbox::plain_text(line, 160));
        let _ = err.flush();
    } else {
        let _ = writeln!(err, "[{done}/{total}] {line}");
    }
}

/// Every message of the queue (or `max` of them), hidden from others while the replay runs.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, max: Option<usize>) -> Result<Read, String> {
    let mut letters = Vec::new();
    let mut unreadable = Vec::new();
    let mut seen = std::collections::HashSet::new();
    loop {
        let wanted = max.map_or(10, |m| m.saturating_sub(letters.len() + unreadable.len()).min(10));
        if wanted == 0 {
            break;
        }
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(wanted as i32)
            .visibility_timeout(VISIBILITY_SECONDS)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| format!("cannot read the queue {url}: {}", DisplayErrorContext(&e)))?;
        let messages = out.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let id = m.message_id().unwrap_or_default().to_owned();
            if !seen.insert(id.clone()) {
                continue;
            }
            let receipt = m.receipt_handle().map(str::to_owned);
            match letter(format!("message {id}"), m.body().unwrap_or_default(), receipt) {
                Ok(l) => letters.push(l),
                Err(why) => unreadable.push((format!("message {id}"), why)),
            }
        }
    }
    Ok((letters, unreadable))
}

/// Makes messages visible again at once (those left in the queue).
async fn release<'a>(sqs: &aws_sdk_sqs::Client, url: &str, receipts: impl Iterator<Item = &'a str>) {
    for receipt in receipts {
        let _ =
            sqs.change_message_visibility().queue_url(url).receipt_handle(receipt).visibility_timeout(0).send().await;
    }
}

/// Saved dead letters: files, or every `.json` file of a directory.
fn read_files(paths: &[PathBuf], max: Option<usize>) -> Result<Read, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    let mut letters = Vec::new();
    let mut unreadable = Vec::new();
    for file in files.into_iter().take(max.unwrap_or(usize::MAX)) {
        let name = file.display().to_string();
        match read_letter(&file, name.clone()) {
            Ok(l) => letters.push(l),
            Err(why) => unreadable.push((name, why)),
        }
    }
    Ok((letters, unreadable))
}

fn read_letter(file: &Path, name: String) -> Result<Letter, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read it: {e}"))?;
    letter(name, &text, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_of_every_kind_give_their_event() {
        let event = r#"{"id":"e-1","time":"2026-03-02T14:05:09Z","detail":{"runId":"1","status":"COMPLETED"}}"#;
        let destination = format!(
            r#"{{"version":"1.0","requestContext":{{"condition":"RetriesExhausted"}},"requestPayload":{event},"responsePayload":{{"errorType":"CallbackError","errorMessage":"the WES API answered HTTP 503"}}}}"#
        );
        let (e, error) = unwrap_letter(&destination).unwrap();
        assert_eq!(e["id"], "e-1");
        assert_eq!(error.as_deref(), Some("the WES API answered HTTP 503"));
        let sns = serde_json::json!({"Type": "Notification", "Message": event}).to_string();
        assert_eq!(unwrap_letter(&sns).unwrap().0["id"], "e-1");
        assert_eq!(unwrap_letter(event).unwrap(), (serde_json::from_str(event).unwrap(), None));
        assert!(unwrap_letter("not json").is_err());
        let l = letter("m".into(), &destination, None).unwrap();
        assert_eq!(l.time.unwrap().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(), 1_772_460_309);
    }
}
