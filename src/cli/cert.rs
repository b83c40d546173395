//! `mpc cert`: a private CA and the certificates a TLS relay (and, for mutual TLS, its
//! clients) need, in one command. The usual quick `openssl req -x509` makes a CA
//! certificate, which TLS refuses as a server's own; this makes the right kinds.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::Failure;

/// Arguments of `mpc cert`.
#[derive(clap::Args, Debug)]
pub struct CertArgs {
    /// The folder to write to (created if missing). It receives ca.pem and ca.key (the
    /// private CA, reused by later runs on the same folder), relay.pem and relay.key for
    /// --host, and client-NAME.pem and client-NAME.key for each --client.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A host name or IP address clients use to reach the relay (repeat for several, e.g.
    /// --host relay.example --host 127.0.0.1); makes relay.pem and relay.key.
    #[arg(long, value_name = "NAME")]
    pub host: Vec<String>,
    /// Also make a client certificate for mutual TLS (the relay's --client-ca is ca.pem);
    /// repeat for several clients.
    #[arg(long, value_name = "NAME")]
    pub client: Vec<String>,
    /// Replace existing files (and the CA) instead of refusing.
    #[arg(long)]
    pub force: bool,
}

/// Writes the CA and the requested certificates, and says on stderr how to use them.
pub fn run(args: CertArgs) -> Result<(), Failure> {
    if args.host.is_empty() && args.client.is_empty() {
        return Err(Failure::usage(
            "give --host NAME (the relay's certificate) and/or --client NAME (a client certificate)",
        ));
    }
    fs::create_dir_all(&args.out).map_err(|e| {
        Failure::usage(format!(
            "cannot create the folder {}: {e}",
            args.out.display()
        ))
    })?;
    let ca_pem = args.out.join("ca.pem");
    let ca_key = args.out.join("ca.key");
    let issuer = if ca_pem.exists() && ca_key.exists() && !args.force {
        let issuer = load_ca(&ca_pem, &ca_key)?;
        crate::progress::eprint_line(&format!("using the CA in {}", ca_pem.display()));
        issuer
    } else {
        let (issuer, cert_pem, key_pem) = new_ca().map_err(cert_error)?;
        write_file(&ca_pem, &cert_pem, false, args.force)?;
        write_file(&ca_key, &key_pem, true, args.force)?;
        crate::progress::eprint_line(&format!(
            "wrote the private CA: {} (its key: {})",
            ca_pem.display(),
            ca_key.display()
        ));
        issuer
    };
    if !args.host.is_empty() {
        let (cert, key) = leaf(&issuer, &args.host, ExtendedKeyUsagePurpose::ServerAuth)?;
        let (pem, key_file) = (args.out.join("relay.pem"), args.out.join("relay.key"));
        write_file(&pem, &cert, false, args.force)?;
        write_file(&key_file, &key, true, args.force)?;
        crate::progress::eprint_line(&format!(
            "wrote the relay's certificate for {}: {} and {}\n  relay:   mpc serve --tls-cert {} --tls-key {}\n  parties: --ca-cert {}",
            args.host.join(", "),
            pem.display(),
            key_file.display(),
            pem.display(),
            key_file.display(),
            ca_pem.display()
        ));
    }
    for name in &args.client {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Failure::usage(format!(
                "--client {name:?}: use letters, digits, '-', '_' and '.' (it becomes a file name)"
            )));
        }
        let (cert, key) = leaf(
            &issuer,
            std::slice::from_ref(name),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let pem = args.out.join(format!("client-{name}.pem"));
        let key_file = args.out.join(format!("client-{name}.key"));
        write_file(&pem, &cert, false, args.force)?;
        write_file(&key_file, &key, true, args.force)?;
        crate::progress::eprint_line(&format!(
            "wrote client {name}'s certificate: {} and {}\n  relay:  mpc serve ... --client-ca {}\n  {name}: --cert {} --key {}",
            pem.display(),
            key_file.display(),
            ca_pem.display(),
            pem.display(),
            key_file.display()
        ));
    }
    Ok(())
}

fn cert_error(e: rcgen::Error) -> Failure {
    Failure::protocol(format!("cannot make the certificate: {e}"))
}

/// A new CA: its issuer, certificate PEM and key PEM.
fn new_ca() -> Result<(Issuer<'static, KeyPair>, String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .distinguished_name
        .push(DnType::CommonName, "mpc private CA");
    let cert = params.self_signed(&key)?;
    let key_pem = key.serialize_pem();
    Ok((Issuer::new(params, key), cert.pem(), key_pem))
}

/// The CA written by an earlier run.
fn load_ca(cert: &Path, key: &Path) -> Result<Issuer<'static, KeyPair>, Failure> {
    let read = |path: &Path| {
        fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))
    };
    let key_pair = KeyPair::from_pem(&read(key)?).map_err(|e| {
        Failure::usage(format!(
            "{} is not a private key in PEM: {e}; use --force to make a new CA",
            key.display()
        ))
    })?;
    Issuer::from_ca_cert_pem(&read(cert)?, key_pair).map_err(|e| {
        Failure::usage(format!(
            "{} is not a CA certificate in PEM: {e}; use --force to make a new CA",
            cert.display()
        ))
    })
}

/// A certificate (not a CA) for `names`, signed by the CA: PEM certificate and key.
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    names: &[String],
    purpose: ExtendedKeyUsagePurpose,
) -> Result<(String, String), Failure> {
    let mut params = CertificateParams::new(names.to_vec()).map_err(|e| {
        Failure::usage(format!(
            "{} is not a valid host name: {e}",
            names.join(", ")
        ))
    })?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![purpose];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    let key = KeyPair::generate().map_err(cert_error)?;
    let cert = params.signed_by(&key, issuer).map_err(cert_error)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes a file, refusing to replace one unless `force`; keys are readable by the owner only.
fn write_file(path: &Path, text: &str, secret: bool, force: bool) -> Result<(), Failure> {
    if force && path.exists() {
        // Removed rather than truncated, so that a key file gets the owner-only mode anew.
        fs::remove_file(path)
            .map_err(|e| Failure::usage(format!("cannot replace {}: {e}", path.display())))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::usage(format!(
                "{} exists; pass --force to replace it",
                path.display()
            ))
        } else {
            Failure::usage(format!("cannot write {}: {e}", path.display()))
        }
    })?;
    file.write_all(text.as_bytes())
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))
}
