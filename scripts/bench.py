#!/usr/bin/env python3
"""Throughput benchmarks for mpc (run through scripts/bench.sh).

The Bristol Fashion circuits are exported from programs/aes128.garble.rs and
programs/sha256.garble.rs into a temporary directory (`mpc check --bristol-out`); the binary
is $CARGO_TARGET_DIR/release/mpc (target/release/mpc by default).

Prints, per case (2 and 3 parties, with and without a dealer): the median over BENCH_REPEAT
runs of the protocol time, AND gates per second, bytes sent per AND gate by each party and
peak RSS per party, over the in-memory channel (`mpc run`, all parties in one process) and
through the relay on loopback (`mpc serve` + `mpc pre` + one `mpc party` process per party).
BENCH_HUGE=1 adds a ~10M-AND case (memory stays flat as circuits grow). Figures only:
nothing here asserts a timing. On a shared machine take the medians of several runs.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.abspath(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"))
MPC = os.path.join(TARGET, "release", "mpc")
PROGRAMS = os.path.join(ROOT, "programs")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
# BENCH_ONLY=AES,SHA runs only the cases whose name contains one of these words.
ONLY = [w for w in os.environ.get("BENCH_ONLY", "").split(",") if w]
# BENCH_DEALER=without (or with) runs only the cases without (with) a dealer.
DEALER = {"with": (True,), "without": (False,)}.get(os.environ.get("BENCH_DEALER", ""), (True, False))


def export_bristol(program, path):
    """Writes the Bristol Fashion circuit of a Garble program (`mpc check --bristol-out`)."""
    subprocess.run([MPC, "check", program, "--bristol-out", path], capture_output=True, check=True)


def aes3_circuit(aes_128, path):
    """A 3-party AES-128 made from the exported 2-party circuit at bench time: parties 0 and
    1 hold XOR shares of the key, party 2 the plaintext (128 XOR gates in front)."""
    with open(aes_128) as f:
        lines = [l.split() for l in f if l.strip()]
    ngates, nwires = int(lines[0][0]), int(lines[0][1])
    out = [f"{ngates + 128} {nwires + 256}", "3 128 128 128", " ".join(lines[2])]

    def remap(w):
        w = int(w)
        if w < 128:
            return 384 + w  # key bit = share A ^ share B
        if w < 256:
            return w + 128  # plaintext moves after the two key shares
        return w + 256

    for i in range(128):
        out.append(f"2 1 {i} {128 + i} {384 + i} XOR")
    for g in lines[3:]:
        nin, nout = int(g[0]), int(g[1])
        wires = [str(remap(w)) for w in g[2:2 + nin + nout]]
        out.append(" ".join(g[:2] + wires + g[2 + nin + nout:]))
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def protocol_secs(stats):
    return sum(p["secs"] for p in stats["phases"] if p["phase"] != "total")


def median(values):
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def report(name, mode, n, dealer, runs):
    """One line per case: medians over the runs of the protocol time, AND/s, bytes sent per
    AND by each party and peak RSS of each party."""
    secs = median([r["secs"] for r in runs])
    ands = runs[0]["ands"]
    per_and = [median([r["sent"][p] for r in runs]) / max(ands, 1) for p in range(n)]
    rss = [median([r["rss"][p] for r in runs]) for p in range(n)]
    rss_note = "" if mode == "relay" else " (process/n)"
    print(
        f"{name:<28} {mode:<6} {n}p {'dealer' if dealer else 'OT':<6} "
        f"{secs * 1000:9.1f} ms {ands / secs:11,.0f} AND/s  "
        f"B/AND/party {'/'.join(f'{b:.0f}' for b in per_and):<11} "
        f"RSS/party {'/'.join(f'{b / 2**20:.0f}' for b in rss)} MiB{rss_note}",
        flush=True,
    )


def run_memory(name, program, inputs, dealer):
    """All parties in one process over the in-memory channel (`mpc run`)."""
    runs = []
    n = len(inputs)
    for _ in range(REPEAT):
        args = [MPC, "run", program, "--format", "json"]
        if not dealer:
            args.append("--no-dealer")
        for i in inputs:
            args += ["--input", i]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        res = json.loads(out)
        stats = res["stats"]
        runs.append({
            "secs": protocol_secs(stats),
            "ands": stats["and_gates"],
            "sent": res["bytes_sent_per_party"],
            # One process holds every party: its peak divided among them.
            "rss": [stats["peak_rss_bytes"] / n] * n,
        })
    report(name, "memory", n, dealer, runs)


def run_relay(name, program, inputs, relay_url, dealer=True):
    """One `mpc party` process per party (and `mpc pre` for the dealer) through the relay."""
    runs = []
    n = len(inputs)
    for r in range(REPEAT):
        session = f"bench-{name}-{r}-{time.time_ns()}"
        procs = []
        if dealer:
            procs.append(subprocess.Popen([MPC, "pre", relay_url, "--session", session, "--parties", str(n), "--quiet"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for i, lit in enumerate(inputs):
            procs.append(subprocess.Popen(
                [MPC, "party", relay_url, "--session", session, "--program", program,
                 "--party", str(i), "--input", lit, "--format", "json", "--quiet",
                 "--dealer" if dealer else "--no-dealer"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        results = []
        for p in procs:
            out, err = p.communicate(timeout=1800)
            if p.returncode != 0:
                sys.exit(f"{name}: process failed ({p.returncode}): {err}")
            if out and out.strip():
                results.append(json.loads(out))
        results.sort(key=lambda r: r["party"])
        runs.append({
            "secs": max(protocol_secs(r["stats"]) for r in results),
            "ands": results[0]["stats"]["and_gates"],
            "sent": [r["stats"]["bytes_sent"] for r in results],
            "rss": [r["stats"]["peak_rss_bytes"] for r in results],
        })
    report(name, "relay", n, dealer, runs)


def huge_program(tmp, columns):
    """big.garble.rs with `columns` terms per dot product (32 columns: ~1.07M AND gates; 300:
    ~10M), to show that per-party memory does not grow with the circuit."""
    with open(os.path.join(PROGRAMS, "big.garble.rs")) as f:
        src = f.read()
    path = os.path.join(tmp, f"big{columns}.garble.rs")
    with open(path, "w") as f:
        f.write(src.replace("[[u16; 32]; 32], vector: [u16; 32]",
                            f"[[u16; {columns}]; 32], vector: [u16; {columns}]"))
    return path


def main():
    with tempfile.TemporaryDirectory(prefix="mpc-bench-") as tmp:
        bench(tmp)


def garble_list(values, suffix):
    return "[" + ", ".join(f"{v}{suffix}" for v in values) + "]"


def bench(tmp):
    # The Bristol circuits are exported from the Garble programs at bench time.
    aes2 = os.path.join(tmp, "aes_128.txt")
    sha = os.path.join(tmp, "sha256.txt")
    export_bristol(os.path.join(PROGRAMS, "aes128.garble.rs"), aes2)
    export_bristol(os.path.join(PROGRAMS, "sha256.garble.rs"), sha)
    aes3 = os.path.join(tmp, "aes_128_3party.txt")
    aes3_circuit(aes2, aes3)
    key = "000102030405060708090a0b0c0d0e0f"
    pt = "00112233445566778899aabbccddeeff"
    iv = "6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19"
    block = "80" + "0" * 126
    garble_key, garble_pt = garble_list(bytes.fromhex(key), "u8"), garble_list(bytes.fromhex(pt), "u8")
    garble_block = garble_list([int(block[i:i + 8], 16) for i in range(0, 128, 8)], "u32")
    garble_iv = garble_list([int(iv[i:i + 8], 16) for i in range(0, 64, 8)], "u32")
    matrix, vec = "[[3u16; 32]; 32]", "[5u16; 32]"
    cases = [
        ("AES-128 (Garble)", os.path.join(PROGRAMS, "aes128.garble.rs"), [garble_key, garble_pt]),
        ("AES-128 (exported Bristol)", aes2, [key, pt]),
        ("AES-128 (Bristol, 3 parties)", aes3, [key, "0" * 32, pt]),
        ("SHA-256 (Garble)", os.path.join(PROGRAMS, "sha256.garble.rs"), [garble_block, garble_iv]),
        ("SHA-256 (exported Bristol)", sha, [block, iv]),
        ("big.garble.rs (~1M AND)", os.path.join(PROGRAMS, "big.garble.rs"), [matrix, vec]),
        ("big3.garble.rs (~1M AND)", os.path.join(PROGRAMS, "big3.garble.rs"), [matrix, vec, "[1u16; 32]"]),
    ]
    if os.environ.get("BENCH_HUGE"):
        cases.append(("big300 (~10M AND)", huge_program(tmp, 300),
                      ["[[3u16; 300]; 32]", "[5u16; 300]"]))
    if ONLY:
        cases = [c for c in cases if any(w in c[0] for w in ONLY)]
    # Warm the compile cache so no case measures compilation.
    for _, program, _ in cases:
        subprocess.run([MPC, "check", program], capture_output=True, check=True)
    print(f"mpc benchmarks: medians of {REPEAT} runs per case; protocol time = handshake to output;")
    print("B/AND/party = bytes each party sent per AND gate; RSS/party = peak resident memory of")
    print("each party's process (memory: one process for all parties, divided by n); "
          f"{os.cpu_count()} cores")
    for dealer in DEALER:
        for name, program, inputs in cases:
            run_memory(name, program, inputs, dealer)
    port = free_port()
    relay = subprocess.Popen([MPC, "serve", "--listen", f"127.0.0.1:{port}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        for dealer in DEALER:
            for name, program, inputs in cases:
                run_relay(name, program, inputs, url, dealer)
        if not ONLY:
            run_relay("add.garble.rs", os.path.join(PROGRAMS, "add.garble.rs"),
                      ["1u32", "2u32", "3u32"], url)
    finally:
        relay.terminate()
        relay.wait()
    # The 3-party add with every process, the relay included.
    if ONLY or not os.path.exists(os.path.join(ROOT, "scripts", "demo.sh")):
        return
    start = time.monotonic()
    out = subprocess.run([os.path.join(ROOT, "scripts", "demo.sh")], capture_output=True, text=True)
    wall = time.monotonic() - start
    print(f"{'demo.sh (3-party add, all processes incl. relay)':<50} {wall*1000:.0f} ms  result {out.stdout.strip()!r}")


if __name__ == "__main__":
    main()
