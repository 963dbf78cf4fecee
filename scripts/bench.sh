#!/usr/bin/env bash
# Benchmarks that print figures (nothing here asserts a time):
#
#   scripts/bench.sh migrate       # sim + seeded 4.43.1 -> helm la-migrate 4.44, then the same
#                                  # seed moved the guide's way (plain pg_dump | psql); each
#                                  # one's application downtime (app scaled to 0 -> app ready)
#                                  # and their ratio
#   scripts/bench.sh migrate-online # the same with `--online` at the 500MB and 2GB seeds (each
#                                  # also the guide's way): the downtimes side by side
#   scripts/bench.sh fingerprint   # the plugin's fingerprint SQL on a seeded PostgreSQL 15
#   scripts/bench.sh values        # `4.44 values` on the typical file and on a generated 5 MB one
#   scripts/bench.sh dump          # pg_dump formats and compression levels on the seeded source
#   scripts/bench.sh load-settings # the copy into a PostgreSQL 15 with all load settings, with
#                                  # each one left at its default, and with none
#   scripts/bench.sh rollback      # `rollback` after the copy (before the point of no return)
#                                  # and after a completed migration, per step
#   scripts/bench.sh all
#
# Environment: SIZE (seed size, default 500MB; `SIZE=2GB` works), FP_SIZE (fingerprint seed
# size, default 1GB), HELM_VERSION (default 3.19.0), CHARTS (default tests/fixtures/charts),
# RUNS (values runs per file, default 20), SKIP_GUIDE=1 (migrate without the guide's way),
# NO_BUILD=1 (use the release binaries as they are). Release builds. Everything started is
# stopped on exit, also on failure or Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

SIZE=${SIZE:-500MB}
FP_SIZE=${FP_SIZE:-1GB}
HELM_VERSION=${HELM_VERSION:-3.19.0}
CHARTS=${CHARTS:-$root/tests/fixtures/charts}
RUNS=${RUNS:-20}
NS=live-agent
RELEASE=cognigy-live-agent
DB=live_agent_production

tools=$root/.tools/helm/$HELM_VERSION
pg15=/usr/lib/postgresql/15/bin
for tool in "$tools/helm" "$tools/kubectl" "$pg15/psql" /usr/bin/time; do
  [ -x "$tool" ] || { echo "bench: $tool is missing: run scripts/install-test-deps.sh" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "bench: python3 is needed to read the figures" >&2; exit 1; }
for chart in 4.43.1 4.44.0; do
  [ -f "$CHARTS/live-agent-$chart.tgz" ] || { echo "bench: $CHARTS/live-agent-$chart.tgz not found (set CHARTS)" >&2; exit 1; }
done

