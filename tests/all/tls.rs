//! TLS: `mpc serve --tls-cert/--tls-key` with a private CA (made here with rcgen, files in a
//! temporary directory), clients with `--ca-cert`, mutual TLS with `--client-ca` and
//! `--cert/--key`, and direct mode over TLS. Everything runs as `mpc` processes on loopback.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Finished, Proc, Relay, finish_all};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tempfile::TempDir;

/// A private CA with a server certificate (for 127.0.0.1 and localhost) and a client
/// certificate, and an unrelated second CA with its own client certificate.
struct Pki {
    dir: TempDir,
}

fn write_ca(dir: &Path, name: &str) -> (Issuer<'static, KeyPair>, PathBuf) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("mpc test CA {name}"));
    let cert = params.self_signed(&key).expect("self-signed CA");
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, cert.pem()).expect("write CA");
    (Issuer::new(params, key), path)
}

fn write_leaf(dir: &Path, name: &str, issuer: &Issuer<'_, KeyPair>) {
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("mpc test {name}"));
    let cert = params.signed_by(&key, issuer).expect("sign leaf");
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write cert");
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write key");
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (ca, _) = write_ca(dir.path(), "ca");
        write_leaf(dir.path(), "server", &ca);
        write_leaf(dir.path(), "client", &ca);
        let (other, _) = write_ca(dir.path(), "other-ca");
        write_leaf(dir.path(), "stranger", &other);
        Pki { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }
}

fn program() -> String {
    common::program("add.garble.rs")
}

/// How long one process may run.
const EXIT: Duration = Duration::from_secs(60);

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// `mpc ARGS` with warnings only and the sessions' shared secret.
fn mpc(args: &[String]) -> Command {
    let mut cmd = common::mpc(args);
    cmd.env("MPC_LOG", "warn")
        .env("MPC_SECRET", "tls test secret");
    cmd
}

/// Runs `mpc ARGS` to its end.
fn run(name: &str, args: &[String]) -> Finished {
    Proc::spawn(name, mpc(args)).finish(EXIT)
}

/// `mpc serve` with TLS (mutual TLS with `client_ca`), once it accepts connections; its
/// URL is https.
fn serve(cert: &str, key: &str, client_ca: Option<&str>) -> Relay {
    let mut extra = vec!["--tls-cert", cert, "--tls-key", key];
    if let Some(ca) = client_ca {
        extra.extend(["--client-ca", ca]);
    }
    Relay::start(&extra)
}

/// `mpc serve` with certificate and key files it must refuse; what it left behind.
fn serve_refused(cert: &str, key: &str) -> Finished {
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ];
    run("relay", &strings(&args))
}

/// `mpc serve` with the PKI's server certificate (and its CA for clients with `client_ca`).
fn serve_pki(pki: &Pki, client_ca: bool) -> Relay {
    let ca = pki.path("ca.pem");
    serve(
        &pki.path("server.pem"),
        &pki.path("server.key"),
        client_ca.then_some(ca.as_str()),
    )
}

/// The arguments of party 0 of add.garble.rs (input 1) alone in `session` at `url`.
fn lone_party(url: &str, session: &str, extra: &[String]) -> Vec<String> {
    let mut args = strings(&[
        "party",
        url,
        "--session",
        session,
        "--program",
        &program(),
        "--party",
        "0",
        "--input",
        "1u32",
    ]);
    args.extend_from_slice(extra);
    args
}

/// Runs the dealer and 3 parties of add.garble.rs (inputs 1, 2, 3) with `connect` options
/// (relay URL or --peers, TLS flags per endpoint); returns each party's output.
fn compute(session: &str, connect: impl Fn(usize) -> Vec<String>) -> Vec<Finished> {
    let mut dealer_args = strings(&[
        "pre",
        "--session",
        session,
        "--parties",
        "3",
        "--timeout",
        "30",
        "-q",
    ]);
    dealer_args.extend(connect(3));
    let mut procs = vec![Proc::spawn("dealer", mpc(&dealer_args))];
    for party in 0..3 {
        let mut args = strings(&[
            "party",
            "--session",
            session,
            "--program",
            &program(),
            "--party",
            &party.to_string(),
            "--input",
            &format!("{}u32", party + 1),
            "--timeout",
            "30",
            "--dealer",
            "-q",
        ]);
        args.extend(connect(party));
        procs.push(Proc::spawn(format!("party {party}"), mpc(&args)));
    }
    let mut ended = finish_all(procs, EXIT);
    let dealt = ended.remove(0);
    assert!(dealt.code == Some(0), "the dealer failed: {}", dealt.stderr);
    ended
}

