#!/usr/bin/env bash
# Builds the release archive of the plugin for this machine's platform:
#
#   scripts/package-release.sh [--binary PATH] [--out DIR]
#                               [--key NAME [--keyring FILE] [--passphrase-file FILE]]
#
#   --binary PATH  package this la-migrate binary instead of building one
#                  (cargo build --release --locked)
#   --out DIR      where the files go (default: dist/)
#   --key NAME     sign with this gpg key (a user id, e-mail or fingerprint, as gpg's
#                  --local-user): writes the provenance file Helm 4 verifies
#   --keyring FILE the secret key to sign with, as `gpg --export-secret-keys` writes it
#                  (default: the keys of your own gpg home, GNUPGHOME or ~/.gnupg)
#   --passphrase-file FILE  the key's passphrase (default: gpg asks, when the key has one)
#
# Writes, for version V (from plugin.yaml, which must equal Cargo.toml's) and this os/arch:
#   DIR/la-migrate_V_<os>_<arch>.tar.gz         a complete plugin: plugin.yaml,
#                                               install-binary.sh, bin/la-migrate, README.md
#   DIR/la-migrate_V_<os>_<arch>.tar.gz.sha256  "<sha256>  <archive name>" (sha256sum format)
#   DIR/la-migrate_V_checksums.txt              every archive of V in DIR, same format
# and with --key:
#   DIR/la-migrate_V_<os>_<arch>.tar.gz.prov    the archive's provenance, as helm's
#                                               pkg/provenance writes it for a plugin: the
#                                               archive's plugin.yaml, a "..." line and
#                                               "files: {<archive name>: sha256:<sum>}",
#                                               clearsigned (SHA-512)
#   DIR/la-migrate-pubring.gpg                  the signing key's public key, in the binary
#                                               format `helm plugin install --keyring` reads
#
# The archive's files sit at its top level (no leading directory, no "./" entry): that is
# what `helm plugin install <archive URL>` expects, and install-binary.sh takes bin/la-migrate
# from the same archive. Helm 4 fetches `<archive URL>.prov` and checks it against the keyring
# given with --keyring (default ~/.gnupg/pubring.gpg).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/dist"
binary=
key=
keyring=
passphrase_file=

die() {
  echo "package-release: error: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --key) key=${2:?--key needs a gpg key name}; shift 2 ;;
    --keyring) keyring=${2:?--keyring needs a file}; shift 2 ;;
    --passphrase-file) passphrase_file=${2:?--passphrase-file needs a file}; shift 2 ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

if [ -z "$key" ]; then
  [ -z "$keyring$passphrase_file" ] || die "--keyring and --passphrase-file need --key, the key to sign with"
else
  command -v gpg >/dev/null || die "--key needs gpg (Debian: apt-get install gnupg)"
  [ -z "$keyring" ] || [ -f "$keyring" ] || die "keyring $keyring not found"
  [ -z "$passphrase_file" ] || [ -f "$passphrase_file" ] || die "passphrase file $passphrase_file not found"
fi

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
cleanup() {
  # The gpg agent a private gpg home started ends with it.
  [ ! -d "$stage/gnupg" ] || GNUPGHOME="$stage/gnupg" gpgconf --kill all >/dev/null 2>&1 || true
  rm -rf "$stage"
}
trap cleanup EXIT

if [ -n "$key" ]; then
  # The key is checked before anything is written.
  gpg_args=(--batch --quiet --no-tty)
  if [ -n "$keyring" ]; then
    # A private gpg home for the given key, so the user's own keys are neither read nor changed.
    export GNUPGHOME="$stage/gnupg"
    mkdir -m 0700 "$GNUPGHOME"
    gpg "${gpg_args[@]}" --import "$keyring" 2>"$stage/gpg.log" \
      || die "gpg could not import $keyring: $(cat "$stage/gpg.log")"
  fi
  gpg "${gpg_args[@]}" --list-secret-keys "$key" >/dev/null 2>&1 \
    || die "no secret key '$key' ${keyring:+in $keyring}${keyring:-in your gpg home (GNUPGHOME or ~/.gnupg)}: give its user id or fingerprint with --key"
  if [ -n "$passphrase_file" ]; then
    gpg_args+=(--pinentry-mode loopback --passphrase-file "$passphrase_file")
  fi
fi

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
# A provenance file of an earlier archive would not match this one.
rm -f "$out/$name.tar.gz.prov"
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

if [ -n "$key" ]; then
  {
    sed -e '$a\' "$stage/plugin.yaml"
    printf '\n...\nfiles:\n  %s: sha256:%s\n' "$name.tar.gz" "$(sum "$out/$name.tar.gz")"
  } >"$stage/message"
  gpg "${gpg_args[@]}" --yes --local-user "$key" --digest-algo SHA512 --armor \
    --output "$out/$name.tar.gz.prov" --clearsign "$stage/message" 2>"$stage/gpg.log" \
    || die "gpg could not sign with key '$key'${keyring:+ from $keyring}: $(cat "$stage/gpg.log")"
  gpg --batch --quiet --yes --output "$out/la-migrate-pubring.gpg" --export "$key" 2>"$stage/gpg.log" \
    || die "gpg could not export the public key of '$key': $(cat "$stage/gpg.log")"
  [ -s "$out/la-migrate-pubring.gpg" ] || die "gpg has no public key '$key'${keyring:+ in $keyring}"
fi

echo "$out/$name.tar.gz"
