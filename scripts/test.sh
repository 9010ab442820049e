#!/usr/bin/env bash
# Runs every check and test of the project: formatting, lints, unit, integration
# and end-to-end tests (the last ones drive the real `go` command).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="$PATH:/usr/local/go/bin"
  else
    echo "go not found: installing Debian's golang-go for the end-to-end tests" >&2
    apt-get update -qq && apt-get install -y -qq golang-go >/dev/null
  fi
fi
go version

# The progress tests run the binary in a real terminal.
if ! command -v tmux >/dev/null 2>&1; then
  echo "tmux not found: installing it for the terminal progress tests" >&2
  apt-get update -qq && apt-get install -y -qq tmux >/dev/null
fi

# The outbound proxy tests run a real HTTP proxy with basic auth.
if ! command -v tinyproxy >/dev/null 2>&1 && [ ! -x /usr/bin/tinyproxy ]; then
  echo "tinyproxy not found: installing Debian's tinyproxy for the proxy tests" >&2
  apt-get update -qq && apt-get install -y -qq tinyproxy >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --lib --bins --tests --locked
