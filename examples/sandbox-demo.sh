#!/usr/bin/env bash
# `make run`: start the sandbox (API server + virtual node), run examples/build-pod.yaml on the virtual node, show
# its status and logs, keep the sandbox in the foreground until Ctrl-C, and end by printing what the example build
# cost so far (`vnode cost report --by build` on the sandbox's cost ledger).
set -euo pipefail
vnode=${1:-vnode}
state=${VNODE_STATE_DIR:-.vnode/sandbox}
mkdir -p "$state"
log="$state/sandbox.log"
# Where `vnode sandbox` keeps its cost ledger unless VNODE_COST__DB_PATH says otherwise.
ledger=${VNODE_COST__DB_PATH:-$state/cost/ledger.sqlite3}
# Real containers when a Docker engine answers (VNODE_PROVIDER__KIND=mock or docker chooses explicitly).
if [ -z "${VNODE_PROVIDER__KIND:-}" ] && command -v docker >/dev/null && docker version >/dev/null 2>&1; then
  export VNODE_PROVIDER__KIND=docker
fi
echo "vnode sandbox with the ${VNODE_PROVIDER__KIND:-mock} provider"

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
node=$(sed -n 's/.* node=\([^ ]*\).*/\1/p' "$log" | head -1)
built=0

if command -v kubectl >/dev/null; then
  built=1
  kubectl get nodes -o wide
  kubectl apply -f examples/build-pod.yaml
  phase=""
  for _ in $(seq 1 120); do   # until it runs or has finished (a real build pod finishes quickly)
    phase=$(kubectl get pod build-pod -o jsonpath='{.status.phase}')
    case "$phase" in Running|Succeeded|Failed) break ;; esac
    sleep 0.5
  done
  kubectl get pod build-pod -o wide
  echo "--- logs of build-pod:"
  kubectl logs build-pod
  if [ "$phase" = Running ]; then
    echo "--- a command run in build-pod with kubectl exec:"
    kubectl exec build-pod -- sh -c 'echo "hello from $(pwd)"'
  fi
else
  echo "kubectl not found: install it to talk to the sandbox."
fi
cat <<MSG

The sandbox keeps running. In another terminal:
  export KUBECONFIG=$kubeconfig
  kubectl get nodes; kubectl get pods -o wide; kubectl describe pod build-pod
  $vnode cost report --by build --db $ledger
  kubectl get --raw "/api/v1/nodes/$node/proxy/cost/report?by=build"
Press Ctrl-C to stop it (the sandbox log is $log).
MSG
if [ "$built" = 1 ]; then
  echo
  echo "--- cost of the example build so far (vnode cost report --by build):"
  "$vnode" cost report --by build --db "$ledger" || echo "(no cost report: see $log)"
fi
wait "$sandbox"
