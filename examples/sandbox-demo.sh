#!/usr/bin/env bash
# `make run`: start the sandbox (API server + virtual node), run examples/build-pod.yaml on the virtual node, show
# its status and logs, then keep the sandbox in the foreground until Ctrl-C.
set -euo pipefail
vnode=${1:-vnode}
state=${VNODE_STATE_DIR:-.vnode/sandbox}
mkdir -p "$state"
log="$state/sandbox.log"

"$vnode" sandbox --state-dir "$state" "${@:2}" >"$log" 2>&1 &
sandbox=$!
trap 'kill -TERM "$sandbox" 2>/dev/null; wait "$sandbox" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 300); do
  grep -q "vnode sandbox ready:" "$log" && break
  kill -0 "$sandbox" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
grep "vnode sandbox ready:" "$log" || { cat "$log"; exit 1; }
kubeconfig=$(sed -n 's/.*kubeconfig=\([^ ]*\).*/\1/p' "$log" | head -1)
export KUBECONFIG=$kubeconfig

if command -v kubectl >/dev/null; then
  kubectl get nodes -o wide
  kubectl apply -f examples/build-pod.yaml
  kubectl wait --for=condition=Ready pod/build-pod --timeout=60s || true
  kubectl get pod build-pod -o wide
  echo "--- logs of build-pod:"
  kubectl logs build-pod
  echo "--- a command run in build-pod with kubectl exec:"
  kubectl exec build-pod -- sh -c 'echo "hello from $(pwd)"'
else
  echo "kubectl not found: install it to talk to the sandbox."
fi
cat <<MSG

The sandbox keeps running. In another terminal:
  export KUBECONFIG=$kubeconfig
  kubectl get nodes; kubectl get pods -o wide; kubectl describe pod build-pod
Press Ctrl-C to stop it (the sandbox log is $log).
MSG
wait "$sandbox"