bin=$root/target/release
# Not under /tmp: every simulated pod mounts a private /tmp.
work=$(mktemp -d /var/tmp/la-bench.XXXXXX)
sims=()
cleanup() {
  local s
  for s in "${sims[@]}"; do "$bin/la-sim" stop --state-dir "$s" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
rate() { awk -v mb="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", mb / s; else print "-" }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
say() { printf '\n== %s (load %s)\n' "$*" "$(load)"; }

build() {
  [ "${NO_BUILD:-0}" = 1 ] || cargo build --release --quiet -p la-migrate -p la-sim
}

# start_sim NAME: a sim on its own state directory; sets KUBECONFIG and `state`.
start_sim() {
  state=$work/$1
  sims+=("$state")
  KUBECONFIG=$("$bin/la-sim" start --state-dir "$state" --background)
  export KUBECONFIG
  export HELM_CACHE_HOME=$state/helm/cache HELM_CONFIG_HOME=$state/helm/config \
    HELM_DATA_HOME=$state/helm/data
}

stop_sim() {
  "$bin/la-sim" stop --state-dir "$state" >/dev/null
}

k() { "$tools/kubectl" "$@"; }

# install_seeded CHART SIZE: the release with its database seeded; prints la-sim's seed line.
install_seeded() {
  "$bin/la-sim" install --state-dir "$state" --chart "$CHARTS/live-agent-$1.tgz" \
    --release "$RELEASE" -n "$NS" --helm "$tools/helm" >"$state.install.log" 2>&1 \
    || { cat "$state.install.log" >&2; return 1; }
  "$bin/la-sim" seed --state-dir "$state" --size "$2"
}

# db_mb: pg_database_size of the seeded database, in MB (1e6 bytes).
db_mb() { sql "select pg_database_size(current_database())" | awk '{ printf "%.0f", $1 / 1e6 }'; }

# sql QUERY or sql -f FILE: psql against the release's PostgreSQL pod, as postgres. The
# password travels in the environment, never in argv.
sql() {
  local ip pw key
  ip=$(k get pod -n "$NS" "$RELEASE-postgresql-0" -o jsonpath='{.status.podIP}')
  for key in postgres-password postgresql-password; do
    pw=$(k get secret -n "$NS" "$RELEASE-postgresql" -o "jsonpath={.data.$key}" | base64 -d)
    [ -n "$pw" ] && break
  done
  if [ "$1" = -f ]; then
    PGPASSWORD=$pw "$pg15/psql" -XAtq -v ON_ERROR_STOP=1 -h "$ip" -U postgres -d "$DB" -f "$2"
  else
    PGPASSWORD=$pw "$pg15/psql" -XAtq -v ON_ERROR_STOP=1 -h "$ip" -U postgres -d "$DB" -c "$1"
  fi
}

fingerprint_sql() {
  [ -s "$work/fingerprint.sql" ] ||
    cargo bench --quiet -p la-migrate --bench fingerprint_sql >"$work/fingerprint.sql"
}

# time_fingerprint LABEL MB: runs the plugin's fingerprint SQL, prints seconds and rate.
time_fingerprint() {
  local t0 t1 tables rows
  t0=$(now)
  sql -f "$work/fingerprint.sql" >"$work/fingerprint.out"
  t1=$(now)
  tables=$(grep -c '^T' "$work/fingerprint.out")
  rows=$(awk -F'\t' '$1 == "T" { n += $3 } END { print n }' "$work/fingerprint.out")
  printf '%-34s %6s s for %s MB, %s tables, %s rows: %s MB/s\n' "fingerprint $1:" \
    "$(secs "$t0" "$t1")" "$2" "$tables" "$rows" "$(rate "$2" "$(secs "$t0" "$t1")")"
}

# --- migrate ---------------------------------------------------------------------------------

# Reads `<epoch>\t<json line>` and prints per-step and per-phase durations, and the
# application downtime (copy.scale-down started -> cutover.wait-app done) into file $4.
step_table() {
  python3 - "$1" "$2" "$3" "$4" <<'PY'
import json, sys
events, t_start, db_mb, downtime_file = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
started, done, order, summary = {}, {}, [], None
for line in open(events):
    ts, _, text = line.rstrip("\n").partition("\t")
    try:
        ev = json.loads(text)
    except ValueError:
        continue
    if ev.get("event") == "summary":
        summary = ev
    if ev.get("event") != "step":
        continue
    sid, status = ev["id"], ev["status"]
    if sid not in order:
        order.append(sid)
    if status == "started":
        started[sid] = float(ts)
    elif status in ("done", "skipped"):
        done[sid] = (float(ts), status)
first = min(started.values(), default=t_start)
print(f"  {'(start, preflight)':32} {first - t_start:7.1f} s")
phases = {}
for sid in order:
    if sid in started and sid in done:
        d = done[sid][0] - started[sid]
    else:
        d = 0.0
    phases.setdefault(sid.split(".")[0], 0.0)
    phases[sid.split(".")[0]] += d
    note = "" if sid not in done or done[sid][1] == "done" else f" ({done[sid][1]})"
    extra = ""
    if sid in ("copy.dump", "copy.copy") and d > 0:
        extra = f"   {db_mb / d:6.1f} MB/s of database"
    print(f"  {sid:32} {d:7.1f} s{note}{extra}")
print("  per phase: " + ", ".join(f"{p} {d:.1f} s" for p, d in phases.items()))
if summary:
    print(f"  summary: {summary.get('status')}, {summary.get('steps_done')}/{summary.get('steps')} steps")
if "copy.scale-down" in started and "cutover.wait-app" in done:
    down = done["cutover.wait-app"][0] - started["copy.scale-down"]
    while_down = [s for s in order if started.get(s, 0) >= started["copy.scale-down"] and s in done and done[s][0] <= done["cutover.wait-app"][0]]
    print(f"  application downtime (copy.scale-down -> cutover.wait-app): {down:.1f} s, of which:")
    for sid in while_down:
        print(f"    {sid:30} {done[sid][0] - started[sid]:7.1f} s")
    open(downtime_file, "w").write(f"{down:.1f}\n")
PY
}

bench_plugin() {
  say "migration with la-migrate ${PLUGIN_FLAGS:-}: $SIZE seed, helm $HELM_VERSION"
  fingerprint_sql
  start_sim plugin
  local t0 t1 t2 mb status=0
  t0=$(now)
  echo "seed: $(install_seeded 4.43.1 "$SIZE")"
  mb=$(db_mb)
  t1=$(now)
  echo "sim start + install 4.43.1 + seed: $(secs "$t0" "$t1") s; database $mb MB"
  time_fingerprint "source (PostgreSQL 11)" "$mb"

  t1=$(now)
  HELM_BIN=$tools/helm HELM_NAMESPACE=$NS NO_COLOR=1 \
    /usr/bin/time -v -o "$work/plugin.time" \
    "$bin/la-migrate" 4.44 --chart "$CHARTS/live-agent-4.44.0.tgz" ${PLUGIN_FLAGS:-} --yes -o json \
    2>"$work/plugin.err" | while IFS= read -r line; do printf '%s\t%s\n' "$EPOCHREALTIME" "$line"; done \
    >"$work/events.tsv" || status=$?
  t2=$(now)
  if [ "$status" != 0 ]; then
    echo "bench: la-migrate exited $status; its last stderr lines:" >&2
    tail -n 30 "$work/plugin.err" >&2
    return 1
  fi
  echo "la-migrate 4.44 (release build), per step:"
  step_table "$work/events.tsv" "$t1" "$mb" "$work/plugin.downtime"
  echo "la-migrate total wall time:         $(secs "$t1" "$t2") s"
  echo "la-migrate peak RSS:                $(awk -F': ' '/Maximum resident/ { printf "%.1f MB", $2 / 1024 }' "$work/plugin.time")"
  echo "la-migrate CPU (user + sys):        $(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.1f s", u + s }' "$work/plugin.time")"
  time_fingerprint "target (PostgreSQL 15)" "$(db_mb)"
  stop_sim
}

