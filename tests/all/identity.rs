//! Identities, end to end: `mpc keygen`, a roster, and real `mpc` processes on loopback. The
//! honest parties compute; a participant that cannot prove the key the roster gives its seat
//! (an impostor party, a dealer with another key) makes every honest party exit 1 naming
//! that seat, never compute with it.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Finished, Proc, Relay, dealer, finish_all, party, program, warm};

const RUN: Duration = Duration::from_secs(60);

/// A temporary folder with one key pair per seat and the roster listing them.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    /// `mpc keygen` for every seat (`0` … `parties-1`, `dealer`), through the real binary.
    fn new(parties: usize) -> Keys {
        let keys = Keys {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let mut roster = String::from("# seat  public key\n");
        let seats: Vec<String> = (0..parties)
            .map(|i| i.to_string())
            .chain(["dealer".to_string()])
            .collect();
        for seat in &seats {
            let public = keys.keygen(&format!("seat-{seat}.key"));
            roster.push_str(&format!("{seat} {public}\n"));
        }
        std::fs::write(keys.roster(), roster).expect("write the roster");
        keys
    }

    /// Runs `mpc keygen FILE` in the folder and returns the public key it printed.
    fn keygen(&self, file: &str) -> String {
        let path = self.path(file);
        let done = Proc::run(
            "keygen",
            &["keygen", path.to_str().expect("utf-8 path")],
            Duration::from_secs(10),
        );
        assert_eq!(done.code, Some(0), "{done}");
        let lines: Vec<&str> = done.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "keygen prints one line on stdout\n{done}");
        lines[0].to_string()
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn roster(&self) -> PathBuf {
        self.path("roster.txt")
    }

    fn key(&self, seat: &str) -> PathBuf {
        self.path(&format!("seat-{seat}.key"))
    }

    /// `--roster ROSTER --identity KEY` for `seat`, as owned strings.
    fn args(&self, seat: &str) -> Vec<String> {
        vec![
            "--roster".into(),
            self.roster().display().to_string(),
            "--identity".into(),
            self.key(seat).display().to_string(),
        ]
    }

    /// A roster in which `seat`'s key is replaced by the public key of `file`.
    fn forged_roster(&self, seat: &str, public: &str) -> PathBuf {
        let honest = std::fs::read_to_string(self.roster()).expect("roster");
        let forged: String = honest
            .lines()
            .map(|line| {
                if line.split_whitespace().next() == Some(seat) {
                    format!("{seat} {public}\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        let path = self.path(&format!("forged-{seat}.txt"));
        std::fs::write(&path, forged).expect("write the forged roster");
        path
    }
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn add() -> String {
    let add = program("add.garble.rs");
    warm(&add);
    add
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn keygen_writes_a_private_key_and_prints_the_public_one() {
    let keys = Keys::new(2);
    let public = keys.keygen("alice.key");
    assert_eq!(public.len(), 44, "a base64 X25519 key: {public}");
    let file = std::fs::read_to_string(keys.path("alice.key.pub")).expect("FILE.pub");
    assert_eq!(file.trim(), public);
    assert_eq!(mode_of(&keys.path("alice.key")), 0o600);
    // No silent overwrite of an identity.
    let again = Proc::run(
        "keygen again",
        &["keygen", keys.path("alice.key").to_str().expect("path")],
        Duration::from_secs(10),
    );
    again.assert_failed(2);
    again.assert_stderr_has(&["already exists", "--force"]);
}

#[test]
fn a_rostered_session_computes_with_and_without_a_dealer() {
    let add = add();
    let keys = Keys::new(3);
    let relay = Relay::start(&[]);
    for (session, dealer_flag) in [
        ("rostered-dealer", "--dealer"),
        ("rostered-ot", "--no-dealer"),
    ] {
        let mut procs = Vec::new();
        if dealer_flag == "--dealer" {
            procs.push(dealer(&relay.url, session, 3, &refs(&keys.args("dealer"))));
        }
        for i in 0..3 {
            let mut extra = keys.args(&i.to_string());
            extra.push(dealer_flag.into());
            let input = format!("{}u32", i + 1);
            procs.push(party(&relay.url, session, &add, i, &input, &refs(&extra)));
        }
        let done = finish_all(procs, RUN);
        for finished in &done {
            if finished.name.starts_with("dealer") {
                assert_eq!(finished.code, Some(0), "{finished}");
                continue;
            }
            finished.assert_result("6");
            assert!(
                !finished.stderr.contains("not authenticated"),
                "a rostered party does not warn about missing authentication\n{finished}"
            );
        }
    }
}

#[test]
fn an_impostor_in_seat_0_makes_the_others_exit_1_naming_party_0() {
    let add = add();
    let keys = Keys::new(3);
    // The impostor has its own key and, to get past its own start-up check, a roster that
    // lists that key for seat 0.
    let impostor_key = keys.keygen("impostor.key");
    let forged = keys.forged_roster("0", &impostor_key);
    let relay = Relay::start(&[]);
    let session = "impostor";
    let impostor_args = vec![
        "--roster".to_string(),
        forged.display().to_string(),
        "--identity".into(),
        keys.path("impostor.key").display().to_string(),
        "--no-dealer".into(),
        "--timeout".into(),
        "20".into(),
    ];
    let mut procs = vec![party(
        &relay.url,
        session,
        &add,
        0,
        "100u32",
        &refs(&impostor_args),
    )];
    for i in 1..3 {
        let mut extra = keys.args(&i.to_string());
        extra.extend(["--no-dealer".into(), "--timeout".into(), "20".into()]);
        let input = format!("{}u32", i + 1);
        procs.push(party(&relay.url, session, &add, i, &input, &refs(&extra)));
    }
    let done = finish_all(procs, RUN);
    for honest in &done[1..] {
        honest.assert_failed(1);
        honest.assert_stderr_has(&["party 0 did not prove the identity the roster gives it"]);
    }
}

#[test]
fn a_dealer_whose_key_is_not_the_roster_s_is_refused_by_every_party() {
    let add = add();
    let keys = Keys::new(3);
    let rogue_key = keys.keygen("rogue-dealer.key");
    let forged = keys.forged_roster("dealer", &rogue_key);
    let relay = Relay::start(&[]);
    let session = "rogue-dealer";
    let rogue_args = vec![
        "--roster".to_string(),
        forged.display().to_string(),
        "--identity".into(),
        keys.path("rogue-dealer.key").display().to_string(),
        "--timeout".into(),
        "20".into(),
    ];
    let mut procs = vec![dealer(&relay.url, session, 3, &refs(&rogue_args))];
    for i in 0..3 {
        let mut extra = keys.args(&i.to_string());
        extra.extend(["--dealer".into(), "--timeout".into(), "20".into()]);
        let input = format!("{}u32", i + 1);
        procs.push(party(&relay.url, session, &add, i, &input, &refs(&extra)));
    }
    let done = finish_all(procs, RUN);
    for honest in &done[1..] {
        honest.assert_failed(1);
        honest.assert_stderr_has(&["the dealer did not prove the identity the roster gives it"]);
    }
    assert_eq!(done[0].code, Some(1), "{}", done[0]);
}

#[test]
fn identity_mistakes_are_usage_errors_before_joining() {
    let add = add();
    let keys = Keys::new(3);
    // An address where nothing listens: these runs must stop before any network.
    let url = format!("http://127.0.0.1:{}", common::free_port());
    let run = |extra: Vec<String>| -> Finished {
        let mut args: Vec<String> = [
            "party",
            url.as_str(),
            "--session",
            "s",
            "--program",
            add.as_str(),
            "--party",
            "0",
            "--input",
            "1u32",
            "--timeout",
            "5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra);
        Proc::spawn("party", common::mpc(&args)).finish(Duration::from_secs(20))
    };
    // Party 0 with party 1's key.
    let done = run(keys.args("1"));
    done.assert_failed(2);
    done.assert_stderr_has(&["seat 0 belongs to the key", "--identity holds the key"]);
    // A roster without an identity.
    let done = run(vec!["--roster".into(), keys.roster().display().to_string()]);
    done.assert_failed(2);
    done.assert_stderr_has(&["--identity"]);
    // A secret key others can read.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(keys.key("0"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let done = run(keys.args("0"));
    done.assert_failed(2);
    done.assert_stderr_has(&["readable by others", "chmod 600"]);
    // With --dealer, the roster must list the dealer: this one does, so take it out.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(keys.key("0"), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    let roster = std::fs::read_to_string(keys.roster()).expect("roster");
    let without: String = roster
        .lines()
        .filter(|l| !l.starts_with("dealer"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(keys.roster(), without).expect("write");
    let mut extra = keys.args("0");
    extra.push("--dealer".into());
    let done = run(extra);
    done.assert_failed(2);
    done.assert_stderr_has(&["no `dealer` line"]);
}

#[test]
fn without_a_roster_each_participant_says_once_that_nobody_is_authenticated() {
    let add = add();
    let relay = Relay::start(&[]);
    let procs = (0..3)
        .map(|i| {
            let input = format!("{}u32", i + 1);
            party(&relay.url, "anonymous", &add, i, &input, &["--no-dealer"])
        })
        .collect();
    for finished in finish_all(procs, RUN) {
        finished.assert_result("6");
        assert_eq!(
            finished
                .stderr
                .matches("participants are not authenticated")
                .count(),
            1,
            "{finished}"
        );
        finished.assert_stderr_has(&["could take a seat", "--roster"]);
    }
}
