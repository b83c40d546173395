//! TLS: `mpc serve --tls-cert/--tls-key` with a private CA (made here with rcgen, files in a
//! temporary directory), clients with `--ca-cert`, mutual TLS with `--client-ca` and
//! `--cert/--key`, and direct mode over TLS. Everything runs as `mpc` processes on loopback.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tempfile::TempDir;

const MPC: &str = env!("CARGO_BIN_EXE_mpc");

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
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("programs/add.garble.rs")
        .display()
        .to_string()
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[String]) -> Child {
    Command::new(MPC)
        .args(args)
        .env("MPC_LOG", "warn")
        .env("MPC_SECRET", "tls test secret")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mpc")
}

/// `mpc serve` with TLS on a free port; returns its https URL once it accepts connections.
fn serve(pki: &Pki, client_ca: bool) -> (Running, String) {
    let port = common::free_port();
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--tls-cert",
        &pki.path("server.pem"),
        "--tls-key",
        &pki.path("server.key"),
    ]
    .map(String::from)
    .to_vec();
    if client_ca {
        args.extend(["--client-ca".to_string(), pki.path("ca.pem")]);
    }
    let child = Running(spawn(&args));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the relay did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, format!("https://127.0.0.1:{port}"))
}

fn finish(child: Child) -> Output {
    child.wait_with_output().expect("wait for mpc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the dealer and 3 parties of add.garble.rs (inputs 1, 2, 3) with `connect` options
/// (relay URL or --peers, TLS flags per endpoint); returns each party's output.
fn compute(session: &str, connect: impl Fn(usize) -> Vec<String>) -> Vec<Output> {
    let mut children = Vec::new();
    let mut dealer_args: Vec<String> = ["pre", "--session", session, "--parties", "3"]
        .map(String::from)
        .to_vec();
    dealer_args.extend(["--timeout".into(), "30".into(), "-q".into()]);
    dealer_args.extend(connect(3));
    let dealer = spawn(&dealer_args);
    for party in 0..3 {
        let mut args: Vec<String> = [
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
        ]
        .map(String::from)
        .to_vec();
        args.extend(connect(party));
        children.push(spawn(&args));
    }
    let outputs: Vec<Output> = children.into_iter().map(finish).collect();
    let dealt = finish(dealer);
    assert!(
        dealt.status.success(),
        "the dealer failed: {}",
        text(&dealt.stderr)
    );
    outputs
}

fn assert_computed(outputs: &[Output]) {
    for (p, out) in outputs.iter().enumerate() {
        assert!(
            out.status.success(),
            "party {p} failed: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout).trim(), "6", "party {p}");
    }
}

/// One party alone against the relay: it must fail at once (exit 1) with `stderr`.
fn refused(url: &str, extra: &[String]) -> String {
    let mut args: Vec<String> = [
        "party",
        url,
        "--session",
        "refused",
        "--program",
        &program(),
        "--party",
        "0",
        "--input",
        "1u32",
        "--timeout",
        "20",
        "-q",
    ]
    .map(String::from)
    .to_vec();
    args.extend_from_slice(extra);
    let started = Instant::now();
    let out = finish(spawn(&args));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a TLS refusal must not wait for the timeout"
    );
    eprintln!("refused: {}", text(&out.stderr).trim());
    text(&out.stderr)
}

#[test]
fn parties_and_dealer_compute_through_a_tls_relay_with_a_private_ca() {
    let pki = Pki::new();
    let (_relay, url) = serve(&pki, false);
    let outputs = compute("tls", |_| {
        vec![url.clone(), "--ca-cert".into(), pki.path("ca.pem")]
    });
    assert_computed(&outputs);
}

#[test]
fn an_untrusted_relay_certificate_is_refused_with_a_clear_message() {
    let pki = Pki::new();
    let (_relay, url) = serve(&pki, false);
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
    let (_relay, url) = serve(&pki, true);
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
    let out = finish(spawn(&[
        "party".into(),
        "https://127.0.0.1:9".into(),
        "--session".into(),
        "x".into(),
        "--program".into(),
        program(),
        "--party".into(),
        "0".into(),
        "--input".into(),
        "1u32".into(),
        "--ca-cert".into(),
        missing.clone(),
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&missing),
        "{}",
        text(&out.stderr)
    );
    // A key that is not a key.
    let out = finish(spawn(&[
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        pki.path("server.pem"),
        "--tls-key".into(),
        pki.path("server.pem"),
    ]));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("private key"),
        "{}",
        text(&out.stderr)
    );
}

/// `mpc cert` makes everything a TLS relay with mutual TLS needs, and the parties and the
/// dealer compute through it; a second run reuses the CA and adds a client.
#[test]
fn mpc_cert_makes_a_working_private_ca_relay_and_client_certificates() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out_dir = dir.path().join("pki");
    let path = |file: &str| out_dir.join(file).display().to_string();
    let made = finish(spawn(&[
        "cert".into(),
        "--out".into(),
        out_dir.display().to_string(),
        "--host".into(),
        "127.0.0.1".into(),
        "--host".into(),
        "localhost".into(),
        "--client".into(),
        "parties".into(),
    ]));
    assert!(made.status.success(), "{}", text(&made.stderr));
    assert!(
        text(&made.stderr).contains("--tls-cert"),
        "{}",
        text(&made.stderr)
    );
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

    let port = common::free_port();
    let _relay = Running(spawn(&[
        "serve".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--tls-cert".into(),
        path("relay.pem"),
        "--tls-key".into(),
        path("relay.key"),
        "--client-ca".into(),
        path("ca.pem"),
    ]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the relay did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("https://127.0.0.1:{port}");
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
    let again = finish(spawn(&[
        "cert".into(),
        "--out".into(),
        out_dir.display().to_string(),
        "--client".into(),
        "late".into(),
    ]));
    assert!(again.status.success(), "{}", text(&again.stderr));
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
    let clash = finish(spawn(&[
        "cert".into(),
        "--out".into(),
        out_dir.display().to_string(),
        "--host".into(),
        "127.0.0.1".into(),
    ]));
    assert_eq!(clash.status.code(), Some(2), "{}", text(&clash.stderr));
    assert!(
        text(&clash.stderr).contains("--force"),
        "{}",
        text(&clash.stderr)
    );
}

/// One party with a client certificate against a mutual-TLS relay: whether it got past TLS
/// (it then waits for its peers, so it is stopped by its short timeout with exit 1 and a
/// message about the other parties, not about TLS).
fn refused_or_computed_with(url: &str, ca: &str, cert: &str, key: &str) -> bool {
    let out = finish(spawn(&[
        "party".into(),
        url.into(),
        "--session".into(),
        "late-client".into(),
        "--program".into(),
        program(),
        "--party".into(),
        "0".into(),
        "--input".into(),
        "1u32".into(),
        "--timeout".into(),
        "2s".into(),
        "--ca-cert".into(),
        ca.into(),
        "--cert".into(),
        cert.into(),
        "--key".into(),
        key.into(),
    ]));
    let stderr = text(&out.stderr);
    eprintln!("late client: {}", stderr.trim());
    stderr.contains("1/3 parties joined") && !stderr.to_lowercase().contains("certificate")
}

/// The quick self-signed certificate people make first (a CA certificate) is refused when
/// the relay starts, with a message that says why and names `mpc cert`.
#[test]
fn a_ca_certificate_as_the_relay_certificate_is_refused_naming_mpc_cert() {
    let pki = Pki::new();
    let out = finish(spawn(&[
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        pki.path("ca.pem"),
        "--tls-key".into(),
        pki.path("server.key"),
    ]));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is a CA certificate"), "{stderr}");
    assert!(stderr.contains("mpc cert"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}