fn assert_computed(outputs: &[Finished]) {
    for (p, out) in outputs.iter().enumerate() {
        assert!(out.code == Some(0), "party {p} failed: {}", out.stderr);
        assert_eq!(out.stdout.trim(), "6", "party {p}");
    }
}

/// One party alone against the relay: it must fail at once (exit 1) with `stderr`.
fn refused(url: &str, extra: &[String]) -> String {
    let mut args = strings(&["--timeout", "20", "-q"]);
    args.extend_from_slice(extra);
    let started = Instant::now();
    let out = run("party 0", &lone_party(url, "refused", &args));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a TLS refusal must not wait for the timeout"
    );
    eprintln!("refused: {}", out.stderr.trim());
    out.stderr
}

#[test]
fn parties_and_dealer_compute_through_a_tls_relay_with_a_private_ca() {
    let pki = Pki::new();
    let relay = serve_pki(&pki, false);
    let url = relay.url.clone();
    let outputs = compute("tls", |_| {
        vec![url.clone(), "--ca-cert".into(), pki.path("ca.pem")]
    });
    assert_computed(&outputs);
}

#[test]
fn an_untrusted_relay_certificate_is_refused_with_a_clear_message() {
    let pki = Pki::new();
    let relay = serve_pki(&pki, false);
    let url = relay.url.clone();
    // The wrong CA.
    let err = refused(&url, &["--ca-cert".into(), pki.path("other-ca.pem")]);
    assert!(
        err.contains("the relay's certificate is not trusted") && err.contains("--ca-cert"),
        "{err}"
    );
    // No CA: the system's roots do not know the private CA either.
    let err = refused(&url, &[]);
    assert!(err.contains("certificate is not trusted"), "{err}");
}

#[test]
fn mutual_tls_admits_only_clients_with_a_certificate_from_the_ca() {
    let pki = Pki::new();
    let relay = serve_pki(&pki, true);
    let url = relay.url.clone();
    let ca = ["--ca-cert".to_string(), pki.path("ca.pem")];
    // No client certificate.
    let err = refused(&url, &ca);
    assert!(
        err.contains("requires a client certificate") && err.contains("--cert"),
        "{err}"
    );
    // A certificate from another CA.
    let mut stranger = ca.to_vec();
    stranger.extend([
        "--cert".into(),
        pki.path("stranger.pem"),
        "--key".into(),
        pki.path("stranger.key"),
    ]);
    let err = refused(&url, &stranger);
    assert!(
        err.contains("refused this endpoint's client certificate"),
        "{err}"
    );
    // A valid client certificate: the computation runs.
    let outputs = compute("mtls", |_| {
        vec![
            url.clone(),
            "--ca-cert".into(),
            pki.path("ca.pem"),
            "--cert".into(),
            pki.path("client.pem"),
            "--key".into(),
            pki.path("client.key"),
        ]
    });
    assert_computed(&outputs);
}

#[test]
fn direct_mode_over_mutual_tls() {
    let pki = Pki::new();
    let urls: Vec<String> = common::free_ports(4)
        .into_iter()
        .map(|port| format!("https://127.0.0.1:{port}"))
        .collect();
    let peers = urls.join(",");
    let outputs = compute("direct-tls", |_| {
        vec![
            "--peers".into(),
            peers.clone(),
            "--ca-cert".into(),
            pki.path("ca.pem"),
            // One certificate per endpoint would be usual; one shared here is enough.
            "--cert".into(),
            pki.path("server.pem"),
            "--key".into(),
            pki.path("server.key"),
            "--client-ca".into(),
            pki.path("ca.pem"),
        ]
    });
    assert_computed(&outputs);
}

