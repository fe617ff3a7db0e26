//! Property-based fuzzing, without a nightly toolchain: random and mutated inputs (the
//! fixtures, flipped, cut, spliced and regrown) through the guest's pure logic, natively and
//! as the component, and random guest output through the host's checks.
//!
//! - `fuzz_smoke` runs a fixed seed for a few thousand cases in every test run;
//! - `fuzz_campaign` (ignored) runs for `FUZZ_SECONDS` with a fresh seed: `tools/fuzz.sh`.
//!
//! Properties: nothing panics or traps; a record is one JSON object without repeated keys,
//! starting with `omics_run_id` and `status`; text fields respect the WES API's limits;
//! `log_urls` only for finished runs and `output_mapping` only for completed ones; archive
//! key parts have their shape; flattening is idempotent once its values are scalars; the
//! component and the native build give byte-identical records; the host accepts only JSON
//! objects from a guest and always builds a well-formed archive key.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant, SystemTime};

use ngs360_omics::config::Layout;
use ngs360_omics::error::GuestError;
use ngs360_omics::pipeline::ArchiveTarget;
use ngs360_omics::sandbox::{Context, EventPlan, Guest, Limits, Runtime, TaskList};
use ngs360_omics_guest as native;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value, json};

use crate::support::{Fixture, wasm};

/// xorshift64*: small, fast, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "status",
    "runId",
    "id",
    "time",
    "source",
    "detail-type",
    "detail",
    "resources",
    "arn",
    "region",
    "uuid",
    "statusMessage",
    "failureReason",
    "runOutputUri",
    "k",
    "k_0",
    "resources_0",
    "omics_run_id",
    "tags",
    "enrichment_errors",
    "log_urls",
    "é/#?",
    "",
];
const STATUSES: &[&str] =
    &["PENDING", "STARTING", "RUNNING", "STOPPING", "COMPLETED", "DELETED", "CANCELLED", "FAILED", "WEIRD"];

fn text(rng: &mut Rng) -> String {
    let pieces = [
        "a",
        "/",
        "é",
        "\"",
        "\\",
        "\n",
        "$25",
        "arn:aws:omics:eu-west-1:1:run/7",
        "s3://b/k",
        "2026-03-02T14:05:09Z",
        "..",
        "Ω",
        " ",
    ];
    (0..rng.below(8)).map(|_| *rng.pick(&pieces)).collect()
}

fn value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => json!(rng.next() as i64 / 3),
        3 | 4 => Value::String(text(rng)),
        5 => Value::String(rng.pick(STATUSES).to_string()),
        6 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
        _ => Value::Object((0..rng.below(5)).map(|_| (rng.pick(KEYS).to_string(), value(rng, depth + 1))).collect()),
    }
}

/// A random event, often shaped like a run status change.
fn event(rng: &mut Rng) -> Vec<u8> {
    let mut top = Map::new();
    if rng.chance(85) {
        top.insert("source".into(), json!("aws.omics"));
        top.insert("detail-type".into(), json!("Run Status Change"));
    }
    if rng.chance(80) {
        top.insert("id".into(), Value::String(if rng.chance(70) { format!("e-{}", rng.next()) } else { text(rng) }));
    }
    if rng.chance(80) {
        top.insert("time".into(), if rng.chance(70) { json!("2026-03-02T14:05:09Z") } else { value(rng, 2) });
    }
    let mut detail = Map::new();
    if rng.chance(90) {
        detail.insert(
            "runId".into(),
            if rng.chance(80) { json!(format!("{}", rng.below(9_999_999))) } else { value(rng, 2) },
        );
    }
    if rng.chance(90) {
        detail.insert("status".into(), json!(rng.pick(STATUSES)));
    }
    for _ in 0..rng.below(6) {
        detail.insert(rng.pick(KEYS).to_string(), value(rng, 1));
    }
    if rng.chance(30) {
        detail.insert("statusMessage".into(), Value::String("m".repeat(rng.below(3000))));
    }
    top.insert("detail".into(), Value::Object(detail));
    for _ in 0..rng.below(4) {
        top.insert(rng.pick(KEYS).to_string(), value(rng, 1));
    }
    Value::Object(top).to_string().into_bytes()
}

/// The bytes, damaged: flipped, cut, spliced or regrown.
fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..=rng.below(4) {
        let n = bytes.len();
        match rng.below(5) {
            0 if n > 0 => {
                let i = rng.below(n);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => bytes.truncate(rng.below(n)),
            2 => {
                let at = rng.below(n + 1);
                let piece =
                    rng.pick(&["{", "}", "[", "]", "\"", ",", ":", "null", "\\u0000", "1e999", "\u{7f}"]).as_bytes();
                bytes.splice(at..at, piece.iter().copied());
            }
            3 if n > 1 => {
                let (a, b) = (rng.below(n), rng.below(n));
                let (a, b) = (a.min(b), a.max(b));
                let copy = bytes[a..b].to_vec();
                let at = rng.below(bytes.len() + 1);
                bytes.splice(at..at, copy);
            }
            _ => {}
        }
    }
    bytes
}