# The guide's commands (sim/tests/guide_replay.rs), run as an operator would, one timed step
# each; the dump is single-threaded plain SQL, the restore is psql reading it.
guide_step() {
  local name=$1 script=$2 t0 t1
  t0=$(now)
  (cd "$state/operator" && PATH="$tools:$PATH" bash -eu -o pipefail -c "$script") \
    >"$state/operator/step.out" 2>"$state/operator/step.err" || {
    echo "bench: guide $name failed:" >&2
    tail -n 30 "$state/operator/step.out" "$state/operator/step.err" >&2
    return 1
  }
  t1=$(now)
  guide_last=$(secs "$t0" "$t1")
  printf '  %-32s %7s s\n' "$name" "$guide_last"
}

# shellcheck disable=SC2016 # the guide's commands expand $VARS inside the pod
bench_guide() {
  say "the same database the guide's way: $SIZE seed, helm $HELM_VERSION"
  start_sim guide
  mkdir -p "$state/operator"
  cp sim/tests/fixtures/backup-pod.yaml "$state/operator/"
  local mb t0 t1 pv chart
  echo "seed: $(install_seeded 4.43.1 "$SIZE")"
  mb=$(db_mb)
  pv=$(k get pvc -n "$NS" live-agent -o jsonpath='{.spec.volumeName}')
  chart=$CHARTS/live-agent-4.44.0.tgz
  t0=$(now)
  guide_step "prepare: size, backup pod" '
kubectl exec -n live-agent cognigy-live-agent-postgresql-0 -- bash -c '"'"'PGPASSWORD=$POSTGRES_PASSWORD psql -U postgres -d live_agent_production -c "SELECT pg_database_size(current_database())/1024/1024/1024 AS size_in_gb;"'"'"'
kubectl apply -n live-agent -f backup-pod.yaml
timeout 120 bash -c '"'"'until [ "$(kubectl get pod -n live-agent postgres-backup-0 -o jsonpath="{.status.containerStatuses[0].ready}" 2>/dev/null)" = true ]; do sleep 1; done'"'"'
'
  local down0
  down0=$(now)
  guide_step "1 scale to 0" '
kubectl scale --replicas=0 -n live-agent deployment/cognigy-live-agent
kubectl scale --replicas=0 -n live-agent deployment/cognigy-live-agent-worker
kubectl scale --replicas=0 -n live-agent deployment/cognigy-live-agent-odata
timeout 120 bash -c '"'"'while kubectl get pods -n live-agent -l app.kubernetes.io/name=live-agent -o name | grep -q .; do sleep 1; done'"'"'
'
  guide_step "2 pg_dump (plain SQL)" "
kubectl exec -n live-agent -i postgres-backup-0 -- bash <<'SHELL'
cd /mnt/postgres-backup/
nohup time pg_dump --user \$POSTGRES_USER --host cognigy-live-agent-postgresql -d live_agent_production > live_agent_production-postgres-dump.sql &
wait
ls -l live_agent_production-postgres-dump.sql
SHELL
"
  local dump_s=$guide_last
  guide_step "3 retain, uninstall, claims" "
kubectl patch pv $pv -p '{\"spec\":{\"persistentVolumeReclaimPolicy\":\"Retain\"}}'
helm delete -n live-agent cognigy-live-agent
timeout 120 bash -c 'until [ \"\$(kubectl get pv $pv -o jsonpath={.status.phase})\" = Released ]; do sleep 1; done'
kubectl patch pv $pv -p '{\"spec\":{\"claimRef\": null}}'
kubectl delete pvc -n live-agent data-cognigy-live-agent-postgresql-0
kubectl delete pvc -n live-agent redis-data-cognigy-live-agent-redis-master-0
kubectl delete pvc -n live-agent redis-data-cognigy-live-agent-redis-replicas-0 redis-data-cognigy-live-agent-redis-replicas-1 redis-data-cognigy-live-agent-redis-replicas-2
"
  guide_step "4 delete secrets" '
kubectl delete secret -n live-agent cognigy-live-agent-postgresql || true
kubectl delete secret -n live-agent cognigy-live-agent-redis || true
'
  printf 'app:\n  replica: 0\nworker:\n  replica: 0\nodata:\n  enabled: false\nmigration:\n  enabled: false\n' \
    >"$state/operator/custom-values.yaml"
  guide_step "5 helm install 4.44.0" "
helm install cognigy-live-agent $chart --version 4.44.0 --namespace live-agent -f custom-values.yaml
timeout 180 bash -c 'until [ \"\$(kubectl get pods -n live-agent -o jsonpath=\"{range .items[*]}{.status.conditions[?(@.type==\\\"Ready\\\")].status}{\\\"\\n\\\"}{end}\" | sort -u)\" = True ]; do sleep 1; done'
"
  guide_step "6 psql restore (plain SQL)" "
PASSWORD=\$(kubectl get secret -n live-agent cognigy-live-agent-postgresql -o jsonpath='{.data.postgres-password}' | base64 -d)
kubectl exec -n live-agent -i postgres-backup-0 -- bash <<SHELL
export PGPASSWORD=\$PASSWORD
psql --host cognigy-live-agent-postgresql -U postgres -d postgres -p 5432 <<'SQL'
DROP DATABASE live_agent_production;
CREATE DATABASE live_agent_production;
GRANT ALL PRIVILEGES ON DATABASE live_agent_production TO postgres;
SQL
cd /mnt/postgres-backup/
nohup time psql --host cognigy-live-agent-postgresql -U postgres -d live_agent_production < live_agent_production-postgres-dump.sql > restore.log 2> restore.err &
wait
! grep ERROR restore.err
SHELL
"
  local restore_s=$guide_last
  printf 'app:\n  replica: 2\nworker:\n  replica: 3\nodata:\n  enabled: true\nmigration:\n  enabled: true\n' \
    >"$state/operator/custom-values.yaml"
  guide_step "7 helm upgrade, app on" "
helm upgrade cognigy-live-agent $chart --version 4.44.0 --namespace live-agent -f custom-values.yaml
timeout 180 bash -c 'until [ \"\$(kubectl get pods -n live-agent -l app.kubernetes.io/name=live-agent -o jsonpath=\"{range .items[*]}{.status.conditions[?(@.type==\\\"Ready\\\")].status}{\\\"\\n\\\"}{end}\" | grep -c True)\" = 6 ]; do sleep 1; done'
"
  secs "$down0" "$(now)" >"$work/guide.downtime"
  guide_step "8 onboarding key" "
kubectl exec -n live-agent -i cognigy-live-agent-redis-master-0 -- bash <<'SHELL'
REDISCLI_AUTH=\$REDIS_PASSWORD redis-cli --no-auth-warning -h cognigy-live-agent-redis-master DEL alfred:CHATWOOT_INSTALLATION_ONBOARDING
SHELL
"
  t1=$(now)
  echo "  dump $(rate "$mb" "$dump_s") MB/s, restore $(rate "$mb" "$restore_s") MB/s of a $mb MB database"
  echo "guide's way, steps 1 to 8 (commands only, no operator think time): $(secs "$t0" "$t1") s"
  echo "guide's application downtime (step 1 scale to 0 -> step 7 app ready): $(cat "$work/guide.downtime") s"
  echo "(the guide checks nothing; the plugin's copy.prove, the point of no return's check and verify.report are extra work)"
  stop_sim
}

