//! Metrics in CloudWatch's embedded metric format (EMF): one JSON line per event on stdout,
//! which CloudWatch Logs turns into metrics with no API call.

use std::io::Write;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::ports::Archived;

/// The metrics' namespace.
pub const NAMESPACE: &str = "NGS360/OmicsRunEvents";

/// What happened to the callback, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackMetric {
    Sent,
    /// Sent after the run's start was reported first (a lost or late RUNNING event).
    Healed,
    Skipped,
    /// Rejected for good by the WES API (404 naming the run, 409, 422): the event stays
    /// archived.
    Rejected,
    /// Failed the invocation (400, 401, 403, 5xx, timeout, connection).
    Failed,
}

/// One event's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventMetrics {
    /// The run status, `IGNORED` for foreign events, `INVALID` when the event was refused
    /// before its status was known.
    pub status: String,
    pub run_id: Option<String>,
    pub event_id: Option<String>,
    pub failed: bool,
    pub archive: Option<Archived>,
    pub archive_failed: bool,
    pub callback: Option<CallbackMetric>,
    pub enrichment_errors: usize,
    /// The event's inputs could not be captured (`CAPTURE_INPUTS`).
    pub capture_failed: bool,
    /// The run's `callback_url` tag was not used: its origin is not allowed, or it is not a
    /// callback URL.
    pub callback_url_refused: bool,
    /// The guest that shaped the event (`name@version#sha256`).
    pub guest: Option<String>,
    /// The time spent in the guest.
    pub guest_time: Duration,
    pub total: Duration,
}

/// Writes EMF lines for one function.
#[derive(Debug, Clone)]
pub struct Emf {
    function: String,
}

impl Emf {
    /// For the function Lambda names in `AWS_LAMBDA_FUNCTION_NAME`.
    pub fn from_env() -> Emf {
        Emf { function: std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "ngs360-omics".into()) }
    }

    /// The EMF document for one event.
    pub fn document(&self, m: &EventMetrics, at: SystemTime) -> Value {
        let count = |b: bool| u8::from(b);
        let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
        let names = [
            ("Events", "Count"),
            ("EventsFailed", "Count"),
            ("EventsIgnored", "Count"),
            ("ArchiveWritten", "Count"),
            ("ArchiveAlreadyThere", "Count"),
            ("ArchiveFailed", "Count"),
            ("CallbackSent", "Count"),
            ("CallbackHealed", "Count"),
            ("CallbackSkipped", "Count"),
            ("CallbackRejected", "Count"),
            ("CallbackFailed", "Count"),
            ("CallbackUrlRefused", "Count"),
            ("EnrichmentErrors", "Count"),
            ("CaptureFailed", "Count"),
            ("GuestTime", "Milliseconds"),
            ("TotalTime", "Milliseconds"),
        ];
        let metrics: Vec<Value> = names.iter().map(|(n, u)| json!({"Name": n, "Unit": u})).collect();
        let timestamp = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let mut doc = json!({
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [
                    {"Namespace": NAMESPACE, "Dimensions": [["FunctionName"]], "Metrics": metrics},
                    {"Namespace": NAMESPACE, "Dimensions": [["FunctionName", "Status"]], "Metrics": [{"Name": "Events", "Unit": "Count"}]},
                ],
            },
            "FunctionName": self.function,
            "Status": m.status,
            "Events": 1,
            "EventsFailed": count(m.failed),
            "EventsIgnored": count(m.status == "IGNORED"),
            "ArchiveWritten": count(m.archive == Some(Archived::Written)),
            "ArchiveAlreadyThere": count(m.archive == Some(Archived::AlreadyThere)),
            "ArchiveFailed": count(m.archive_failed),
            "CallbackSent": count(matches!(m.callback, Some(CallbackMetric::Sent | CallbackMetric::Healed))),
            "CallbackHealed": count(m.callback == Some(CallbackMetric::Healed)),
            "CallbackSkipped": count(m.callback == Some(CallbackMetric::Skipped)),
            "CallbackRejected": count(m.callback == Some(CallbackMetric::Rejected)),
            "CallbackFailed": count(m.callback == Some(CallbackMetric::Failed)),
            "CallbackUrlRefused": count(m.callback_url_refused),
            "EnrichmentErrors": m.enrichment_errors,
            "CaptureFailed": count(m.capture_failed),
            "GuestTime": ms(m.guest_time),
            "TotalTime": ms(m.total),
        });
        if let Some(run_id) = &m.run_id {
            doc["run_id"] = run_id.as_str().into();
        }
        if let Some(event_id) = &m.event_id {
            doc["event_id"] = event_id.as_str().into();
        }
        if let Some(guest) = &m.guest {
            doc["guest"] = guest.as_str().into();
        }
        doc
    }

    /// The EMF document for a failed refresh of the guest component.
    pub fn refresh_failed_document(&self, guest: &str, at: SystemTime) -> Value {
        let timestamp = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        json!({
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["FunctionName"]],
                                       "Metrics": [{"Name": "GuestRefreshFailed", "Unit": "Count"}]}],
            },
            "FunctionName": self.function,
            "GuestRefreshFailed": 1,
            "guest": guest,
        })
    }

    /// Writes a failed refresh's line to stdout.
    pub fn refresh_failed(&self, guest: &str) {
        let line = format!("{}\n", self.refresh_failed_document(guest, SystemTime::now()));
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }

    /// Writes the event's line to stdout, whole.
    pub fn emit(&self, m: &EventMetrics) {
        let line = format!("{}\n", self.document(m, SystemTime::now()));
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_document_declares_every_metric_it_carries() {
        let m = EventMetrics {
            status: "COMPLETED".into(),
            run_id: Some("4417021".into()),
            event_id: Some("e-1".into()),
            archive: Some(Archived::Written),
            callback: Some(CallbackMetric::Sent),
            enrichment_errors: 2,
            guest: Some("g@1#0123456789ab".into()),
            guest_time: Duration::from_micros(95),
            total: Duration::from_millis(41),
            ..EventMetrics::default()
        };
        let doc = Emf { function: "f".into() }.document(&m, SystemTime::UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(doc["_aws"]["Timestamp"], 1000);
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for dims in directive["Dimensions"].as_array().unwrap() {
                for d in dims.as_array().unwrap() {
                    assert!(doc[d.as_str().unwrap()].is_string(), "dimension {d} has a value");
                }
            }
            for metric in directive["Metrics"].as_array().unwrap() {
                assert!(doc[metric["Name"].as_str().unwrap()].is_number(), "{metric} has a value");
            }
        }
        assert_eq!(
            (doc["ArchiveWritten"].as_u64(), doc["CallbackSent"].as_u64(), doc["CallbackFailed"].as_u64()),
            (Some(1), Some(1), Some(0))
        );
        assert_eq!(doc["EnrichmentErrors"], 2);
        assert_eq!(doc["GuestTime"], 0.095);
        assert_eq!(doc["TotalTime"], 41.0);
        assert_eq!(doc["run_id"], "4417021");
        assert_eq!(doc["guest"], "g@1#0123456789ab");
        let refresh = Emf { function: "f".into() }.refresh_failed_document("g@1#0123456789ab", SystemTime::UNIX_EPOCH);
        assert_eq!(refresh["GuestRefreshFailed"], 1);
        assert_eq!(refresh["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "GuestRefreshFailed");
    }
}