/// A record's top-level keys, repeats included.
fn keys(record: &str) -> Result<Vec<String>, String> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((k, _)) = map.next_entry::<String, IgnoredAny>()? {
                keys.push(k);
            }
            Ok(keys)
        }
    }
    let mut de = serde_json::Deserializer::from_str(record);
    let keys = de.deserialize_map(Keys).map_err(|e| format!("not a JSON object: {e}"))?;
    de.end().map_err(|e| format!("trailing data: {e}"))?;
    Ok(keys)
}

/// The properties of one shaped record; `event` is what it was shaped from.
fn check_outcome(o: &native::Outcome, event: &native::Event) -> Result<(), String> {
    let ks = keys(&o.record)?;
    if ks.len() < 2 || ks[0] != "omics_run_id" || ks[1] != "status" {
        return Err(format!("the record starts with {:?}", &ks[..ks.len().min(2)]));
    }
    let unique: HashSet<&String> = ks.iter().collect();
    if unique.len() != ks.len() {
        return Err("a key is repeated".into());
    }
    let v: Value = serde_json::from_str(&o.record).unwrap();
    let chars = |k: &str| v.get(k).and_then(Value::as_str).map(|s| s.chars().count());
    if chars("status_message").unwrap_or(0) > 1000 || chars("failure_reason").unwrap_or(0) > 2000 {
        return Err("a text field is over the WES API's limit".into());
    }
    let status = o.identity.status.as_str();
    // The event's own fields of these names are copied like any other (behaviour §3); the record
    // adds its own only for finished (log_urls) or completed (output_mapping) runs.
    let fields = event.fields();
    let copied = |k: &str| fields.flat.get(k).copied();
    let finished = matches!(status, "COMPLETED" | "FAILED" | "CANCELLED");
    if !finished && v.get("log_urls") != copied("log_urls") {
        return Err(format!("log_urls for {status}"));
    }
    if status != "COMPLETED" && v.get("output_mapping") != copied("output_mapping") {
        return Err(format!("output_mapping for {status}"));
    }
    // Without a region there is no link and the event's own `log_urls`, if any, is copied.
    if let Some(urls) =
        v.get("log_urls").filter(|u| finished && Some(*u) != copied("log_urls")).and_then(Value::as_object)
    {
        for (k, u) in urls {
            let ok = match u {
                Value::Bool(true) => k == "task_logs_truncated" && urls.contains_key("task_logs_base_url"),
                Value::String(s) => s.starts_with("https://"),
                Value::Object(tasks) => {
                    tasks.len() <= 1000 && tasks.values().all(|t| t.as_str().is_some_and(|s| s.starts_with("https://")))
                }
                _ => false,
            };
            if !ok {
                return Err(format!("log_urls.{k} is not a console link"));
            }
        }
    }
    if let Some(ts) = o.archive_key.timestamp.as_ref().filter(|ts| ts.len() != 15 || ts.as_bytes()[8] != b'_') {
        return Err(format!("archive timestamp {ts:?}"));
    }
    if let Some(id) = o.archive_key.id.as_ref().filter(|id| id.contains('/') || *id == ".." || id.is_empty()) {
        return Err(format!("archive id {id:?}"));
    }
    Ok(())
}

/// The tasks part of a context: the first items, whether there are more, the failed ones.
type Tasks = (String, bool, Option<String>);
/// A context as the host passes it: the run, the tasks, the outputs.
type Ctx = (Option<String>, Option<Tasks>, Option<Vec<u8>>);

/// The context parts a host might pass, fixture-shaped or damaged.
fn context(rng: &mut Rng, corpus: &[Fixture]) -> Ctx {
    let f = rng.pick(corpus);
    let part = |rng: &mut Rng, v: Option<&Value>| -> Option<String> {
        let v = v?;
        if rng.chance(20) { None } else { Some(v.to_string()) }
    };
    let run = part(rng, f.context.get("run"));
    let tasks = part(rng, f.context.get("tasks")).map(|items| {
        let more = rng.chance(30);
        let failed = (more && rng.chance(50)).then(|| part(rng, f.context.get("tasks"))).flatten();
        (items, more, failed)
    });
    let outputs = if rng.chance(30) {
        Some(mutate(rng, f.context.get("outputs").map(|o| o.to_string()).unwrap_or_default().into_bytes()))
    } else {
        part(rng, f.context.get("outputs")).map(String::into_bytes)
    };
    (run, tasks, outputs)
}

