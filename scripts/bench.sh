#!/usr/bin/env bash
# Throughput benchmarks: prints figures per case (never asserts timings).
# Usage: scripts/bench.sh        (BENCH_REPEAT=N to change the number of runs per case)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec python3 scripts/bench.py "$@"
