//! A component that misbehaves on request, for the host's sandbox tests. The event's
//! `"hostile"` field picks the behaviour:
//!
//! - `loop`: spins forever in `transform`;
//! - `alloc`: allocates until something stops it;
//! - `panic`: panics with a known message;
//! - `output`: returns a 10 MiB record;
//! - `recurse`: recurses until the stack runs out;
//! - `probe`: looks for environment variables, files, the clock, randomness and sockets,
//!   and reports what it found as its record;
//! - `chatty`: writes 1 MiB to stderr, then returns a small record;
//! - `echo`: the event is `{"hostile":"echo"}` and three more lines, a timestamp, an id and a
//!   record, which come back as they are (for fuzzing the host's handling of guest output);
//! - `sleep-parse`, `sleep-plan`, `sleep-transform`: sleeps for a minute in that export
//!   (`std::thread::sleep`: a WASI clock pollable, blocked on);
//! - `poll`: in `transform`, polls a monotonic-clock pollable of a minute;
//! - `huge-refusal`: `parse` refuses the event with a 20 MB message;
//! - `huge-ignore`: `plan` ignores the event with a 20 MB reason;
//! - `huge-identity`: `plan` names a run id of 100 KB;
//! - `many-notes`: `transform` returns a million (empty) notes;
//! - `newlines`: every string of every answer is made of newlines, control characters and
//!   forged log lines, each within the host's bounds; 256 notes and errors;
//! - anything else: a small record, normally.
//!
//! Built with a feature, `describe` misbehaves instead (see Cargo.toml).

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "omics-event-processor",
    });
}

use bindings::exports::ngs360::omics_events::processor::{self as wit, Guest, GuestEvent};

struct Hostile;

/// A minute: far past any time limit the host sets.
const LONG: std::time::Duration = std::time::Duration::from_secs(60);

/// Text that would forge log lines and escape sequences if a host logged it as it is.
fn forged(n: usize) -> String {
    "\n{\"level\":\"ERROR\",\"message\":\"forged\"}\r\u{1b}[2J\u{0}".repeat(n)
}

fn mode(event: &[u8]) -> String {
    let text = String::from_utf8_lossy(event);
    let Some(at) = text.find("\"hostile\":\"") else { return String::new() };
    let rest = &text[at + "\"hostile\":\"".len()..];
    rest.split('"').next().unwrap_or_default().to_owned()
}

fn identity() -> wit::EventIdentity {
    wit::EventIdentity { run_id: "1".into(), status: "RUNNING".into(), event_id: Some("hostile".into()) }
}

fn outcome(record: String) -> wit::Outcome {
    wit::Outcome {
        identity: identity(),
        record,
        callback: wit::Callback::Skip("hostile test guest".into()),
        archive_key: wit::ArchiveKey { timestamp: None, id: None },
        enrichment_errors: Vec::new(),
        notes: Vec::new(),
    }
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, pad: [u8; 256]) -> u64 {
    let pad = std::hint::black_box(pad);
    std::hint::black_box(recurse(depth + 1, pad)) + u64::from(pad[(depth % 256) as usize])
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What the sandbox lets the guest see, as a JSON object.
fn probe() -> String {
    let env: Vec<String> = wasip2::cli::environment::get_environment().into_iter().map(|(k, _)| quote(&k)).collect();
    let std_env: Vec<String> = std::env::vars().map(|(k, _)| quote(&k)).collect();
    let args = wasip2::cli::environment::get_arguments().len();
    let preopens = wasip2::filesystem::preopens::get_directories().len();
    let file = match std::fs::read("/etc/passwd") {
        Ok(bytes) => format!("read {} bytes", bytes.len()),
        Err(e) => format!("error: {e}"),
    };
    let dir = match std::fs::read_dir(".") {
        Ok(entries) => format!("listed {} entries", entries.count()),
        Err(e) => format!("error: {e}"),
    };
    let wall = wasip2::clocks::wall_clock::now();
    let monotonic = wasip2::clocks::monotonic_clock::now();
    let system_time =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(u64::MAX);
    let random = wasip2::random::random::get_random_bytes(16);
    let insecure = wasip2::random::insecure::get_insecure_random_bytes(16);
    let socket = match std::net::TcpStream::connect("127.0.0.1:22") {
        Ok(_) => "connected".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let lookup = match std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)) {
        Ok(addrs) => format!("resolved {} addresses", addrs.count()),
        Err(e) => format!("error: {e}"),
    };
    format!(
        "{{\"env\":[{}],\"std_env\":[{}],\"args\":{args},\"preopens\":{preopens},\"file\":{},\"dir\":{},\
         \"wall_clock_seconds\":{},\"monotonic_ns\":{monotonic},\"system_time_seconds\":{system_time},\
         \"random\":{:?},\"insecure_random\":{:?},\"socket\":{},\"lookup\":{}}}",
        env.join(","),
        std_env.join(","),
        quote(&file),
        quote(&dir),
        wall.seconds,
        random,
        insecure,
        quote(&socket),
        quote(&lookup),
    )
}

