#!/usr/bin/env bash
# Load figures for `mpc serve`: N concurrent two-party sessions (examples/relay_load.rs, the
# real relay client) against one relay, for the memory store and for Redis. Prints, per
# store: sessions per second, per-session latency (median, p99) and the relay's peak RSS.
#
# Usage: scripts/relay_load.sh [SESSIONS] [ROUNDS] [SIZE]
#   SESSIONS concurrent sessions (default 200), ROUNDS messages each way per session
#   (default 20), SIZE bytes per message (default 1024). Needs redis-server for the Redis
#   row (skipped with a note when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

sessions=${1:-200}
rounds=${2:-20}
size=${3:-1024}

cargo build --release --quiet --bin mpc --example relay_load
mpc=target/release/mpc
load=target/release/examples/relay_load
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_one NAME STORE: starts a relay with --store STORE, runs the load, prints a table row.
run_one() {
    local name=$1 store=$2 port
    port=$(free_port)
    RUST_LOG=warn "$mpc" serve --listen "127.0.0.1:$port" --store "$store" \
        --max-connections 4096 2>"$work/relay-$name.log" &
    local relay=$!
    pids+=("$relay")
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
    local out
    out=$("$load" "http://127.0.0.1:$port" "$sessions" "$rounds" "$size")
    local rss
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$relay/status")
    kill "$relay"
    wait "$relay" 2>/dev/null || true
    awk -v n="$name" -v o="$out" -v r="$rss" 'BEGIN { printf "%-8s %s relay_peak_rss_mib=%.1f\n", n, o, r / 1024 }'
}

echo "# $sessions concurrent sessions x 2 parties, $rounds messages of $size bytes each way"
run_one memory memory
if command -v redis-server >/dev/null 2>&1; then
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$work" >"$work/redis.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 100); do
        redis-cli -p "$rport" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    run_one redis "redis://127.0.0.1:$rport/0"
else
    echo "redis    skipped: redis-server is not installed"
fi
