#!/bin/sh
# Installs the la-migrate binary into the plugin directory (bin/la-migrate). Helm runs this
# as the plugin's install and update hook; it can also be run by hand in a checkout.
#
# In order:
#   1. bin/la-migrate already reports the plugin's version (a release archive bundles it):
#      nothing to do.
#   2. Download la-migrate_<version>_<os>_<arch>.tar.gz and its .sha256 from the release of
#      the plugin's version, verify the SHA-256, install bin/la-migrate. A mismatch stops the
#      installation: nothing unverified is ever installed.
#   3. No release to download (offline, unpublished version, other platform) and this is a
#      source checkout with cargo on PATH: `cargo build --locked`.
#   4. Otherwise an error that says what to do.
#
# Environment:
#   LA_MIGRATE_DOWNLOAD_URL   base URL of the release assets, http(s):// or file://
#                             (default: the GitHub release of the plugin's version)
#   LA_MIGRATE_CARGO_PROFILE  cargo profile of a source build (default: release)
#   CARGO_TARGET_DIR          where a source build puts its files (default: <plugin>/target)
set -eu

REPOSITORY_URL="https://github.com/cognigy-community/la-migrate"

say() { printf 'la-migrate install: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

plugin_dir=${HELM_PLUGIN_DIR:-$(cd "$(dirname "$0")" && pwd)}
[ -f "$plugin_dir/plugin.yaml" ] || die "no plugin.yaml in $plugin_dir (HELM_PLUGIN_DIR); run this script from the plugin directory"

version=$(sed -n 's/^version:[[:space:]]*"\{0,1\}\([^"[:space:]]*\)"\{0,1\}[[:space:]]*$/\1/p' "$plugin_dir/plugin.yaml" | head -n 1)
[ -n "$version" ] || die "no version in $plugin_dir/plugin.yaml"

target="$plugin_dir/bin/la-migrate"
want="la-migrate $version"

# 1. Already there (bundled by a release archive, or installed before).
if [ -x "$target" ]; then
  have=$("$target" --version 2>/dev/null || true)
  if [ "$have" = "$want" ]; then
    say "$want is already installed in $plugin_dir/bin; nothing to do"
    exit 0
  fi
  say "replacing bin/la-migrate (${have:-it does not run here}) with $want"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/la-migrate-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# Copies a candidate binary into place after checking it reports the plugin's version;
# the rename makes the switch atomic.
install_binary() {
  got=$("$1" --version 2>/dev/null || true)
  [ "$got" = "$want" ] || die "the $2 binary reports '${got:-nothing}', expected '$want'; nothing was installed"
  mkdir -p "$plugin_dir/bin"
  cp "$1" "$plugin_dir/bin/.la-migrate.new"
  chmod 0755 "$plugin_dir/bin/.la-migrate.new"
  mv -f "$plugin_dir/bin/.la-migrate.new" "$target"
  say "installed $want ($2) into $plugin_dir/bin"
}

# Fetches URL $1 to file $2; on failure the reason is left in $tmp/fetch.err.
fetch() {
  case $1 in
    file://*)
      cp "${1#file://}" "$2" 2>"$tmp/fetch.err"
      ;;
    http://* | https://*)
      if command -v curl >/dev/null 2>&1; then
        curl --fail --silent --show-error --location --retry 2 --connect-timeout 15 \
          --output "$2" "$1" 2>"$tmp/fetch.err"
      elif command -v wget >/dev/null 2>&1; then
        wget --quiet --tries=3 --timeout=15 --output-document="$2" "$1" 2>"$tmp/fetch.err" \
          || { echo "wget failed" >>"$tmp/fetch.err"; return 1; }
      else
        echo "neither curl nor wget is installed" >"$tmp/fetch.err"
        return 1
      fi
      ;;
    *)
      echo "unsupported URL scheme (use https://, http:// or file://)" >"$tmp/fetch.err"
      return 1
      ;;
  esac
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1
  else
    die "cannot verify the download: none of sha256sum, shasum, openssl is installed"
  fi
}

case $(uname -s) in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) os= ;;
esac
case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch= ;;
esac

# 2. The release archive of this version, verified.
base=${LA_MIGRATE_DOWNLOAD_URL:-$REPOSITORY_URL/releases/download/v$version}
base=${base%/}
if [ -n "$os" ] && [ -n "$arch" ]; then
  asset="la-migrate_${version}_${os}_${arch}.tar.gz"
  if fetch "$base/$asset.sha256" "$tmp/$asset.sha256" && fetch "$base/$asset" "$tmp/$asset"; then
    read -r expected named <"$tmp/$asset.sha256" || true
    expected=$(printf '%s' "${expected:-}" | tr '[:upper:]' '[:lower:]')
    case $expected in
      *[!0-9a-f]* | "") die "$base/$asset.sha256 is not a SHA-256 checksum file; nothing was installed" ;;
    esac
    [ ${#expected} -eq 64 ] || die "$base/$asset.sha256 is not a SHA-256 checksum file; nothing was installed"
    named=${named#\*}
    if [ -n "${named:-}" ] && [ "$named" != "$asset" ]; then
      die "$base/$asset.sha256 is the checksum of '$named', not of $asset; nothing was installed"
    fi
    actual=$(sha256_of "$tmp/$asset")
    if [ "$actual" != "$expected" ]; then
      die "SHA-256 mismatch for $base/$asset: expected $expected, got $actual. The download is corrupt or was tampered with; nothing was installed. Retry the installation; if it fails again, report it at $REPOSITORY_URL/issues"
    fi
    say "verified SHA-256 of $asset"
    mkdir "$tmp/unpacked"
    tar -xzf "$tmp/$asset" -C "$tmp/unpacked" bin/la-migrate 2>"$tmp/tar.err" \
      || die "$asset has no bin/la-migrate ($(head -n 1 "$tmp/tar.err")); nothing was installed"
    install_binary "$tmp/unpacked/bin/la-migrate" "downloaded"
    exit 0
  fi
  say "no release archive at $base/$asset: $(head -n 1 "$tmp/fetch.err" 2>/dev/null)"
else
  say "no release archive is published for $(uname -s)/$(uname -m)"
fi

# 3. Build from source.
if [ -f "$plugin_dir/Cargo.toml" ] && command -v cargo >/dev/null 2>&1; then
  profile=${LA_MIGRATE_CARGO_PROFILE:-release}
  build_dir=${CARGO_TARGET_DIR:-$plugin_dir/target}
  case $build_dir in /*) ;; *) build_dir="$(pwd)/$build_dir" ;; esac
  say "building $want from source (cargo build --locked --profile $profile); this takes a few minutes"
  CARGO_TARGET_DIR=$build_dir cargo build --locked --profile "$profile" --bin la-migrate \
    --manifest-path "$plugin_dir/Cargo.toml" >&2 \
    || die "cargo build failed (see above); fix it and run $plugin_dir/install-binary.sh again"
  case $profile in
    dev | test) out=debug ;;
    bench) out=release ;;
    *) out=$profile ;;
  esac
  install_binary "$build_dir/$out/la-migrate" "built from source"
  exit 0
fi

# 4. Nothing worked.
if [ -f "$plugin_dir/Cargo.toml" ]; then
  die "no release archive could be downloaded and cargo is not installed to build from source. Install Rust (https://rustup.rs) and run $plugin_dir/install-binary.sh, or install a release archive: helm plugin install $REPOSITORY_URL/releases/download/v$version/la-migrate_${version}_<os>_<arch>.tar.gz"
fi
die "no release archive could be downloaded from $base. Check the network (or LA_MIGRATE_DOWNLOAD_URL) and install the plugin again"