impl Guest for Hostile {
    type Event = HostileEvent;

    fn describe() -> wit::GuestInfo {
        #[cfg(feature = "describe-sleeps")]
        std::thread::sleep(LONG);
        #[cfg(feature = "describe-chatty")]
        {
            eprintln!("hostile: describing myself{}", forged(100));
            return wit::GuestInfo { name: format!("hostile{}", forged(3)), version: forged(2) };
        }
        #[cfg(feature = "unlinked-import")]
        {
            let request = wasip2::http::types::OutgoingRequest::new(wasip2::http::types::Fields::new());
            let _ = wasip2::http::outgoing_handler::handle(request, None);
        }
        #[allow(unreachable_code)]
        wit::GuestInfo { name: "hostile".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

struct HostileEvent {
    mode: String,
    bytes: Vec<u8>,
}

impl GuestEvent for HostileEvent {
    fn parse(bytes: Vec<u8>) -> Result<wit::Event, wit::TransformError> {
        let mode = mode(&bytes);
        match mode.as_str() {
            "sleep-parse" => std::thread::sleep(LONG),
            "huge-refusal" => return Err(wit::TransformError::InvalidJson("x\n".repeat(10 << 20))),
            _ => {}
        }
        Ok(wit::Event::new(HostileEvent { mode, bytes }))
    }

    fn plan(&self, _run: Option<String>) -> Result<wit::EventPlan, wit::TransformError> {
        let mut id = identity();
        match self.mode.as_str() {
            "sleep-plan" => std::thread::sleep(LONG),
            "huge-ignore" => return Ok(wit::EventPlan::Ignore("I\n".repeat(10 << 20))),
            "huge-identity" => id.run_id = "7".repeat(100 << 10),
            "newlines" => {
                id = wit::EventIdentity { run_id: forged(3), status: forged(3), event_id: Some(forged(3)) };
            }
            "newlines-ignore" => return Ok(wit::EventPlan::Ignore(forged(1000))),
            _ => {}
        }
        Ok(wit::EventPlan::Process(wit::FetchPlan { identity: id, get_run: false, tasks: None, outputs: None }))
    }

    fn transform(&self, _context: wit::Context) -> Result<wit::Outcome, wit::TransformError> {
        match self.mode.as_str() {
            "sleep-transform" => {
                std::thread::sleep(LONG);
                Ok(outcome("{}".into()))
            }
            "poll" => {
                let pollable = wasip2::clocks::monotonic_clock::subscribe_duration(LONG.as_nanos() as u64);
                wasip2::io::poll::poll(&[&pollable]);
                Ok(outcome("{}".into()))
            }
            "many-notes" => {
                let mut out = outcome("{}".into());
                out.notes = vec![String::new(); 1_000_000];
                Ok(out)
            }
            "newlines" => Ok(wit::Outcome {
                identity: wit::EventIdentity { run_id: forged(3), status: forged(3), event_id: Some(forged(3)) },
                record: "{\"ok\":true}".into(),
                callback: wit::Callback::Skip(forged(1000)),
                archive_key: wit::ArchiveKey { timestamp: Some(forged(3)), id: Some(forged(3)) },
                enrichment_errors: vec![forged(100); 256],
                notes: vec![forged(100); 256],
            }),
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile guest panics on purpose"),
            "output" => Ok(outcome(format!("\"{}\"", "x".repeat(10 << 20)))),
            "recurse" => Ok(outcome(recurse(0, [1; 256]).to_string())),
            "probe" => Ok(outcome(probe())),
            "echo" => {
                let text = String::from_utf8_lossy(&self.bytes);
                let mut lines = text.splitn(4, '\n').skip(1);
                let (timestamp, id, record) = (lines.next(), lines.next(), lines.next());
                let mut out = outcome(record.unwrap_or_default().to_owned());
                out.archive_key =
                    wit::ArchiveKey { timestamp: timestamp.map(str::to_owned), id: id.map(str::to_owned) };
                Ok(out)
            }
            "chatty" => {
                let line = "y".repeat(1023) + "\n";
                for _ in 0..1024 {
                    eprint!("{line}");
                }
                Ok(outcome("{}".into()))
            }
            _ => Ok(outcome("{\"ok\":true}".into())),
        }
    }
}

bindings::export!(Hostile with_types_in bindings);
