//! An internal NGS360 WES API whose certificate chains to a private CA, on loopback over
//! TLS: the real binary reaches it once `API_SERVER_CA_FILE` names the CA's PEM file (as
//! README documents), refuses it without, and refuses to start with a file that holds no
//! certificate.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;

use crate::pipeline::KEY;
use crate::support::moto::{aws_env, bucket};
use crate::support::omics::{self, Omics};
use crate::support::wes::Wes;
use crate::support::{Fixture, TempDir, run};

/// A private CA, and a server configuration whose certificate (for `127.0.0.1` and
/// `localhost`) it signed.
struct PrivateCa {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

fn private_ca() -> PrivateCa {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "NGS360 test private CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "wes.internal.test");
    let cert = leaf.signed_by(&key, &issuer).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), CertificateDer::from(ca_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    PrivateCa { ca_pem: ca_cert.pem(), server: Arc::new(server) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_wes_endpoint_is_reached_once_its_ca_is_configured() {
    let pki = private_ca();
    let wes = Wes::start_tls(KEY, pki.server.clone()).await;
    assert!(wes.api_server().starts_with("https://127.0.0.1:"), "{}", wes.api_server());
    let omics = Omics::start().await;
    let archive = bucket("private-ca").await;
    let f = Fixture::load("eventbridge-omics-run-running");
    omics.set("4417021", omics::Run::Found { run: f.context["run"].clone(), tasks: vec![] });
    let tmp = TempDir::new("private-ca");
    let event = tmp.0.join("event.json");
    std::fs::write(&event, &f.event).unwrap();
    let ca_file = tmp.0.join("private-ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let not_pem = tmp.0.join("not-a-certificate.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let mut env = aws_env(&omics.url());
    env.extend(
        [("API_SERVER", wes.api_server()), ("DATA_LAKE_BUCKET", archive.clone()), ("AUTH_TOKEN", KEY.into())]
            .map(|(k, v)| (k.to_string(), v)),
    );
    let process = |extra: Option<(&str, &std::path::Path)>| {
        let mut env = env.clone();
        env.extend(extra.map(|(k, v)| (k.to_owned(), v.to_str().unwrap().to_owned())));
        tokio::task::block_in_place(|| run(&["process", event.to_str().unwrap()], &env))
    };

    // Without the CA, the compiled-in public roots do not vouch for the server: the
    // invocation fails (Lambda retries it; the dead-letter queue keeps it), nothing posted.
    let (code, stdout, stderr) = process(None);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(stderr.contains("could not connect: invalid peer certificate: UnknownIssuer"), "{stderr}");
    assert!(stderr.contains("needs API_SERVER_CA_FILE"), "{stderr}");
    assert!(wes.accepted().is_empty());

    // With it, the callback goes through, over TLS.
    let (code, stdout, stderr) = process(Some(("API_SERVER_CA_FILE", &ca_file)));
    assert_eq!(code, 0, "{stderr}");
    let response: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(response["callback"], "sent (HTTP 200)", "{stdout}");
    assert_eq!(wes.accepted().len(), 1);
    assert_eq!(serde_json::to_string(&wes.accepted()[0]).unwrap(), f.record().unwrap());

    // A file with no certificate in it stops the cold start, naming the variable.
    let (code, stdout, stderr) = process(Some(("API_SERVER_CA_FILE", &not_pem)));
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(stderr.contains("API_SERVER_CA_FILE") && stderr.contains("holds no certificate"), "{stderr}");
    let missing = tmp.0.join("missing.pem");
    let (code, _, stderr) = process(Some(("API_SERVER_CA_FILE", &missing)));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("API_SERVER_CA_FILE") && stderr.contains("cannot be read"), "{stderr}");
}
