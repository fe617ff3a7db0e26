//! The enhanced record (behaviour §3), the callback decision (§7) and the archive key's
//! parts (§6).

#[allow(unused_imports)]
use crate::prelude::*;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::context::{self, Run};
use crate::event::{Event, Fields, Kind, is_finished};
use crate::json::cut;
use crate::logs::{self, Console, RunLogs};
use crate::model::{ArchiveKey, Callback, Context, Error, Identity, Outcome};
use crate::outputs;
use crate::time::archive_timestamp;

/// The longest `status_message` the WES API accepts, in characters.
pub const STATUS_MESSAGE_MAX: usize = 1000;
/// The longest `failure_reason` the WES API accepts, in characters.
pub const FAILURE_REASON_MAX: usize = 2000;
/// The run tag that names the NGS360 WES run.
pub const WES_RUN_ID_TAG: &str = "WESRunId";

/// Shapes the record for `event` from what the host fetched.
pub fn transform(event: &Event, ctx: &Context<'_>) -> Result<Outcome, Error> {
    let fields = event.fields();
    let identity = match fields.classify()? {
        Kind::Run(identity) => identity,
        Kind::Foreign(why) => {
            return Err(Error::InvalidField { field: "source".into(), reason: format!("cannot be shaped: {why}") });
        }
    };
    let run = ctx.run.map(Run::parse).transpose()?;
    let task_items = ctx.tasks.map(|t| context::parse_tasks(t.items)).transpose()?;
    let failed_items = ctx.tasks.and_then(|t| t.failed).map(context::parse_tasks).transpose()?;
    let more = ctx.tasks.is_some_and(|t| t.more);
    let (tasks, truncated) = match &task_items {
        Some(items) => {
            let failed = failed_items.as_deref().map(context::tasks).unwrap_or_default();
            let (kept, truncated) = logs::bounded(context::tasks(items), failed, more);
            (Some(kept), truncated)
        }
        None => (None, false),
    };

    let mut errors: Vec<String> = ctx.errors.to_vec();
    let mut notes = Vec::new();
    let status = identity.status.as_str();
    let mut record = Writer::with_capacity(fields.flat.len() + 12);

    record.field("omics_run_id", Field::Text(&identity.run_id));
    record.field("status", Field::Text(status));
    if let Some(time) = fields.time() {
        record.field("event_time", Field::Json(time));
    }
    if let Some(id) = fields.id() {
        record.field("event_id", Field::Text(id));
    }
    let tags = run.as_ref().and_then(Run::tags);
    let wes_run_id = tags.and_then(|t| t.get(WES_RUN_ID_TAG)).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(wes_run_id) = wes_run_id {
        record.field("wes_run_id", Field::Text(wes_run_id));
    }
    let text = |key: &str| fields.str(key).or_else(|| run.as_ref().and_then(|r| r.str(key)));
    if let Some(message) = text("statusMessage") {
        record.field("status_message", Field::Text(cut(message, STATUS_MESSAGE_MAX)));
    }
    if let Some(reason) = text("failureReason") {
        record.field("failure_reason", Field::Text(cut(reason, FAILURE_REASON_MAX)));
    }
    if is_finished(status) {
        match console(&fields, run.as_ref()) {
            Some(console) => {
                let urls = logs::log_urls(&RunLogs {
                    console: &console,
                    group: run.as_ref().and_then(Run::log_group).unwrap_or(logs::DEFAULT_LOG_GROUP),
                    run_id: &identity.run_id,
                    status,
                    uuid: run.as_ref().and_then(|r| r.str("uuid")).or_else(|| fields.str("uuid")),
                    tasks: tasks.as_deref(),
                    truncated,
                });
                record.field("log_urls", Field::Owned(Value::Object(urls)));
            }
            None => notes.push("log_urls left out: neither the run's ARN nor the event names a region".into()),
        }
    }
    if status == "COMPLETED" {
        match ctx.outputs.map(outputs::mapping) {
            Some(Ok(mapping)) => record.field("output_mapping", Field::Owned(Value::Object(mapping))),
            Some(Err(why)) => errors.push(why),
            None => {}
        }
    }
    if let Some(tags) = tags.filter(|t| !t.is_empty()) {
        // Sorted by key: GetRun's tags are a map without an order of its own.
        let mut sorted: Vec<(&String, &Value)> = tags.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        record.field("tags", Field::Sorted(sorted));
    }
    for (key, value) in &fields.flat {
        let ours_later = key == "enrichment_errors" && !errors.is_empty();
        if !record.has(key) && !ours_later {
            record.entry(key, value);
        }
    }
    let tail = (!errors.is_empty())
        .then(|| ("enrichment_errors", Field::Owned(errors.iter().map(|e| Value::from(e.as_str())).collect())));
    let record = record.finish(tail);

    let callback = callback(&identity, run.is_some(), wes_run_id.is_some());
    let archive_key = archive_key(&fields, &mut notes);
    Ok(Outcome { identity, record, callback, archive_key, enrichment_errors: errors, notes })
}

