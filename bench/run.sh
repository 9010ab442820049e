#!/usr/bin/env bash
# One command for the benchmark suite: installs the tools it needs, builds the
# release binary and runs every measurement against nginx (see bench/bench.py
# for the knobs; e.g. `DURATION=3 ROUNDS=1 ONLY=small,zip bench/run.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in nginx:nginx wrk:wrk curl:curl python3:python3; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if ((${#missing[@]})); then
    echo "[bench] installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v go >/dev/null 2>&1 || { echo "[bench] the go command is needed (https://go.dev/dl)" >&2; exit 1; }

target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet
export BIN="${BIN:-$target/release/goproxy}"
exec python3 bench/bench.py