downtime_ratio() {
  [ -f "$work/plugin.downtime" ] && [ -f "$work/guide.downtime" ] || return 0
  local p g
  p=$(cat "$work/plugin.downtime")
  g=$(cat "$work/guide.downtime")
  echo
  echo "application downtime, $SIZE seed: la-migrate $p s, the guide's commands $g s: ratio $(awk -v p="$p" -v g="$g" 'BEGIN { printf "%.2f", p / g }')x"
}

# --- migrate-online --------------------------------------------------------------------------

# `--online` at each of ONLINE_SIZES (default 500MB 2GB), each next to the guide's way on the
# same seed; then the downtimes side by side and how the larger seed's compares.
bench_migrate_online() {
  local size sizes=(${ONLINE_SIZES:-500MB 2GB})
  for size in "${sizes[@]}"; do
    SIZE=$size PLUGIN_FLAGS=--online bench_plugin
    cp "$work/plugin.downtime" "$work/online-$size.downtime"
    if [ "${SKIP_GUIDE:-0}" != 1 ]; then
      SIZE=$size bench_guide
      cp "$work/guide.downtime" "$work/guide-$size.downtime"
    fi
  done
  echo
  echo "application downtime (app to 0 -> app ready):"
  for size in "${sizes[@]}"; do
    printf '  %-6s la-migrate --online %6s s   the guide'"'"'s commands %6s s\n' "$size" \
      "$(cat "$work/online-$size.downtime")" "$(cat "$work/guide-$size.downtime" 2>/dev/null || echo -)"
  done
  if [ "${#sizes[@]}" -ge 2 ]; then
    local first last
    first=$(cat "$work/online-${sizes[0]}.downtime")
    last=$(cat "$work/online-${sizes[-1]}.downtime")
    echo "la-migrate --online at ${sizes[-1]} over ${sizes[0]}: $(awk -v a="$last" -v b="$first" 'BEGIN { printf "%.2f", a / b }')x"
  fi
}