/// The record as a list of entries, serialised once at the end: the record's own fields
/// first, remembered so that the flattened event's copies of them are left out. No
/// intermediate map, and the event's values are borrowed, not copied.
struct Writer<'a> {
    entries: Vec<(&'a str, Field<'a>)>,
    own: usize,
}

/// One entry's value.
enum Field<'a> {
    Text(&'a str),
    Json(&'a Value),
    Owned(Value),
    Sorted(Vec<(&'a String, &'a Value)>),
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Text(t) => s.serialize_str(t),
            Field::Json(v) => v.serialize(s),
            Field::Owned(v) => v.serialize(s),
            Field::Sorted(entries) => s.collect_map(entries.iter().map(|(k, v)| (k, v))),
        }
    }
}

impl<'a> Writer<'a> {
    fn with_capacity(capacity: usize) -> Writer<'a> {
        Writer { entries: Vec::with_capacity(capacity), own: 0 }
    }

    /// One of the record's own fields; all come before the flattened event's.
    fn field(&mut self, key: &'static str, value: Field<'a>) {
        debug_assert_eq!(self.own, self.entries.len(), "own fields come first");
        self.entries.push((key, value));
        self.own += 1;
    }

    fn has(&self, key: &str) -> bool {
        self.entries[..self.own].iter().any(|(k, _)| *k == key)
    }

    fn entry(&mut self, key: &'a str, value: &'a Value) {
        self.entries.push((key, Field::Json(value)));
    }

    fn finish(self, tail: Option<(&'static str, Field<'a>)>) -> String {
        struct Object<'a, 'b>(&'b [(&'a str, Field<'a>)], Option<&'b (&'static str, Field<'a>)>);
        impl Serialize for Object<'_, '_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().chain(self.1).map(|(k, v)| (k, v)))
            }
        }
        serde_json::to_string(&Object(&self.entries, tail.as_ref())).expect("a JSON object always serialises")
    }
}

/// The console of the run's region and partition: from the run's ARN, the event's `arn` or
/// first resource, else the envelope's `region` in the commercial partition.
fn console(fields: &Fields<'_>, run: Option<&Run>) -> Option<Console> {
    run.and_then(|r| r.str("arn"))
        .into_iter()
        .chain(fields.str("arn"))
        .chain(fields.str("resources_0"))
        .find_map(Console::from_arn)
        .or_else(|| fields.str("region").map(|region| Console::new("aws", region)))
}

fn callback(identity: &Identity, run_known: bool, has_wes_run_id: bool) -> Callback {
    if identity.status == "DELETED" {
        Callback::Skip("status DELETED is not reported to the WES API".into())
    } else if !run_known {
        Callback::Skip("the run's tags could not be read, so its WESRunId is unknown".into())
    } else if !has_wes_run_id {
        Callback::Skip(format!("the run has no {WES_RUN_ID_TAG} tag"))
    } else {
        Callback::Send
    }
}

/// The event's time and id for the archive key; either is `None` when unusable, and a note
/// says so.
fn archive_key(fields: &Fields<'_>, notes: &mut Vec<String>) -> ArchiveKey {
    let timestamp = match fields.time() {
        None => {
            notes.push("the event has no time; the archive key uses the current time".into());
            None
        }
        Some(time) => {
            let ts = time.as_str().and_then(archive_timestamp);
            if ts.is_none() {
                notes.push("the event time is not an RFC 3339 timestamp; the archive key uses the current time".into());
            }
            ts
        }
    };
    let id = match fields.id() {
        None => {
            notes.push("the event has no id; the archive key uses a fresh UUID".into());
            None
        }
        Some(id) if key_safe(id) => Some(id.to_owned()),
        Some(_) => {
            notes.push("the event id is not usable in an S3 key; the archive key uses a fresh UUID".into());
            None
        }
    };
    ArchiveKey { timestamp, id }
}

