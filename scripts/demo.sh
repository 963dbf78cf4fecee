#!/usr/bin/env bash
# The migration as a demo on the simulated cluster, from a fresh Debian machine (as root):
# installs the test dependencies, builds, starts the sim, installs a seeded Live Agent 4.43.1
# release with real helm, installs the plugin into a private helm home, runs
#   helm la-migrate 4.44 -n live-agent --chart tests/fixtures/charts/live-agent-4.44.0.tgz --yes
# shows the result and stops the sim, leaving nothing running.
#
# Environment: DEMO_HELM (3.17.3, 3.19.0 or 4.3.1; default 3.19.0), DEMO_SEED_SIZE (default
# 50MB), DEMO_CHARTS (default tests/fixtures/charts, the real charts kept in the repository),
# DEMO_KEEP=1 to keep the sim running afterwards (stop it with the command printed at the end).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

helm_version=${DEMO_HELM:-3.19.0}
seed_size=${DEMO_SEED_SIZE:-50MB}
charts=${DEMO_CHARTS:-$root/tests/fixtures/charts}
say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

for chart in live-agent-4.43.1.tgz live-agent-4.44.0.tgz; do
  [ -f "$charts/$chart" ] || { echo "demo: $charts/$chart is missing (set DEMO_CHARTS)" >&2; exit 1; }
done

say "Test dependencies (scripts/install-test-deps.sh)"
scripts/install-test-deps.sh

say "Build la-migrate and la-sim"
cargo build --locked -q -p la-migrate -p la-sim
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/debug"

# Not under /tmp: every simulated pod has a private /tmp and must still see the state directory.
work=$(mktemp -d "$root/target/demo.XXXXXX")
state="$work/sim"
helm_bin="$root/.tools/helm/$helm_version/helm"
stop_sim() {
  if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo "demo: the sim keeps running; stop it with: $bin/la-sim stop --state-dir $state" >&2
    return
  fi
  "$bin/la-sim" stop --state-dir "$state" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop_sim EXIT

say "Start the simulated cluster"
kubeconfig=$("$bin/la-sim" start --background --state-dir "$state")
export KUBECONFIG="$kubeconfig"
echo "kubeconfig: $KUBECONFIG" >&2

say "Install Live Agent 4.43.1 (PostgreSQL 11, Redis 6) with helm $helm_version"
cat >"$work/values.yaml" <<'EOF'
# An operator's values file for chart 4.43.1
postgresql:
  postgresqlPassword: demo-Postgres-Pass
redis:
  auth:
    password: demo-Redis-Pass
app:
  replica: 2
EOF
"$bin/la-sim" install --state-dir "$state" --chart "$charts/live-agent-4.43.1.tgz" \
  --values "$work/values.yaml" --helm "$helm_bin" >/dev/null
"$bin/la-sim" seed --state-dir "$state" --size "$seed_size"
"$helm_bin" list -n live-agent

say "Install the plugin into a private helm home"
export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" \
  HELM_DATA_HOME="$work/helm/data" HELM_PLUGINS="$work/helm/data/plugins"
plugin="$work/plugin"
mkdir -p "$plugin/bin"
cp plugin.yaml install-binary.sh "$plugin/"
# install-binary.sh keeps a bin/la-migrate that reports the plugin's version: the fresh build.
cp "$bin/la-migrate" "$plugin/bin/la-migrate"
"$helm_bin" plugin install "$plugin"

say "helm la-migrate 4.44 -n live-agent --chart live-agent-4.44.0.tgz --yes"
PATH="$(dirname "$helm_bin"):$PATH" helm la-migrate 4.44 -n live-agent \
  --chart "$charts/live-agent-4.44.0.tgz" --yes

say "Result"
"$helm_bin" list -n live-agent
"$helm_bin" la-migrate 4.44 -n live-agent status
"$root/.tools/helm/3.19.0/kubectl" get pods,pvc -n live-agent
