//! TLS for every client the function makes, from roots compiled into the binary (Mozilla's
//! list, as the webpki-roots crates carry it). Loading the system's root store instead meant
//! reading its certificate directory file by file at every cold start (292 files, about 3
//! ms for reqwest and as much for the AWS SDK here).
//!
//! - The WES API client trusts the whole list (its host is the operator's choice).
//! - The AWS SDK's client trusts the roots AWS endpoints chain to: Amazon Trust Services'
//!   (Amazon Root CA 1 to 4, Starfield's two G2 roots, which cross-sign them) and DigiCert's
//!   Global Root G2 and G3. The SDK takes roots as PEM and parses them each time it sets up
//!   a connector: the whole list cost about 2 ms there, these eight a few microseconds.
//!
//! Two additions, as PEM files:
//! - `API_SERVER_CA_FILE`: the CA an internal NGS360 WES API's certificate chains to (a
//!   private CA), trusted for the callback only;
//! - `AWS_CA_BUNDLE` (the AWS SDKs' own variable): extra roots for the AWS endpoints (a
//!   TLS-inspecting proxy on the way out of the VPC, say).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::InitError;

/// The TLS of every client, from the environment (`API_SERVER_CA_FILE`, `AWS_CA_BUNDLE`):
/// a file named there that cannot be read or holds no usable certificate is an error.
pub struct Tls {
    /// The WES API client's rustls configuration.
    pub wes: Arc<rustls::ClientConfig>,
    /// The extra roots of `AWS_CA_BUNDLE`, as PEM.
    aws_extra: Option<Vec<u8>>,
}

impl Tls {
    /// Reads and checks both files (if named).
    pub fn from_env() -> Result<Tls, InitError> {
        let file = |var: &'static str| {
            std::env::var(var).ok().filter(|v| !v.trim().is_empty()).map(|path| read_pem(var, &path)).transpose()
        };
        let wes_extra = file("API_SERVER_CA_FILE")?;
        Ok(Tls { wes: client_config(wes_extra.as_deref())?, aws_extra: file("AWS_CA_BUNDLE")? })
    }

    /// A new HTTP client for the AWS SDK (see [`aws_http_client`]).
    pub fn aws(&self) -> aws_sdk_s3::config::SharedHttpClient {
        aws_http_client(self.aws_extra.as_deref())
    }
}

/// The certificates of a PEM file, checked: at least one, each parsable as a root.
pub fn read_pem(var: &'static str, path: &str) -> Result<Vec<u8>, InitError> {
    let fail = |why: String| InitError::Setup(format!("{var} ({path}): {why}"));
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("is not PEM: {e:?}")))?;
    if certs.is_empty() {
        return Err(fail("holds no certificate".into()));
    }
    let mut store = RootCertStore::empty();
    for cert in certs {
        store.add(cert).map_err(|e| fail(format!("holds a certificate that cannot be a root: {e}")))?;
    }
    Ok(bytes)
}

/// The rustls configuration of the WES API client: the compiled-in roots, and the PEM
/// certificates of `extra` (`API_SERVER_CA_FILE`).
pub fn client_config(extra: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, InitError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for cert in extra.map(CertificateDer::pem_slice_iter).into_iter().flatten() {
        let cert = cert.map_err(|e| InitError::Setup(format!("API_SERVER_CA_FILE: {e:?}")))?;
        roots.add(cert).map_err(|e| InitError::Setup(format!("API_SERVER_CA_FILE: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| InitError::Setup(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The roots AWS endpoints chain to, as PEM (see the module's documentation): taken from
/// Mozilla's list as webpki-root-certs carries it, which a test checks.
///
/// | subject | sha256 (first bytes) | expires |
/// |---|---|---|
/// | Amazon Root CA 1 | 8ECDE688 | 2038 |
/// | Amazon Root CA 2 | 1BA5B2AA | 2040 |
/// | Amazon Root CA 3 | 18CE6CFE | 2040 |
/// | Amazon Root CA 4 | E35D2841 | 2040 |
/// | Starfield Services Root Certificate Authority - G2 | 568D6905 | 2037 |
/// | Starfield Root Certificate Authority - G2 | 2CE1CB0B | 2037 |
/// | DigiCert Global Root G2 | CB3CCBB7 | 2038 |
/// | DigiCert Global Root G3 | 31AD6648 | 2038 |
const AWS_ROOTS_PEM: &[u8] = include_bytes!("aws-roots.pem");

/// The AWS SDK's HTTP client: rustls with the compiled-in roots AWS endpoints chain to, and
/// the PEM certificates of `extra` (`AWS_CA_BUNDLE`); not the system's root store.
pub fn aws_http_client(extra: Option<&[u8]>) -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let mut store = TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_ROOTS_PEM);
    if let Some(extra) = extra {
        store = store.with_pem_certificate(extra.to_vec());
    }
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(TlsContext::builder().with_trust_store(store).build().expect("a TLS context"))
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subjects of the roots AWS endpoints chain to.
    const AWS_SUBJECTS: [&str; 4] = [
        "Amazon Root CA ",
        "Starfield Services Root Certificate Authority - G2",
        "Starfield Root Certificate Authority - G2",
        "DigiCert Global Root G",
    ];

    #[test]
    fn the_aws_roots_are_the_eight_of_mozillas_list_with_those_subjects() {
        let ours: Vec<CertificateDer<'_>> =
            CertificateDer::pem_slice_iter(AWS_ROOTS_PEM).collect::<Result<_, _>>().unwrap();
        let in_list: Vec<&CertificateDer<'_>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter(|cert| AWS_SUBJECTS.iter().any(|s| cert.as_ref().windows(s.len()).any(|w| w == s.as_bytes())))
            .collect();
        assert_eq!(ours.len(), 8, "Amazon Root CA 1-4, Starfield's two G2 roots, DigiCert Global Root G2 and G3");
        assert_eq!(in_list.len(), 8);
        for cert in &ours {
            assert!(in_list.contains(&cert), "a root in aws-roots.pem is not in Mozilla's list");
        }
        let mut store = RootCertStore::empty();
        for cert in ours {
            store.add(cert).unwrap();
        }
    }

    #[test]
    fn the_wes_client_trusts_the_public_roots_and_an_added_ca() {
        assert!(client_config(None).is_ok());
        assert!(client_config(Some(AWS_ROOTS_PEM)).is_ok());
        assert!(client_config(Some(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")).is_err());
    }
}
