//! moto's server (from PyPI, `moto[server]`): S3, SQS and Secrets Manager on loopback, one
//! per test process, driven through the real AWS SDK clients.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

pub struct Moto {
    pub url: String,
    _child: Mutex<Child>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The shared moto server, started on first use.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/integration/support/moto_server.py");
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto's server (pip install 'moto[server]')");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("moto's port");
        let port: u16 =
            line.trim().parse().unwrap_or_else(|_| panic!("moto did not start: {line:?} (is moto[server] installed?)"));
        Moto { url: format!("http://127.0.0.1:{port}"), _child: Mutex::new(child) }
    })
}

/// An SDK configuration for loopback peers: fixed test credentials and region, the given
/// endpoint, two attempts per call.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(endpoint)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await
}

/// An S3 client on moto.
pub async fn s3() -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&sdk_config(&moto().url).await).force_path_style(true).build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A fresh bucket with a unique name.
pub async fn bucket(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("t-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    s3().await.create_bucket().bucket(&name).send().await.expect("create bucket");
    name
}

/// An SQS client on moto.
pub async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config(&moto().url).await)
}

/// A fresh queue with a unique name; its URL.
pub async fn queue(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("q-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    let out = sqs().await.create_queue().queue_name(&name).send().await.expect("create queue");
    out.queue_url().unwrap().to_owned()
}

/// The environment a child process needs to reach the loopback peers and nothing else.
pub fn aws_env(omics_url: &str) -> Vec<(String, String)> {
    let url = &moto().url;
    [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_ENDPOINT_URL_S3", url),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", url),
        ("AWS_ENDPOINT_URL_SQS", url),
        ("AWS_ENDPOINT_URL_OMICS", omics_url),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials"),
        ("AWS_MAX_ATTEMPTS", "2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
