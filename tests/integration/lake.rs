//! The data lake (README, Query the lake): a realistic set of events archived by the real
//! pipeline to moto's S3, in either layout, lost events repaired by reconcile, then every
//! saved Athena query of template.yaml run as its text stands, in DuckDB over those objects
//! (`tools/lake_query.py`, whose shim is documented there), with its rows asserted; and the
//! table's columns checked against the records the bundled guest writes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ngs360_omics::config::Layout;
use ngs360_omics::pipeline::Report;
use ngs360_omics::pipeline::reconcile::{self, Ledger, Settings, Window};
use serde_json::{Value, json};

use crate::pipeline::{KEY, Peers, peers_of};
use crate::support::moto::{self, aws_env};
use crate::support::omics::Run;
use crate::support::wes::Wes;
use crate::support::{Fixture, iso, root};

const PREFIX: &str = "omics-run-events";

/// One run of the set: its times (as offsets before now, in seconds), how it ended, and
/// which of its events were delivered.
struct Case {
    run: &'static str,
    wes: &'static str,
    workflow: &'static str,
    start: u64,
    stop: Option<u64>,
    end: &'static str,
    /// The terminal event was lost: reconcile repairs it.
    lost: bool,
}

const CASES: [Case; 5] = [
    Case {
        run: "7700001",
        wes: "a0000000-0000-4000-8000-00000000000a",
        workflow: "wgs-germline",
        start: 277_200,
        stop: Some(259_200),
        end: "COMPLETED",
        lost: false,
    },
    Case {
        run: "7700002",
        wes: "b0000000-0000-4000-8000-00000000000b",
        workflow: "wgs-germline",
        start: 180_000,
        stop: Some(172_800),
        end: "FAILED",
        lost: false,
    },
    Case {
        run: "7700003",
        wes: "c0000000-0000-4000-8000-00000000000c",
        workflow: "rna-quant",
        start: 82_800,
        stop: Some(72_000),
        end: "COMPLETED",
        lost: true,
    },
    Case {
        run: "7700004",
        wes: "d0000000-0000-4000-8000-00000000000d",
        workflow: "rna-quant",
        start: 18_000,
        stop: None,
        end: "RUNNING",
        lost: false,
    },
    Case {
        run: "7700005",
        wes: "e0000000-0000-4000-8000-00000000000e",
        workflow: "rna-quant",
        start: 867_600,
        stop: Some(864_000),
        end: "CANCELLED",
        lost: false,
    },
];

fn described(c: &Case, now: SystemTime, bucket: &str) -> Value {
    let mut run = json!({"arn": format!("arn:aws:omics:eu-west-1:111122223333:run/{}", c.run), "id": c.run,
        "uuid": format!("0c9e6b7a-0000-4000-8000-00000{}", c.run), "status": c.end, "name": format!("run-{}", c.run),
        "workflowId": "9876543", "runOutputUri": format!("s3://{bucket}/runs/{}", c.run),
        "creationTime": iso(now - Duration::from_secs(c.start + 60)), "startTime": iso(now - Duration::from_secs(c.start)),
        "tags": {"WESRunId": c.wes, "Project": "P-0042"}});
    if let Some(stop) = c.stop {
        run["stopTime"] = iso(now - Duration::from_secs(stop)).into();
    }
    if c.end == "FAILED" {
        run["statusMessage"] = "Task haplotype_caller (7722103) exited with code 137: out of memory".into();
        run["failureReason"] = "TASK_FAILED".into();
    }
    run
}

fn event(c: &Case, status: &str, at: SystemTime, bucket: &str) -> Vec<u8> {
    let arn = format!("arn:aws:omics:eu-west-1:111122223333:run/{}", c.run);
    let mut detail = json!({"omicsVersion": "1.0.0", "arn": arn, "status": status, "runId": c.run,
        "uuid": format!("0c9e6b7a-0000-4000-8000-00000{}", c.run), "runName": format!("run-{}", c.run),
        "runOutputUri": format!("s3://{bucket}/runs/{}", c.run), "workflowId": "9876543", "workflowName": c.workflow});
    if status == "FAILED" {
        detail["statusMessage"] = "Task haplotype_caller (7722103) exited with code 137: out of memory".into();
        detail["failureReason"] = "TASK_FAILED".into();
    }
    json!({"version": "0", "id": format!("e-{}-{}", c.run, status.to_lowercase()), "detail-type": "Run Status Change",
           "source": "aws.omics", "account": "111122223333", "time": iso(at), "region": "eu-west-1",
           "resources": [arn], "detail": detail})
    .to_string()
    .into_bytes()
}

