//! TLS for the relay and for direct-mode endpoints, with rustls and its `ring` provider:
//! loading PEM certificates and keys, building server configurations (optionally admitting
//! only clients with a certificate from a given CA), and explaining TLS failures to people.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{AlertDescription, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio_rustls::TlsAcceptor;

/// Where a TLS server finds its certificate, its key and (optionally) the CA whose
/// certificates it demands from clients.
#[derive(Debug, Clone)]
pub struct ServerTlsFiles {
    /// PEM file with the server's certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM file with the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM file with the CA certificates that client certificates must chain to; when set,
    /// clients without such a certificate are refused during the handshake.
    pub client_ca: Option<PathBuf>,
}

/// Why TLS could not be set up.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A PEM file cannot be read or parsed.
    #[error("cannot read the {what} from {path}: {detail}")]
    Read {
        /// What the file should hold ("certificate", "private key", "CA certificate").
        what: &'static str,
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// A PEM file holds no item of the expected kind.
    #[error("{path} holds no {what} (expected a PEM block such as '-----BEGIN {pem}-----')")]
    Missing {
        /// What the file should hold.
        what: &'static str,
        /// The PEM label expected.
        pem: &'static str,
        /// The file.
        path: String,
    },
    /// rustls refused the combination (e.g. the key does not match the certificate).
    #[error("invalid TLS setup: {0}")]
    Config(String),
    /// The server certificate is a CA certificate, which no TLS client accepts as a
    /// server's own certificate.
    #[error(
        "{path} is a CA certificate (basicConstraints CA:TRUE, as `openssl req -x509` makes by default); TLS clients refuse a CA certificate as a server's own certificate even when they trust it. Create a CA and a server certificate signed by it with `mpc cert --out DIR --host NAME`, serve DIR/relay.pem with DIR/relay.key, and give clients --ca-cert DIR/ca.pem"
    )]
    CaAsServer {
        /// The certificate file.
        path: String,
    },
}

/// Installs rustls' `ring` provider as the process default (once; later calls do nothing).
/// Every HTTP client and TLS configuration of this crate calls this first.
pub fn install_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: a provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The crypto provider used by every TLS configuration of this crate.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(what: &'static str, path: &Path, err: rustls_pki_types::pem::Error) -> TlsError {
    TlsError::Read {
        what,
        path: path.display().to_string(),
        detail: err.to_string(),
    }
}

/// Reads every certificate of a PEM file (at least one).
pub fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| pem_error(what, path, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_error(what, path, err))?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            what,
            pem: "CERTIFICATE",
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|err| match err {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Missing {
            what: "private key",
            pem: "PRIVATE KEY",
            path: path.display().to_string(),
        },
        other => pem_error("private key", path, other),
    })
}

/// A root store holding the CA certificates of a PEM file.
pub fn load_roots(path: &Path, what: &'static str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path, what)? {
        roots.add(cert).map_err(|err| TlsError::Read {
            what,
            path: path.display().to_string(),
            detail: format!("not a usable CA certificate: {err}"),
        })?;
    }
    Ok(roots)
}

