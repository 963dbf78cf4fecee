#!/usr/bin/env bash
# Figures for the simulated cluster's budget (sim start plus a seeded 4.43.1 install in under
# 30 s): time to start `la-sim`, to install the real 4.43.1 chart through real helm (--wait,
# pods as real processes), and to seed a database of SIZE with its attachment files.
#
#   scripts/bench-sim.sh                       # 200MB seed, helm 3.19.0, debug build
#   SIZE=1GB HELM_VERSION=4.3.1 PROFILE=release scripts/bench-sim.sh
#
# Prints one line per figure; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-200MB}
HELM_VERSION=${HELM_VERSION:-3.19.0}
PROFILE=${PROFILE:-dev}
CHART=${CHART:-tests/fixtures/charts/live-agent-4.43.1.tgz}

helm_bin=.tools/helm/$HELM_VERSION/helm
[ -x "$helm_bin" ] || { echo "bench-sim: $helm_bin is missing: run scripts/install-test-deps.sh" >&2; exit 1; }
[ -f "$CHART" ] || { echo "bench-sim: chart $CHART not found (set CHART=path/to/live-agent-4.43.1.tgz)" >&2; exit 1; }

cargo build --quiet -p la-sim --profile "$PROFILE"
case "$PROFILE" in dev) bin=target/debug/la-sim ;; *) bin=target/$PROFILE/la-sim ;; esac

# Not under /tmp: pods mount their own /tmp.
state=$(mktemp -d /var/tmp/la-sim-bench.XXXXXX)
cleanup() {
  "$bin" stop --state-dir "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(now)
"$bin" start --state-dir "$state" --background >/dev/null
t1=$(now)
"$bin" install --state-dir "$state" --chart "$CHART" --release cognigy-live-agent \
  -n live-agent --helm "$helm_bin" >"$state/install.log" 2>&1 || { cat "$state/install.log" >&2; exit 1; }
t2=$(now)
seeded=$("$bin" seed --state-dir "$state" --size "$SIZE")
t3=$(now)

# "seeded <ns>/<db>: loaded <x> MB of SQL (...) in <s> s (<r> MB/s); database size <d> MB; ...;
#  <n> attachment files in ..."
field() { sed -E "s#.*$1.*#\\1#" <<<"$seeded"; }
sql_mb=$(field 'loaded ([0-9.]+) MB of SQL')
load_s=$(field 'MB of SQL \([^)]*\) in ([0-9.]+) s')
rate=$(field 'in [0-9.]+ s \(([0-9.]+) MB/s\)')
db_mb=$(field 'database size ([0-9.]+) MB')
files=$(field '; ([0-9]+) attachment files')
seed_s=$(secs "$t2" "$t3")

echo "la-sim start:                     $(secs "$t0" "$t1") s"
echo "helm $HELM_VERSION install 4.43.1 --wait: $(secs "$t1" "$t2") s"
echo "seed $SIZE:                       ${seed_s} s (${sql_mb} MB of SQL loaded in ${load_s} s: ${rate} MB/s; database ${db_mb} MB; $files attachment files)"
echo "start + install + seed:           $(secs "$t0" "$t3") s"
