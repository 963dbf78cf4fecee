#!/usr/bin/env bash
# The test command (README, CI): installs the test dependencies, then checks formatting and
# lints and runs every test of the workspace against the real helm, PostgreSQL and Redis.
#
#   scripts/test.sh [extra arguments for the test runner, e.g. a test name filter]
#
# Uses cargo-nextest when installed, else `cargo test`. Ends with the runner's summary line.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n==> %s\n' "$*" >&2; }

step "test dependencies (scripts/install-test-deps.sh)"
scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
if cargo nextest --version >/dev/null 2>&1; then
  step "cargo nextest run --workspace"
  cargo nextest run --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
  summary=$(grep -E '^ *Summary \[' "$log" | tail -n 1 | sed 's/^ *//')
else
  step "cargo test --workspace (cargo-nextest is not installed)"
  cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
  summary=$(awk '/^test result:/ { p += $4; f += $6; i += $8 }
    END { printf "Summary: %d passed, %d failed, %d ignored\n", p, f, i }' "$log")
fi

echo
echo "${summary:-Summary: the test runner printed no summary}"
exit "$status"