/// The rustls server configuration for `files` (HTTP/2 and HTTP/1.1 offered by ALPN).
pub fn server_config(files: &ServerTlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    install_crypto_provider();
    let certs = load_certs(&files.cert, "certificate")?;
    if is_ca_certificate(&certs[0]) {
        return Err(TlsError::CaAsServer {
            path: files.cert.display().to_string(),
        });
    }
    let key = load_key(&files.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::Config(err.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = load_roots(ca, "client CA certificate")?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|err| {
                    TlsError::Config(format!(
                        "cannot use {} to check client certificates: {err}",
                        ca.display()
                    ))
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|err| {
        TlsError::Config(format!(
            "the key in {} does not fit the certificate in {}: {err}",
            files.key.display(),
            files.cert.display()
        ))
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Whether a certificate says it is a CA (basicConstraints CA:TRUE). An unparsable one is
/// left for rustls to judge.
pub fn is_ca_certificate(cert: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(cert.as_ref())
        .ok()
        .and_then(|(_, parsed)| {
            parsed
                .basic_constraints()
                .ok()
                .flatten()
                .map(|bc| bc.value.ca)
        })
        .unwrap_or(false)
}

/// A TLS acceptor for `files`.
pub fn acceptor(files: &ServerTlsFiles) -> Result<TlsAcceptor, TlsError> {
    Ok(TlsAcceptor::from(server_config(files)?))
}

/// The rustls error somewhere in an error's chain (looking inside I/O errors, which hide
/// their payload from `source()`).
fn find_rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        // I/O errors may wrap I/O errors that wrap the rustls error.
        let mut io = e.downcast_ref::<std::io::Error>();
        while let Some(inner) = io.and_then(std::io::Error::get_ref) {
            if let Some(found) = inner.downcast_ref::<rustls::Error>() {
                return Some(found);
            }
            io = inner.downcast_ref::<std::io::Error>();
        }
        current = e.source();
    }
    None
}

/// Explains a failed connection to `whom` ("the relay at https://...", "party 2 at ...")
/// if TLS is the reason; `None` for other failures (refused connection, timeouts, ...),
/// which are worth retrying. TLS failures are not: the same certificates fail again.
pub fn explain_tls_failure(err: &(dyn StdError + 'static), whom: &str) -> Option<String> {
    let text = super::chain(err);
    if let Some(tls) = find_rustls_error(err) {
        return Some(explain_rustls(tls, whom));
    }
    // Fallbacks on the text, for errors that lost their type on the way.
    if let Some(at) = text.find("invalid peer certificate") {
        return Some(format!(
            "{}'s certificate is not trusted: {}; if it uses a private CA, give that CA's \
             certificate with --ca-cert FILE",
            whom,
            &text[at..]
        ));
    }
    if text.contains("CertificateRequired") {
        return Some(client_cert_required(whom));
    }
    None
}

fn client_cert_required(whom: &str) -> String {
    format!(
        "{whom} requires a client certificate (it was started with --client-ca) and this \
         endpoint presented none: give --cert FILE --key FILE with a certificate issued by \
         that CA"
    )
}

fn explain_rustls(err: &rustls::Error, whom: &str) -> String {
    match err {
        // webpki's CaUsedAsEndEntity reaches rustls only as an "other" certificate error.
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))
            if other.to_string().contains("CaUsedAsEndEntity") =>
        {
            format!(
                "{whom} presents a CA certificate as its own, which TLS refuses whatever \
                 --ca-cert says; its operator should create a CA and a server certificate \
                 signed by it with `mpc cert --out DIR --host NAME` and serve DIR/relay.pem"
            )
        }
        rustls::Error::InvalidCertificate(cert) => {
            use rustls::CertificateError as E;
            let why = match cert {
                E::UnknownIssuer => "it was issued by a CA this endpoint does not trust",
                E::NotValidForName | E::NotValidForNameContext { .. } => {
                    "it does not name the host of the URL"
                }
                E::Expired | E::ExpiredContext { .. } => "it has expired",
                E::NotValidYet | E::NotValidYetContext { .. } => "it is not valid yet",
                _ => "it failed verification",
            };
            format!(
                "{whom}'s certificate is not trusted: {why} ({cert}); if it uses a private CA, \
                 give that CA's certificate with --ca-cert FILE"
            )
        }
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            client_cert_required(whom)
        }
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::DecryptError
            | AlertDescription::AccessDenied),
        ) => format!(
            "{whom} refused this endpoint's client certificate (TLS alert {alert:?}): give \
             --cert FILE --key FILE with a valid certificate issued by the CA that {whom} \
             trusts (its --client-ca)"
        ),
        rustls::Error::InvalidMessage(_) => format!(
            "TLS with {whom} failed: {err}; is it serving plain http:// rather than https://?"
        ),
        other => format!("TLS with {whom} failed: {other}"),
    }
}
