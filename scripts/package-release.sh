#!/usr/bin/env bash
# Builds the release archive of the plugin for this machine's platform:
#
#   scripts/package-release.sh [--binary PATH] [--out DIR]
#
#   --binary PATH  package this la-migrate binary instead of building one
#                  (cargo build --release --locked)
#   --out DIR      where the files go (default: dist/)
#
# Writes, for version V (from plugin.yaml, which must equal Cargo.toml's) and this os/arch:
#   DIR/la-migrate_V_<os>_<arch>.tar.gz         a complete plugin: plugin.yaml,
#                                               install-binary.sh, bin/la-migrate, README.md
#   DIR/la-migrate_V_<os>_<arch>.tar.gz.sha256  "<sha256>  <archive name>" (sha256sum format)
#   DIR/la-migrate_V_checksums.txt              every archive of V in DIR, same format
#
# The archive's files sit at its top level (no leading directory, no "./" entry): that is
# what `helm plugin install <archive URL>` expects, and install-binary.sh takes bin/la-migrate
# from the same archive.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/dist"
binary=

die() {
  echo "package-release: error: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

version=$(sed -n 's/^version:[[:space:]]*"\{0,1\}\([^"[:space:]]*\)"\{0,1\}[[:space:]]*$/\1/p' "$root/plugin.yaml" | head -n 1)
crate_version=$(sed -n '/^\[package\]/,/^\[/s/^version[[:space:]]*=[[:space:]]*"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$version" ] || die "no version in plugin.yaml"
[ "$version" = "$crate_version" ] || die "plugin.yaml has version $version but Cargo.toml has $crate_version; make them equal"

case $(uname -s) in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) die "no release archive for $(uname -s)" ;;
esac
case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "no release archive for $(uname -m)" ;;
esac

if [ -z "$binary" ]; then
  cargo build --release --locked --bin la-migrate --manifest-path "$root/Cargo.toml" >&2
  binary="${CARGO_TARGET_DIR:-$root/target}/release/la-migrate"
fi
[ -x "$binary" ] || die "$binary is not an executable"
reported=$("$binary" --version)
[ "$reported" = "la-migrate $version" ] || die "$binary reports '$reported', expected 'la-migrate $version'"

name="la-migrate_${version}_${os}_${arch}"
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/bin"
install -m 0755 "$binary" "$stage/bin/la-migrate"
install -m 0755 "$root/install-binary.sh" "$stage/install-binary.sh"
install -m 0644 "$root/plugin.yaml" "$stage/plugin.yaml"
install -m 0644 "$root/README.md" "$stage/README.md"

# Same input, same bytes: fixed order, owner and time where GNU tar allows it.
tar_flags=()
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
  tar_flags=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0)
fi
(cd "$stage" && tar "${tar_flags[@]}" -cf - plugin.yaml install-binary.sh README.md bin) \
  | gzip -n >"$out/$name.tar.gz"

if command -v sha256sum >/dev/null 2>&1; then
  sum() { sha256sum "$1" | cut -d ' ' -f 1; }
else
  sum() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
fi
printf '%s  %s\n' "$(sum "$out/$name.tar.gz")" "$name.tar.gz" >"$out/$name.tar.gz.sha256"
(cd "$out" && for f in la-migrate_"${version}"_*.tar.gz; do
  printf '%s  %s\n' "$(sum "$f")" "$f"
done) >"$out/la-migrate_${version}_checksums.txt"

echo "$out/$name.tar.gz"
