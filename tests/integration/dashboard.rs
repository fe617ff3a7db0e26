//! The stack's dashboard shows only what exists: every metric on it is one the function's
//! EMF lines declare (namespace, name and dimensions as `adapters::metrics` writes them),
//! or a Lambda or SQS metric of the stack's own function, run event queue and dead-letter
//! queue; every
//! metric the function emits is on it; its log queries read the function's log group and
//! the fields its lines carry.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use ngs360_omics::adapters::metrics::{Emf, EventMetrics, NAMESPACE};
use ngs360_omics::pipeline::reconcile::Summary;
use serde_json::Value;

use crate::support::root;

/// (namespace, metric, dimension names) of an EMF document's declarations.
fn declared(doc: &Value, into: &mut BTreeSet<(String, String, Vec<String>)>) {
    for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
        let ns = directive["Namespace"].as_str().unwrap().to_owned();
        for dims in directive["Dimensions"].as_array().unwrap() {
            let mut dims: Vec<String> =
                dims.as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect();
            dims.sort();
            for m in directive["Metrics"].as_array().unwrap() {
                into.insert((ns.clone(), m["Name"].as_str().unwrap().to_owned(), dims.clone()));
            }
        }
    }
}

/// A metric a widget shows: namespace, name, dimensions (name to value).
type Shown = (String, String, BTreeMap<String, String>);

fn shown(body: &Value) -> Vec<Shown> {
    let mut out = Vec::new();
    for w in body["widgets"].as_array().unwrap() {
        let Some(metrics) = w["properties"]["metrics"].as_array() else { continue };
        for row in metrics {
            let row = row.as_array().unwrap();
            if let Some(expr) = row[0].get("expression").and_then(Value::as_str) {
                // SEARCH('{Namespace,Dim1,Dim2} MetricName="M" Dim1="v"', ...)
                let braces = &expr[expr.find('{').unwrap() + 1..expr.find('}').unwrap()];
                let mut parts = braces.split(',');
                let ns = parts.next().unwrap().to_owned();
                let name = expr.split("MetricName=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
                let mut dims = BTreeMap::new();
                for d in parts {
                    let value = expr.split(&format!(" {d}=\"")).nth(1).map(|v| v.split('"').next().unwrap().to_owned());
                    dims.insert(d.to_owned(), value.unwrap_or_else(|| "*".into()));
                }
                out.push((ns, name, dims));
                continue;
            }
            let strings: Vec<&str> = row.iter().filter_map(Value::as_str).collect();
            assert!(strings.len() >= 2 && strings.len().is_multiple_of(2), "a metric row without \"...\": {row:?}");
            let dims = strings[2..].chunks(2).map(|kv| (kv[0].to_owned(), kv[1].to_owned())).collect();
            out.push((strings[0].to_owned(), strings[1].to_owned(), dims));
        }
    }
    out
}

#[test]
fn every_metric_on_the_dashboard_is_one_the_function_or_its_resources_emit() {
    let out = std::process::Command::new("python3").arg(root().join("tools/dashboard.py")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body: Value = serde_json::from_slice(&out.stdout).expect("the dashboard's body is JSON");

    let mut emitted = BTreeSet::new();
    let emf = Emf::from_env();
    let event = EventMetrics { status: "COMPLETED".into(), ..EventMetrics::default() };
    declared(&emf.document(&event, SystemTime::now()), &mut emitted);
    declared(&emf.refresh_failed_document("g@1", SystemTime::now()), &mut emitted);

    let lambda = ["Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"];
    let sqs = [
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateAgeOfOldestMessage",
    ];
    let mut queues = BTreeSet::new();
    let shown = shown(&body);
    assert!(shown.len() >= 25, "{shown:?}");
    let mut ours: BTreeSet<String> = BTreeSet::new();
    for (ns, name, dims) in &shown {
        let keys: Vec<String> = dims.keys().cloned().collect();
        match ns.as_str() {
            NAMESPACE => {
                assert!(emitted.contains(&(ns.clone(), name.clone(), keys.clone())), "{name} {keys:?} is not emitted");
                assert_eq!(dims["FunctionName"], "FUNCTION", "{name}: the stack's function");
                if let Some(status) = dims.get("Status") {
                    // A run status, or the function's own INVALID and IGNORED.
                    assert!(["*", "INVALID", "IGNORED", "COMPLETED", "FAILED", "RUNNING"].contains(&status.as_str()));
                }
                ours.insert(name.clone());
            }
            "AWS/Lambda" => {
                assert!(lambda.contains(&name.as_str()), "{name}");
                assert_eq!(dims, &BTreeMap::from([("FunctionName".to_owned(), "FUNCTION".to_owned())]), "{name}");
            }
            "AWS/SQS" => {
                assert!(sqs.contains(&name.as_str()), "{name}");
                assert_eq!(dims.keys().collect::<Vec<_>>(), ["QueueName"], "{name}");
                assert!(["DEAD-LETTERS", "RUN-EVENTS"].contains(&dims["QueueName"].as_str()), "{name}: {dims:?}");
                queues.insert(dims["QueueName"].clone());
            }
            other => panic!("{other}/{name} is no metric of this stack"),
        }
    }
    let all: BTreeSet<String> = emitted.iter().map(|(_, n, _)| n.clone()).collect();
    assert_eq!(ours, all, "every metric the function emits is on the dashboard");
    assert_eq!(queues.len(), 2, "both queues are watched: {queues:?}");

    // The log widgets: the function's group, and fields its lines carry.
    let event_line = emf.document(&EventMetrics { guest: Some("g@1".into()), ..event }, SystemTime::now());
    let summary = serde_json::to_value(Summary::default()).unwrap();
    let queries: Vec<&str> =
        body["widgets"].as_array().unwrap().iter().filter_map(|w| w["properties"]["query"].as_str()).collect();
    assert_eq!(queries.len(), 3);
    for q in &queries {
        assert!(q.starts_with("SOURCE '/aws/lambda/ngs360/omics-run-event-processor' |"), "{q}");
    }
    for field in ["Events", "EventsFailed", "guest"] {
        assert!(event_line.get(field).is_some() && queries[0].contains(field), "{field}");
    }
    for field in ["in_window", "unchanged", "get_run_calls", "callbacks_sent", "already_current", "failed", "left"] {
        assert!(summary.get(field).is_some() && queries[1].contains(field), "reconcile's {field}");
    }
}