#[test]
fn bad_tls_files_are_usage_errors() {
    let pki = Pki::new();
    let missing = pki.path("missing.pem");
    let out = run(
        "party 0",
        &lone_party(
            "https://127.0.0.1:9",
            "x",
            &["--ca-cert".into(), missing.clone()],
        ),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains(&missing), "{}", out.stderr);
    // A key that is not a key.
    let out = serve_refused(&pki.path("server.pem"), &pki.path("server.pem"));
    assert!(out.code != Some(0));
    assert!(out.stderr.contains("private key"), "{}", out.stderr);
}

/// `mpc cert` makes everything a TLS relay with mutual TLS needs, and the parties and the
/// dealer compute through it; a second run reuses the CA and adds a client.
#[test]
fn mpc_cert_makes_a_working_private_ca_relay_and_client_certificates() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out_dir = dir.path().join("pki");
    let path = |file: &str| out_dir.join(file).display().to_string();
    let out = out_dir.display().to_string();
    let made = run(
        "cert",
        &strings(&[
            "cert",
            "--out",
            &out,
            "--host",
            "127.0.0.1",
            "--host",
            "localhost",
            "--client",
            "parties",
        ]),
    );
    assert!(made.code == Some(0), "{}", made.stderr);
    assert!(made.stderr.contains("--tls-cert"), "{}", made.stderr);
    #[cfg(unix)]
    for key in ["ca.key", "relay.key", "client-parties.key"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path(key))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{key} must be readable by its owner only"
        );
    }

    let relay = serve(
        &path("relay.pem"),
        &path("relay.key"),
        Some(&path("ca.pem")),
    );
    let url = relay.url.clone();
    let outputs = compute("mpc-cert", |_| {
        vec![
            url.clone(),
            "--ca-cert".into(),
            path("ca.pem"),
            "--cert".into(),
            path("client-parties.pem"),
            "--key".into(),
            path("client-parties.key"),
        ]
    });
    assert_computed(&outputs);

    // Again on the same folder: the CA stays, existing files are not replaced.
    let ca_before = std::fs::read(path("ca.pem")).expect("ca.pem");
    let again = run(
        "cert",
        &strings(&["cert", "--out", &out, "--client", "late"]),
    );
    assert!(again.code == Some(0), "{}", again.stderr);
    assert_eq!(std::fs::read(path("ca.pem")).expect("ca.pem"), ca_before);
    let late = refused_or_computed_with(
        &url,
        &path("ca.pem"),
        &path("client-late.pem"),
        &path("client-late.key"),
    );
    assert!(
        late,
        "a client certificate issued later by the same CA is admitted"
    );
    let clash = run(
        "cert",
        &strings(&["cert", "--out", &out, "--host", "127.0.0.1"]),
    );
    assert_eq!(clash.code, Some(2), "{}", clash.stderr);
    assert!(clash.stderr.contains("--force"), "{}", clash.stderr);
}

/// One party with a client certificate against a mutual-TLS relay: whether it got past TLS
/// (it then waits for its peers, so it is stopped by its short timeout with exit 1 and a
/// message about the other parties, not about TLS).
fn refused_or_computed_with(url: &str, ca: &str, cert: &str, key: &str) -> bool {
    let tls = strings(&[
        "--timeout",
        "2s",
        "--ca-cert",
        ca,
        "--cert",
        cert,
        "--key",
        key,
    ]);
    let out = run("party 0", &lone_party(url, "late-client", &tls));
    let stderr = out.stderr;
    eprintln!("late client: {}", stderr.trim());
    stderr.contains("1/3 parties joined") && !stderr.to_lowercase().contains("certificate")
}

/// The quick self-signed certificate people make first (a CA certificate) is refused when
/// the relay starts, with a message that says why and names `mpc cert`.
#[test]
fn a_ca_certificate_as_the_relay_certificate_is_refused_naming_mpc_cert() {
    let pki = Pki::new();
    let out = serve_refused(&pki.path("ca.pem"), &pki.path("server.key"));
    let stderr = out.stderr;
    assert!(out.code != Some(0), "{stderr}");
    assert!(stderr.contains("is a CA certificate"), "{stderr}");
    assert!(stderr.contains("mpc cert"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}