# --- fingerprint -----------------------------------------------------------------------------

# fingerprint_parts MB: the same statement with only row counts, and with the whole-row text
# hash the plugin used before (each row turned into text, then hashed), to show the cost.
fingerprint_parts() {
  local mb=$1 variant t0 t1
  echo "for comparison (same statement, other per-row work):"
  for variant in counts row-text; do
    cargo bench --quiet -p la-migrate --bench fingerprint_sql -- "$variant" >"$work/part.sql"
    t0=$(now)
    sql -f "$work/part.sql" >/dev/null
    t1=$(now)
    printf '  %-32s %6s s  %6s MB/s\n' "$variant" "$(secs "$t0" "$t1")" "$(rate "$mb" "$(secs "$t0" "$t1")")"
  done
}

bench_fingerprint() {
  say "fingerprint SQL on PostgreSQL 15: $FP_SIZE seed"
  fingerprint_sql
  start_sim fingerprint
  local t0 t1 mb
  t0=$(now)
  echo "seed: $(install_seeded 4.44.0 "$FP_SIZE")"
  t1=$(now)
  mb=$(db_mb)
  echo "sim start + install 4.44.0 + seed: $(secs "$t0" "$t1") s; database $mb MB"
  time_fingerprint "run 1 (right after the load)" "$mb"
  time_fingerprint "run 2" "$mb"
  fingerprint_parts "$mb"
  stop_sim
}