/// Native properties of one input. `Ok(Some(record))` when a record was shaped.
fn native_case(bytes: &[u8], ctx: &Ctx) -> Result<Option<String>, String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let Ok(event) = native::Event::parse(bytes) else { return Ok(None) };
        let Ok(native::EventPlan::Process(_)) = event.plan(None) else { return Ok(None) };
        let _ = event.plan(ctx.0.as_deref());
        let tasks = ctx.1.as_ref().map(|(items, more, failed)| native::TaskList {
            items,
            more: *more,
            failed: failed.as_deref(),
        });
        let c = native::Context { run: ctx.0.as_deref(), tasks, outputs: ctx.2.as_deref(), errors: &[] };
        match event.transform(&c) {
            Ok(o) => check_outcome(&o, &event).map(|()| Some(o.record)),
            Err(_) => Ok(None),
        }
    }));
    outcome.unwrap_or_else(|p| {
        Err(format!(
            "panic: {:?}",
            p.downcast_ref::<String>().map(String::as_str).or(p.downcast_ref::<&str>().copied())
        ))
    })
}

/// Flattening is idempotent once its values are scalars.
fn flatten_case(rng: &mut Rng) -> Result<(), String> {
    let Value::Object(top) = value(rng, 0) else { return Ok(()) };
    let once: Map<String, Value> =
        native::flatten::flatten(&top).into_iter().map(|(k, v)| (k.into_owned(), v.clone())).collect();
    if once.values().all(|v| !v.is_object() && !v.is_array()) {
        let twice: Map<String, Value> =
            native::flatten::flatten(&once).into_iter().map(|(k, v)| (k.into_owned(), v.clone())).collect();
        if twice != once {
            return Err(format!("flatten is not idempotent on {}", Value::Object(top)));
        }
    }
    Ok(())
}

/// The same input through the component: no trap, and the native build's record.
async fn wasm_case(guest: &Guest, bytes: &[u8], ctx: &Ctx, expected: &Option<String>) -> Result<(), String> {
    let tasks = ctx.1.clone().map(|(items, more, failed)| TaskList { items, more, failed });
    let context = Context { run: ctx.0.clone(), tasks, outputs: ctx.2.clone(), errors: vec![] };
    let got = match guest.open(bytes).await {
        Err(GuestError::Refused(_)) => None,
        Err(e) => return Err(format!("component: {e}")),
        Ok(mut s) => match s.plan(None).await {
            Err(GuestError::Refused(_)) | Ok(EventPlan::Ignore(_)) => None,
            Err(e) => return Err(format!("component: {e}")),
            Ok(EventPlan::Process(_)) => match s.transform(&context).await {
                Ok(o) => Some(o.record),
                Err(GuestError::Refused(_)) => None,
                Err(e) => return Err(format!("component: {e}")),
            },
        },
    };
    if &got != expected {
        let (a, b) = (got.clone().unwrap_or_default(), expected.clone().unwrap_or_default());
        let at = a.bytes().zip(b.bytes()).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        let around = |t: &str| t.get(at.saturating_sub(60)..(at + 60).min(t.len())).unwrap_or("").to_owned();
        return Err(format!(
            "the component and the native build disagree at byte {at} (component {}, native {}): {:?} vs {:?}",
            got.is_some(),
            expected.is_some(),
            around(&a),
            around(&b)
        ));
    }
    Ok(())
}