/// EventBridge ids are UUIDs; anything else must stay one path segment of plain characters.
fn key_safe(id: &str) -> bool {
    id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) && id != "." && id != ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = r#"{"arn":"arn:aws:omics:eu-west-1:111122223333:run/4417021","uuid":"u-9","tags":{"project":"P1","WESRunId":"0b5c3f0e-6a36-4b0e-9d43-64c4a4f0a0e1"}}"#;

    fn event(status: &str, extra: &str) -> String {
        format!(
            r#"{{"version":"0","id":"6f1c0a52-5d0e-4c8a-9a34-2f1d0c1b7e11","detail-type":"Run Status Change","source":"aws.omics","account":"111122223333","time":"2026-03-02T14:05:09Z","region":"eu-west-1","resources":["arn:aws:omics:eu-west-1:111122223333:run/4417021"],"detail":{{"arn":"arn:aws:omics:eu-west-1:111122223333:run/4417021","status":"{status}","runId":"4417021"{extra}}}}}"#
        )
    }

    fn shape(raw: &str, ctx: &Context<'_>) -> Result<Outcome, Error> {
        transform(&Event::parse(raw.as_bytes())?, ctx)
    }

    fn keys(record: &str) -> Vec<String> {
        let v: Value = serde_json::from_str(record).unwrap();
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn running_record_has_callback_fields_first_then_the_flattened_event() {
        let out = shape(&event("RUNNING", ""), &Context { run: Some(RUN), ..Context::default() }).unwrap();
        let v: Value = serde_json::from_str(&out.record).unwrap();
        let tag_keys: Vec<_> = v["tags"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(tag_keys, ["WESRunId", "project"], "tags are sorted by key");
        assert_eq!(
            keys(&out.record),
            [
                "omics_run_id",
                "status",
                "event_time",
                "event_id",
                "wes_run_id",
                "tags",
                "version",
                "id",
                "detail-type",
                "source",
                "account",
                "time",
                "region",
                "resources_0",
                "arn",
                "runId"
            ]
        );
        assert_eq!(out.callback, Callback::Send);
        assert_eq!(
            out.archive_key,
            ArchiveKey {
                timestamp: Some("20260302_140509".into()),
                id: Some("6f1c0a52-5d0e-4c8a-9a34-2f1d0c1b7e11".into())
            }
        );
        assert!(out.notes.is_empty() && out.enrichment_errors.is_empty());
    }

    #[test]
    fn long_messages_are_cut_to_the_api_limits() {
        let long = "é".repeat(5000);
        let extra = format!(r#","statusMessage":"{long}","failureReason":"{long}""#);
        let out = shape(&event("FAILED", &extra), &Context { run: Some(RUN), ..Context::default() }).unwrap();
        let v: Value = serde_json::from_str(&out.record).unwrap();
        assert_eq!(v["status_message"].as_str().unwrap().chars().count(), STATUS_MESSAGE_MAX);
        assert_eq!(v["failure_reason"].as_str().unwrap().chars().count(), FAILURE_REASON_MAX);
        assert_eq!(v["statusMessage"].as_str().unwrap().chars().count(), 5000);
    }

    #[test]
    fn callback_is_skipped_for_deleted_runs_and_runs_without_a_wes_run_id() {
        let ctx = Context { run: Some(RUN), ..Context::default() };
        assert!(matches!(shape(&event("DELETED", ""), &ctx).unwrap().callback, Callback::Skip(_)));
        let untagged = Context { run: Some(r#"{"tags":{"x":"y"}}"#), ..Context::default() };
        assert_eq!(
            shape(&event("RUNNING", ""), &untagged).unwrap().callback,
            Callback::Skip("the run has no WESRunId tag".into())
        );
        let errors = ["GetRun: access denied".to_owned()];
        let unknown = Context { errors: &errors, ..Context::default() };
        let out = shape(&event("RUNNING", ""), &unknown).unwrap();
        assert!(matches!(out.callback, Callback::Skip(ref why) if why.contains("could not be read")));
        assert_eq!(out.enrichment_errors, errors);
        assert_eq!(keys(&out.record).last().unwrap(), "enrichment_errors");
    }

    #[test]
    fn an_event_field_named_like_a_record_field_is_not_repeated() {
        let raw = event("RUNNING", r#","enrichment_errors":["old"],"omics_run_id":"x""#);
        let errors = ["GetRun: access denied".to_owned()];
        let out = shape(&raw, &Context { errors: &errors, ..Context::default() }).unwrap();
        let v: Value = serde_json::from_str(&out.record).unwrap();
        assert_eq!(v["omics_run_id"], "4417021");
        assert_eq!(v["enrichment_errors"], serde_json::json!(["GetRun: access denied"]));
        assert_eq!(out.record.matches("\"enrichment_errors\"").count(), 1);
        assert_eq!(out.record.matches("\"omics_run_id\"").count(), 1);
    }

    #[test]
    fn malformed_outputs_become_an_enrichment_error() {
        let tasks = crate::model::TaskList { items: "[]", more: false, failed: None };
        let ctx = Context { run: Some(RUN), tasks: Some(tasks), outputs: Some(b"not json"), errors: &[] };
        let out = shape(&event("COMPLETED", ""), &ctx).unwrap();
        assert_eq!(out.enrichment_errors.len(), 1);
        assert!(!keys(&out.record).contains(&"output_mapping".to_owned()));
        assert!(out.record.contains("task_logs_base_url"));
    }

    #[test]
    fn unusable_time_and_id_leave_the_key_parts_to_the_host() {
        let raw = event("RUNNING", "")
            .replace("2026-03-02T14:05:09Z", "soon")
            .replace("6f1c0a52-5d0e-4c8a-9a34-2f1d0c1b7e11", "../x");
        let out = shape(&raw, &Context::default()).unwrap();
        assert_eq!(out.archive_key, ArchiveKey { timestamp: None, id: None });
        assert_eq!(out.notes.len(), 2);
        let v: Value = serde_json::from_str(&out.record).unwrap();
        assert_eq!((v["event_time"].as_str(), v["event_id"].as_str()), (Some("soon"), Some("../x")));
    }

    #[test]
    fn foreign_events_cannot_be_shaped() {
        let err = shape(r#"{"source":"aws.s3","detail-type":"x"}"#, &Context::default()).unwrap_err();
        assert!(matches!(err, Error::InvalidField { ref field, .. } if field == "source"));
    }
}
