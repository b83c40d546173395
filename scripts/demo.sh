#!/usr/bin/env bash
# demo.sh: one authenticated secure computation on this machine. Gives three parties a key
# each (`mpc keygen`) and a roster listing them, starts a relay on a free loopback port and
# the three parties of programs/add.garble.rs (private inputs 1, 2 and 3), and prints the
# result they compute together: 6. Every party proves its roster key to the others; nobody
# needs a trusted dealer. Progress goes to stderr, the result to stdout.
set -euo pipefail

cd "$(dirname "$0")/.."

log() { echo "demo: $*" >&2; }

log "building mpc (cargo build --release)"
# Ask cargo where the binary is: CARGO_TARGET_DIR or a config may put it anywhere.
mpc=$(cargo build --release --quiet --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\/mpc\)".*/\1/p' | tail -n 1)
if [ -z "$mpc" ] || [ ! -x "$mpc" ]; then
    log "cargo did not report where it built mpc"
    exit 1
fi

work=$(mktemp -d)
session="demo-$$"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# The relay listens on a free loopback port (port 0) and says which one on stderr.
log "starting the relay"
: >"$work/relay.log"
"$mpc" serve --listen 127.0.0.1:0 2>"$work/relay.log" &
pids+=($!)
url=""
for _ in $(seq 100); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$work/relay.log" | cut -d' ' -f3 || true)
    if [ -n "$url" ]; then break; fi
    if ! kill -0 "${pids[0]}" 2>/dev/null; then
        cat "$work/relay.log" >&2
        log "the relay did not start"
        exit 1
    fi
    sleep 0.1
done
if [ -z "$url" ]; then
    log "the relay did not report its address"
    exit 1
fi
log "relay listening on $url"

# One key pair per party; the roster (seat, public key) is what they agree on beforehand.
log "creating a key for each party and the roster"
for i in 0 1 2; do
    echo "$i $("$mpc" keygen "$work/party$i.key" 2>/dev/null)" >>"$work/roster.txt"
done

log "starting parties 0, 1, 2 of session '$session'"
program=programs/add.garble.rs
party_pids=()
for i in 0 1 2; do
    # Party 0 shows its progress and log; the others would only repeat it.
    quiet=() log_level=info
    if [ "$i" -ne 0 ]; then quiet=(--quiet) log_level=error; fi
    MPC_LOG=$log_level "$mpc" party "$url" --session "$session" --program "$program" --timeout 60 \
        --roster "$work/roster.txt" --identity "$work/party$i.key" \
        --party "$i" --input "$((i + 1))u32" "${quiet[@]}" >"$work/result.$i" &
    party_pids+=($!)
    pids+=($!)
done

failed=0
for pid in "${party_pids[@]}"; do wait "$pid" || failed=1; done
if [ "$failed" -ne 0 ]; then
    log "a party failed (see above)"
    exit 1
fi

# Every party learns the same result; print it once.
result=$(cat "$work/result.0")
for i in 1 2; do
    if [ "$(cat "$work/result.$i")" != "$result" ]; then
        log "the parties disagree: party 0 got '$result', party $i '$(cat "$work/result.$i")'"
        exit 1
    fi
done
log "every party computed 1 + 2 + 3 without seeing the others' inputs:"
echo "$result"