/// Random guest output through the host: only JSON objects pass, keys always well formed.
async fn host_case(rng: &mut Rng, hostile: &Guest) -> Result<(), String> {
    let piece = |rng: &mut Rng| -> String {
        match rng.below(4) {
            0 => "20260302_140509".into(),
            1 => format!("e-{}", rng.below(1000)),
            2 => text(rng).replace('\n', ""),
            _ => String::from_utf8_lossy(&mutate(rng, b"../x/y".to_vec())).replace('\n', ""),
        }
    };
    let record = if rng.chance(50) {
        value(rng, 0).to_string()
    } else {
        let e = event(rng);
        String::from_utf8_lossy(&mutate(rng, e)).into_owned()
    };
    let (ts, id) = (piece(rng), piece(rng));
    let input = format!("{{\"hostile\":\"echo\"}}\n{ts}\n{id}\n{}", record.replace('\n', " "));
    let mut session = hostile.open(input.as_bytes()).await.map_err(|e| e.to_string())?;
    let ctx = Context { run: None, tasks: None, outputs: None, errors: vec![] };
    match session.transform(&ctx).await {
        Ok(o) => {
            if keys(&o.record).is_err() {
                return Err(format!("the host passed a record that is not a JSON object: {:?}", o.record));
            }
            let key = ArchiveTarget { bucket: "b".into(), prefix: "p".into(), layout: Layout::Flat }
                .key(&o.archive_key, SystemTime::now());
            let name = key.strip_prefix("p/event_").and_then(|k| k.strip_suffix(".json")).unwrap_or("/");
            let id = name.get(16..).unwrap_or("");
            if name.contains('/') || id.is_empty() || id == "." || id == ".." || name.len() < 17 {
                return Err(format!("archive key {key:?} from parts {:?}", o.archive_key));
            }
        }
        Err(GuestError::InvalidRecord(why)) => {
            // A JSON object is refused only for what readers disagree on (behaviour §3:
            // depth, a key twice, a lone surrogate; each is unit-tested in sandbox::record).
            let disputed =
                ["nests deeper than", "twice in one object", "lone surrogate"].iter().any(|r| why.contains(r));
            if keys(&record.replace('\n', " ")).is_ok() && !disputed {
                return Err(format!("a JSON object was refused ({why}): {record:?}"));
            }
        }
        Err(e) => return Err(format!("host: {e}")),
    }
    Ok(())
}

/// Counts and findings of a run.
pub struct Stats {
    pub native: u64,
    pub wasm: u64,
    pub host: u64,
    pub findings: Vec<String>,
}

/// Runs until `until` or `max` cases, from `seed`.
async fn campaign(seed: u64, until: Instant, max: u64) -> Stats {
    let corpus = Fixture::all();
    let runtime = Runtime::new().unwrap();
    let guest = runtime.bundled(Limits::default()).await.unwrap();
    let hostile =
        runtime.load(std::fs::read(wasm::hostile()).unwrap(), "hostile".into(), None, Limits::default()).await.unwrap();
    let mut rng = Rng(seed | 1);
    let mut stats = Stats { native: 0, wasm: 0, host: 0, findings: Vec::new() };
    let note = |stats: &mut Stats, what: String, input: &[u8]| {
        if stats.findings.len() < 20 {
            stats
                .findings
                .push(format!("{what}\n    input: {}", String::from_utf8_lossy(&input[..input.len().min(400)])));
        }
    };
    while Instant::now() < until && stats.native < max {
        let bytes = match rng.below(3) {
            0 => event(&mut rng),
            1 => {
                let e = rng_pick_event(&mut rng, &corpus);
                mutate(&mut rng, e)
            }
            _ => rng_pick_event(&mut rng, &corpus),
        };
        let ctx = context(&mut rng, &corpus);
        stats.native += 1;
        let native = native_case(&bytes, &ctx);
        if let Err(e) = &native {
            note(&mut stats, e.clone(), &bytes);
        }
        if let Err(e) = flatten_case(&mut rng) {
            note(&mut stats, e, b"");
        }
        if stats.native.is_multiple_of(8) {
            stats.wasm += 1;
            if let Err(e) = wasm_case(&guest, &bytes, &ctx, &native.unwrap_or(None)).await {
                note(&mut stats, e, &bytes);
            }
        }
        if stats.native.is_multiple_of(16) {
            stats.host += 1;
            if let Err(e) = host_case(&mut rng, &hostile).await {
                note(&mut stats, e, b"");
            }
        }
    }
    stats
}

fn rng_pick_event(rng: &mut Rng, corpus: &[Fixture]) -> Vec<u8> {
    rng.pick(corpus).event.clone()
}

fn report(seed: u64, took: Duration, stats: &Stats) -> String {
    let mut text = format!(
        "fuzz seed {seed}: {} native cases, {} through the component, {} guest outputs through the host in {:.1} s; {} findings",
        stats.native,
        stats.wasm,
        stats.host,
        took.as_secs_f64(),
        stats.findings.len()
    );
    for f in &stats.findings {
        text.push_str("\n  ");
        text.push_str(f);
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_smoke() {
    let started = Instant::now();
    let stats = campaign(0x5EED_0001, started + Duration::from_secs(60), 4000).await;
    let text = report(0x5EED_0001, started.elapsed(), &stats);
    eprintln!("{text}");
    assert!(stats.findings.is_empty(), "{text}");
    assert!(stats.native >= 4000 && stats.wasm >= 500 && stats.host >= 250, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a timed campaign: tools/fuzz.sh [SECONDS]"]
async fn fuzz_campaign() {
    let seconds: u64 = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64);
    let started = Instant::now();
    let stats = campaign(seed, started + Duration::from_secs(seconds), u64::MAX).await;
    let text = report(seed, started.elapsed(), &stats);
    println!("{text}");
    assert!(stats.findings.is_empty(), "{text}");
}