# --- dump formats ----------------------------------------------------------------------------

# pg_dump (PostgreSQL 15 tools) against the seeded PostgreSQL 11 pod in the formats at hand:
# the guide's plain SQL, and the directory format with 2 jobs at several compression levels
# (with `--keep-dump` the plugin dumps `--format=directory --jobs=N --compress=0`).
bench_dump() {
  say "pg_dump formats against PostgreSQL 11: $SIZE seed"
  start_sim dump
  local mb ip pw variant t0 t1 s cpu out
  echo "seed: $(install_seeded 4.43.1 "$SIZE")"
  mb=$(db_mb)
  ip=$(k get pod -n "$NS" "$RELEASE-postgresql-0" -o jsonpath='{.status.podIP}')
  pw=$(k get secret -n "$NS" "$RELEASE-postgresql" -o 'jsonpath={.data.postgresql-password}' | base64 -d)
  for variant in "plain" "-Fd -j2 -Z6" "-Fd -j2 -Z1" "-Fd -j2 -Z0"; do
    out=$work/dump.out
    rm -rf "$out"
    local args=(-h "$ip" -U postgres -d "$DB" --no-password -f "$out")
    # shellcheck disable=SC2206 # the variant is a list of flags
    [ "$variant" = plain ] || args+=($variant)
    sync
    t0=$(now)
    PGPASSWORD=$pw /usr/bin/time -f '%U %S' -o "$work/dump.time" "$pg15/pg_dump" "${args[@]}"
    t1=$(now)
    s=$(secs "$t0" "$t1")
    cpu=$(awk '{ printf "%.1f", $1 + $2 }' "$work/dump.time")
    printf '  pg_dump %-14s %6s s  %6s MB/s of database  archive %5s MB  pg_dump CPU %s s\n' \
      "$variant" "$s" "$(rate "$mb" "$s")" "$(du -sm "$out" | cut -f1)" "$cpu"
  done
  rm -rf "$work/dump.out"
  echo "  (database $mb MB; the server's CPU is not in pg_dump's figure)"
  stop_sim
}

# --- load settings ---------------------------------------------------------------------------

