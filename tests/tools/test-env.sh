#!/usr/bin/env bash
# Provision what the tests need, then run the given command (pytest) with it.
# Finds kubectl and the version-suffixed binaries installed beside it (kubectl.1.27 ... kubectl.1.33) and exports
# VNODE_TEST_KUBECTL_DIR. Under CI=true anything missing is an error, never a skip.
set -euo pipefail

fail() { echo "test-env: $*" >&2; exit 1; }

kubectl_path=$(command -v kubectl || true)
if [ -z "$kubectl_path" ]; then
  fail "kubectl is not installed. The tests drive real kubectl 1.27, 1.29, 1.31 and 1.33 (kubectl.1.27 ... kubectl.1.33 beside kubectl, as the Google Cloud SDK's kubectl package installs them)."
fi
kubectl_dir=$(dirname "$(readlink -f "$kubectl_path")")
for v in 1.27 1.29 1.31 1.33; do
  [ -x "$kubectl_dir/kubectl.$v" ] || fail "kubectl.$v not found beside $kubectl_path ($kubectl_dir)"
done
export VNODE_TEST_KUBECTL_DIR="$kubectl_dir"

exec "$@"
