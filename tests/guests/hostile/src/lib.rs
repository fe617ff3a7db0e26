//! A component that misbehaves on request, for the host's sandbox tests. The event's
//! `"hostile"` field picks the behaviour of `transform`:
//!
//! - `loop`: spins forever;
//! - `alloc`: allocates until something stops it;
//! - `panic`: panics with a known message;
//! - `output`: returns a 10 MiB record;
//! - `recurse`: recurses until the stack runs out;
//! - `probe`: looks for environment variables, files, the clock, randomness and sockets,
//!   and reports what it found as its record;
//! - `chatty`: writes 1 MiB to stderr, then returns a small record;
//! - `echo`: the event is `{"hostile":"echo"}` and three more lines, a timestamp, an id and a
//!   record, which come back as they are (for fuzzing the host's handling of guest output);
//! - anything else: a small record, normally.

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "omics-event-processor",
    });
}

use bindings::exports::ngs360::omics_events::processor::{self as wit, Guest, GuestEvent};

struct Hostile;

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
        wit::GuestInfo { name: "hostile".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

struct HostileEvent {
    mode: String,
    bytes: Vec<u8>,
}

impl GuestEvent for HostileEvent {
    fn parse(bytes: Vec<u8>) -> Result<wit::Event, wit::TransformError> {
        Ok(wit::Event::new(HostileEvent { mode: mode(&bytes), bytes }))
    }

    fn plan(&self, _run: Option<String>) -> Result<wit::EventPlan, wit::TransformError> {
        Ok(wit::EventPlan::Process(wit::FetchPlan { identity: identity(), get_run: false, tasks: None, outputs: None }))
    }

    fn transform(&self, _context: wit::Context) -> Result<wit::Outcome, wit::TransformError> {
        match self.mode.as_str() {
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