# The copy pod's own copy (its table list, copy-one.sh, post-data restore), from the seeded
# PostgreSQL 11 pod into a PostgreSQL 15 server run here as `postgres`, started once with every
# load setting of src/plan/copy_script.rs, once without each one, once with none.
bench_load_settings() {
  say "PostgreSQL 15 load settings: the copy of a $SIZE seed"
  start_sim settings
  echo "seed: $(install_seeded 4.43.1 "$SIZE")"
  local mb ip pw d port variant flags name value t0 t1 t2 t3
  mb=$(db_mb)
  ip=$(k get pod -n "$NS" "$RELEASE-postgresql-0" -o jsonpath='{.status.podIP}')
  pw=$(k get secret -n "$NS" "$RELEASE-postgresql" -o 'jsonpath={.data.postgresql-password}' | base64 -d)
  for piece in tables-query copy-one load-settings; do
    cargo bench --quiet -p la-migrate --bench copy_script -- "$piece" >"$work/$piece"
  done
  d=$work/pg15
  chmod 711 "$work"
  mkdir -p "$d"
  chown postgres "$d"
  runuser -u postgres -- "$pg15/initdb" -D "$d/data" -U postgres -A trust >/dev/null
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export SRC_HOST=$ip SRC_PORT=5432 SRC_USER=postgres SRC_DATABASE=$DB
  export DST_HOST=127.0.0.1 DST_PORT=$port DST_USER=postgres DST_DATABASE=$DB DST_PASSWORD=
  PGPASSWORD=$pw "$pg15/psql" -XAtq -0 -z -v ON_ERROR_STOP=1 -h "$ip" -U postgres -d "$DB" \
    -f "$work/tables-query" >"$work/tables.list"
  PGPASSWORD=$pw "$pg15/pg_dump" --schema-only --format=custom -h "$ip" -U postgres \
    -f "$work/schema.dump" "$DB"
  printf '  %-34s %8s %9s %11s %8s\n' "PostgreSQL 15 started with" data indexes checkpoint total
  for variant in all $(cut -f1 "$work/load-settings") none; do
    flags="-p $port -k $d -c listen_addresses=127.0.0.1"
    while IFS=$'\t' read -r name value; do
      [ "$variant" = none ] || [ "$variant" = "$name" ] || flags+=" -c $name=$value"
    done <"$work/load-settings"
    runuser -u postgres -- "$pg15/pg_ctl" -D "$d/data" -w -l "$d/log" -o "$flags" start >/dev/null
    "$pg15/psql" -Xq -h 127.0.0.1 -p "$port" -U postgres -d postgres \
      -c "drop database if exists $DB" -c "create database $DB"
    "$pg15/pg_restore" --section=pre-data --exit-on-error -h 127.0.0.1 -p "$port" -U postgres \
      -d "$DB" "$work/schema.dump"
    sync
    t0=$(now)
    SRC_PASSWORD=$pw PATH=$pg15:$PATH xargs -0 -r -P 2 -n 2 bash "$work/copy-one" <"$work/tables.list"
    t1=$(now)
    "$pg15/pg_restore" --section=post-data --exit-on-error --jobs=2 -h 127.0.0.1 -p "$port" \
      -U postgres -d "$DB" "$work/schema.dump"
    t2=$(now)
    "$pg15/psql" -Xq -h 127.0.0.1 -p "$port" -U postgres -d postgres -c CHECKPOINT
    t3=$(now)
    runuser -u postgres -- "$pg15/pg_ctl" -D "$d/data" -w -m fast stop >/dev/null
    case $variant in all) label="every load setting" ;; none) label="none (defaults)" ;; *) label="all but $variant" ;; esac
    printf '  %-34s %6s s %7s s %9s s %6s s\n' "$label" "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" \
      "$(secs "$t2" "$t3")" "$(secs "$t0" "$t3")"
  done
  echo "  (database $mb MB; copy-one.sh of the copy pod, 2 tables at a time; post-data with --jobs=2)"
  stop_sim
}

# --- values ----------------------------------------------------------------------------------

# A 5 MB operator's file: the keys the rules move, then many commented, nested entries.
big_values() {
  python3 - "$1" <<'PY'
import sys
out = [open("tests/fixtures/values/09-postgres-persistence-resources.yaml").read().rstrip("\n"), ""]
out.append("# Per-tenant settings, generated")
out.append("tenants:")
i, size = 0, 0
while size < 5 * 1024 * 1024:
    entry = [
        f"  # tenant {i}: owned by team {i % 17}",
        f"  tenant-{i:06d}:",
        f"    name: \"Tenant {i}\"",
        f"    enabled: {'true' if i % 3 else 'false'}",
        f"    limits: {{cpu: {i % 8 + 1}, memory: {(i % 16 + 1) * 256}Mi}}",
        "    hosts:",
        f"      - tenant-{i}.example.com",
        f"      - 'alt-{i}.example.org'",
        "    labels:",
        f"      tier: {['gold', 'silver', 'bronze'][i % 3]}",
        "      note: >-",
        f"        folded text for tenant {i},",
        "        two lines of it",
    ]
    out += entry
    size += sum(len(l) + 1 for l in entry)
    i += 1
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
}

