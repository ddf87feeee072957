#!/usr/bin/env bash
# Provision what the tests need, then run the given command (pytest) with it.
# Finds kubectl and the version-suffixed binaries installed beside it (kubectl.1.27 ... kubectl.1.33) and exports
# VNODE_TEST_KUBECTL_DIR. Gives the tests a Docker engine and the offline test images (docker-env.sh), and stops a
# private dockerd it started when the command ends, pass or fail. Under CI=true anything missing is an error, never a
# skip. Exits with the command's status.
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

# The e2e cost test opens the HTML report in headless Chromium: Debian's chromium, installed when missing like
# docker.io. Exports VNODE_TEST_CHROMIUM; without it (no root or apt-get) that test skips, under CI it fails here.
chromium_path=${VNODE_TEST_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium_path" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  mkdir -p "$root/.test-env"
  apt_log="$root/.test-env/apt.log"
  echo "test-env: installing chromium (log: .test-env/apt.log)" >&2
  install_chromium() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 chromium >>"$apt_log" 2>&1
  }
  # A fresh machine may have no package lists yet.
  install_chromium || { apt-get update -q >>"$apt_log" 2>&1 && install_chromium; } ||
    echo "test-env: apt-get install chromium failed (see $apt_log)" >&2
fi
if [ -x "$chromium_path" ]; then
  export VNODE_TEST_CHROMIUM="$chromium_path"
elif [ -n "${CI:-}" ]; then
  fail "chromium is not installed at $chromium_path (the HTML cost report is checked in headless Chromium): apt-get install chromium"
else
  echo "test-env: WARNING: no chromium at $chromium_path — the HTML report check will be skipped" >&2
fi

# shellcheck source=tests/tools/docker-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/docker-env.sh"
trap docker_env_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
docker_env_start

# The command runs in the background so that a SIGTERM sent to this script alone reaches it and the EXIT trap still
# runs. A non-interactive shell starts background commands with SIGINT ignored and stdin from /dev/null: restore both,
# so Ctrl-C (which the terminal sends to the whole process group, the command included) interrupts it as usual.
env --default-signal=INT,QUIT "$@" <&0 &
command_pid=$!
signalled=0
trap 'signalled=1' INT
trap 'signalled=1; kill -TERM "$command_pid" 2>/dev/null || true' TERM
while :; do
  signalled=0
  status=0
  wait "$command_pid" || status=$?
  # A trapped signal interrupts `wait` (status 128+N) while the command may still run: wait again for its status.
  [ "$signalled" = 1 ] || break
done
# The suite must leave nothing in the engine: every test node is named test-* (benchmarks bench-*).
if [ "$status" = 0 ] && [ -n "${DOCKER_HOST:-}" ]; then
  left=$(timeout 60 docker -H "$DOCKER_HOST" ps -a --filter label=vnode.io/node \
         --format '{{.Label "vnode.io/node"}} {{.Names}}' | grep -E '^(test|bench)-' || true)
  if [ -n "$left" ]; then
    echo "test-env: the tests left containers in the engine (node, container):" >&2
    echo "$left" >&2
    status=1
  fi
fi
exit "$status"