/// The set, archived in `layout`: five runs (one whose COMPLETED was lost, one whose
/// COMPLETED came twice), a run HealthOmics no longer knows, then one scheduled reconcile
/// (26 hours); beside them, what a real prefix holds: reconcile's ledger and the Python
/// stack's zip.
async fn archive(layout: Layout, tag: &str) -> (Peers, SystemTime) {
    let p = peers_of(tag, Wes::start(KEY).await, |h| h.target.layout = layout).await;
    let now = SystemTime::UNIX_EPOCH
        + Duration::from_secs(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs());
    let outputs =
        |run: &str| json!({"wgs_germline.vcf": format!("s3://out/{run}/a.vcf.gz"), "wgs_germline.mean_coverage": 31.7});
    for c in &CASES {
        p.wes.submit(c.wes);
        p.omics.set(c.run, Run::Found { run: described(c, now, &p.bucket), tasks: vec![] });
        if c.end == "COMPLETED" {
            let body = outputs(c.run).to_string().into_bytes();
            p.s3.put_object()
                .bucket(&p.bucket)
                .key(format!("runs/{}/logs/outputs.json", c.run))
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
    }
    let mut delivered: Vec<Vec<u8>> = Vec::new();
    for c in &CASES {
        delivered.push(event(c, "RUNNING", now - Duration::from_secs(c.start) + Duration::from_secs(60), &p.bucket));
        if let (Some(stop), false, true) = (c.stop, c.lost, c.end != "RUNNING") {
            delivered.push(event(c, c.end, now - Duration::from_secs(stop) + Duration::from_secs(30), &p.bucket));
        }
    }
    // A COMPLETED delivered twice, and a run HealthOmics no longer describes.
    delivered.push(delivered[1].clone());
    let gone = Case {
        run: "7700009",
        wes: "",
        workflow: "wgs-germline",
        start: 3600,
        stop: None,
        end: "RUNNING",
        lost: false,
    };
    delivered.push(event(&gone, "RUNNING", now - Duration::from_secs(3600), &p.bucket));
    for e in delivered {
        let report = p.handler.handle(Arc::from(e)).await;
        assert!(matches!(report, Ok(Report::Processed { .. })), "{report:?}");
    }
    let s3 = p.handler.enricher.s3.get().await;
    let settings = Settings { rate: 100.0, stop_at: None, ledger: Some(Ledger::beside(s3, &p.handler.target)) };
    let window = Window { since: now - Duration::from_secs(26 * 3600), until: SystemTime::now() };
    let omics = p.handler.enricher.omics.get().await;
    let summary = reconcile::reconcile(&p.handler, omics, window, false, &settings, &|_| {}).await.unwrap();
    assert_eq!((summary.in_window, summary.failed), (2, 0), "{summary:?}");
    let zip = b"PK\x03\x04 the Python stack's deployment package".to_vec();
    p.s3.put_object()
        .bucket(&p.bucket)
        .key(format!("{PREFIX}/ngs360-omics.zip"))
        .body(zip.into())
        .send()
        .await
        .unwrap();
    (p, now)
}

/// Every saved query's answer over the bucket's archive.
fn queries(p: &Peers, layout: &str, wes_run: &str) -> Value {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(root().join("tools/lake_query.py"))
        .args(["--template", root().join("template.yaml").to_str().unwrap(), "--layout", layout])
        .args(["--s3", &format!("s3://{}/{PREFIX}", p.bucket), "--endpoint", &moto::moto().url])
        .args(["--param", &format!("outputs-of-one-wes-run={wes_run}")])
        .envs(aws_env(&p.omics.url()));
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rows(answers: &Value, name: &str) -> Vec<Value> {
    answers[name]["rows"].as_array().unwrap_or_else(|| panic!("{name}: {answers}")).clone()
}

fn at(now: SystemTime, before: u64, after: u64) -> String {
    iso(now - Duration::from_secs(before) + Duration::from_secs(after))
}

fn the_saved_queries_answer(answers: &Value, now: SystemTime) {
    let [a, b, c, d, e] = &CASES;
    assert_eq!(
        rows(answers, "latest-state-of-every-run"),
        [
            json!([a.run, a.wes, "COMPLETED", at(now, 259_200, 30), "aws.omics", 2]),
            json!([b.run, b.wes, "FAILED", at(now, 172_800, 30), "aws.omics", 2]),
            json!([c.run, c.wes, "COMPLETED", at(now, 72_000, 0), "ngs360.reconcile", 2]),
            json!([d.run, d.wes, "RUNNING", at(now, 18_000, 60), "aws.omics", 2]),
            json!([e.run, e.wes, "CANCELLED", at(now, 864_000, 30), "aws.omics", 2]),
            json!(["7700009", null, "RUNNING", at(now, 3600, 0), "aws.omics", 1]),
        ],
        "one row per run, its latest status: the repaired one from reconcile's event"
    );
    assert_eq!(
        rows(answers, "failed-runs-last-7-days"),
        [json!([
            b.run,
            b.wes,
            "wgs-germline",
            at(now, 172_800, 30),
            "TASK_FAILED",
            "Task haplotype_caller (7722103) exited with code 137: out of memory"
        ])]
    );
    // From the first RUNNING event (a minute after the start) to the terminal one.
    let secs = |start: u64, stop: u64, late: u64| (start - 60) - stop + late;
    let (ra, rb, rc, re) =
        (secs(a.start, 259_200, 30), secs(b.start, 172_800, 30), secs(c.start, 72_000, 0), secs(e.start, 864_000, 30));
    assert_eq!(
        rows(answers, "run-durations-by-workflow"),
        [
            json!(["rna-quant", 2, rc.min(re), ((rc + re) as f64 / 2.0).round(), rc.max(re)]),
            json!(["wgs-germline", 2, ra.min(rb), ((ra + rb) as f64 / 2.0).round(), ra.max(rb)]),
        ]
    );
    let (c_day, d_day) = (at(now, 72_000, 0)[..10].to_owned(), at(now, 18_000, 0)[..10].to_owned());
    let repaired = rows(answers, "events-repaired-by-reconcile-per-day");
    if c_day == d_day {
        assert_eq!(repaired, [json!([c_day, 2, 2])]);
    } else {
        assert_eq!(repaired, [json!([c_day, 1, 1]), json!([d_day, 1, 1])], "C's COMPLETED, D's RUNNING");
    }
    let outputs = rows(answers, "outputs-of-one-wes-run");
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(
        outputs[0].as_array().unwrap()[..4],
        [json!(a.wes), json!(a.run), json!(at(now, 259_200, 30)), json!("aws.omics")]
    );
    let mapping: Value = serde_json::from_str(outputs[0][4].as_str().unwrap()).unwrap();
    assert_eq!(
        mapping,
        json!({"wgs_germline.vcf": format!("s3://out/{}/a.vcf.gz", a.run), "wgs_germline.mean_coverage": 31.7})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saved_queries_answer_over_a_flat_lake() {
    let (p, now) = archive(Layout::Flat, "lake-flat").await;
    let answers = tokio::task::block_in_place(|| queries(&p, "flat", CASES[0].wes));
    for (name, answer) in answers.as_object().unwrap() {
        eprintln!("{name}: {}", answer["columns"]);
        for row in answer["rows"].as_array().unwrap() {
            eprintln!("  {row}");
        }
    }
    the_saved_queries_answer(&answers, now);
    // 11 events and the zip (read as an empty row that no query counts); the ledger hidden.
    assert_eq!(answers["latest-state-of-every-run"]["objects"], 12, "{answers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saved_queries_answer_over_a_dated_lake_reading_only_its_days() {
    let (p, now) = archive(Layout::Dated, "lake-dated").await;
    let keys: Vec<String> = p.archive().await.into_iter().map(|(k, _)| k).collect();
    let events: Vec<&String> = keys.iter().filter(|k| k.contains("/event_")).collect();
    assert_eq!(events.len(), 11, "{keys:?}");
    for k in &events {
        let name = k.rsplit('/').next().unwrap();
        let day = &name[6..14];
        let want = format!("{PREFIX}/year={}/month={}/day={}/{name}", &day[..4], &day[4..6], &day[6..]);
        assert_eq!(**k, want, "filed under its event's UTC day");
    }
    let answers = tokio::task::block_in_place(|| queries(&p, "dated", CASES[0].wes));
    the_saved_queries_answer(&answers, now);
    // The 7-day query reads only the last 7 (or 8, by the clock) days' partitions: not run
    // E's two events, ten days ago.
    let failed = &answers["failed-runs-last-7-days"];
    assert_eq!(failed["objects"], 11, "the zip and the ledger are outside the partitions");
    assert_eq!(failed["files"], 9, "{failed}");
}

/// The table's columns are the records' keys: no key without a column, no column without
/// a key, over every fixture's record from the bundled guest and the records of the lake
/// above (which has an `enrichment_errors`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tables_columns_are_the_records_keys() {
    let out = std::process::Command::new("python3")
        .arg(root().join("tools/lake_query.py"))
        .args(["--columns", "--template", root().join("template.yaml").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let columns: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let read_from: BTreeSet<String> = columns.iter().map(|c| c["key"].as_str().unwrap().to_lowercase()).collect();
    let names: BTreeSet<&str> = columns.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), columns.len(), "no column twice");
    for c in &columns {
        let name = c["name"].as_str().unwrap();
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{name}");
    }
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for f in Fixture::all() {
        // The fixture's expected record is the bundled guest's, byte for byte
        // (`cli::transform_gives_every_fixture_record_byte_for_byte`).
        let Some(record) = f.record() else { continue };
        let record: Value = serde_json::from_str(&record).unwrap();
        keys.extend(record.as_object().unwrap().keys().map(|k| k.to_lowercase()));
    }
    let (p, _) = archive(Layout::Flat, "lake-columns").await;
    for (key, body) in p.archive().await {
        if key.contains("/event_") {
            let record: Value = serde_json::from_str(&body).unwrap();
            keys.extend(record.as_object().unwrap().keys().map(|k| k.to_lowercase()));
        }
    }
    assert!(keys.contains("enrichment_errors") && keys.contains("detail-type"), "{keys:?}");
    let without_column: Vec<&String> = keys.difference(&read_from).collect();
    let without_key: Vec<&String> = read_from.difference(&keys).collect();
    assert!(without_column.is_empty(), "record keys without a column: {without_column:?}");
    assert!(without_key.is_empty(), "columns without a key: {without_key:?}");
}