# time_values LABEL FILE: RUNS runs of `la-migrate 4.44 values -f FILE`; ms per file, peak RSS.
time_values() {
  local label=$1 file=$2 t0 t1 i rss=0 r
  "$bin/la-migrate" 4.44 values -f "$file" >"$work/out.yaml" 2>"$work/report.txt"
  t0=$(now)
  for ((i = 0; i < RUNS; i++)); do
    /usr/bin/time -f %M -o "$work/rss" "$bin/la-migrate" 4.44 values -f "$file" >/dev/null 2>&1
    r=$(cat "$work/rss")
    [ "$r" -gt "$rss" ] && rss=$r
  done
  t1=$(now)
  printf '%-34s %8.1f ms per file (%d runs, %s KB in, %s report lines), peak RSS %.1f MB\n' \
    "values $label:" "$(awk -v a="$t0" -v b="$t1" -v n="$RUNS" 'BEGIN { print (b - a) * 1000 / n }')" \
    "$RUNS" "$(awk -v b="$(stat -c %s "$file")" 'BEGIN { printf "%.1f", b / 1024 }')" "$(wc -l <"$work/report.txt")" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
}

bench_values() {
  say "values translation"
  time_values "typical (09-postgres-...)" tests/fixtures/values/09-postgres-persistence-resources.yaml
  time_values "ingress, many hosts (07)" tests/fixtures/values/07-ingress-many-hosts.yaml
  big_values "$work/big-values.yaml"
  time_values "generated 5 MB" "$work/big-values.yaml"
}

# timed_run LABEL STEPS ARGS...: la-migrate ARGS with -o json, each event stamped; prints the
# wall time and, with STEPS=steps, each step's time.
timed_run() {
  local label=$1 steps=$2 t0 t1 status=0
  shift 2
  t0=$(now)
  HELM_BIN=$tools/helm HELM_NAMESPACE=$NS NO_COLOR=1 "$bin/la-migrate" 4.44 "$@" --yes -o json \
    2>"$work/run.err" | while IFS= read -r line; do printf '%s\t%s\n' "$EPOCHREALTIME" "$line"; done \
    >"$work/run.tsv" || status=$?
  t1=$(now)
  if [ "$status" != 0 ]; then
    echo "bench: la-migrate 4.44 $* exited $status; its last stderr lines:" >&2
    tail -n 30 "$work/run.err" >&2
    return 1
  fi
  echo "$label: $(secs "$t0" "$t1") s"
  [ "$steps" = steps ] || return 0
  python3 - "$work/run.tsv" <<'PY'
import json, sys
started = {}
for line in open(sys.argv[1]):
    at, _, doc = line.rstrip("\n").partition("\t")
    try:
        event = json.loads(doc)
    except ValueError:
        continue
    if event.get("event") != "step":
        continue
    if event["status"] == "started":
        started[event["id"]] = float(at)
    elif event["status"] == "done" and event["id"] in started:
        print(f"  {event['id']:<28} {float(at) - started[event['id']]:6.1f} s")
PY
}

bench_rollback() {
  say "rollback with la-migrate: $SIZE seed, helm $HELM_VERSION"
  start_sim rollback
  echo "seed: $(install_seeded 4.43.1 "$SIZE")"
  echo "database: $(db_mb) MB"
  local chart=(--chart "$CHARTS/live-agent-4.44.0.tgz")
  timed_run "prepare" - "${chart[@]}" prepare
  timed_run "copy (the app at 0 from here)" - "${chart[@]}" copy
  timed_run "rollback before the point of no return (the app back, PostgreSQL 15 removed)" steps rollback
  timed_run "whole migration" - "${chart[@]}"
  timed_run "rollback after the completed migration (4.43.1 on PostgreSQL 11 again, checked)" steps rollback
  stop_sim
}

case "${1:-}" in
  migrate) build; bench_plugin; [ "${SKIP_GUIDE:-0}" = 1 ] || bench_guide; downtime_ratio ;;
  migrate-online) build; bench_migrate_online ;;
  fingerprint) build; bench_fingerprint ;;
  values) build; bench_values ;;
  dump) build; bench_dump ;;
  load-settings) build; bench_load_settings ;;
  rollback) build; bench_rollback ;;
  all) build; bench_values; bench_plugin; [ "${SKIP_GUIDE:-0}" = 1 ] || bench_guide; downtime_ratio; bench_dump; bench_load_settings; bench_fingerprint ;;
  *) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
esac
echo
echo "machine: $(nproc) cores, load now $(load)"
