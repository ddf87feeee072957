#!/usr/bin/env bash
# The run behind examples/cost-report.md: a sandbox whose virtual node runs on the ECI emulator, three
# Jenkins-shaped builds of two jobs on it, then every cost report the document shows.
#
#   bash examples/cost-report-demo.sh [VNODE] [WORK_DIR]
#
# VNODE is the vnode command (default: vnode on PATH); WORK_DIR (default: a new temporary directory; it must not hold
# a sandbox state already, or its ledger's pods would join the report) receives state/ (the sandbox: kubeconfig, CA,
# the cost ledger state/cost/ledger.sqlite3), pods.yaml, cost.html and sandbox.log. Each command is printed on stdout
# as `$ COMMAND` followed by its output, as the document shows it; progress notes go to stderr. Needs kubectl.
set -euo pipefail
vnode=${1:-vnode}
work=${2:-$(mktemp -d "${TMPDIR:-/tmp}/vnode-cost-demo.XXXXXX")}
if [[ "$vnode" == */* ]]; then   # the document's commands say `vnode`: put the given one first on PATH
  PATH="$(cd "$(dirname "$vnode")" && pwd):$PATH"
  vnode=$(basename "$vnode")
fi
[ "$vnode" = vnode ] || { echo "the vnode command must be called vnode, not $vnode" >&2; exit 2; }
command -v kubectl >/dev/null || { echo "kubectl not found: install it to run this demo" >&2; exit 2; }
mkdir -p "$work"
cd "$work"
[ ! -e state ] || { echo "$work already holds a sandbox state: give a new directory" >&2; exit 2; }

note() { echo "# $*" >&2; }
# Print a command as the document shows it, then run it.
show() { echo "\$ $1"; eval "$1"; }

# The emulator's runtime is docker when a Docker engine answers; a socket that does not exist forces the sim
# runtime, in which nothing runs and VNODE_SIM_RUN_SECONDS ends each container. A free kubelet port (0) keeps clear
# of a kubelet on this host; a 1 s status poll (default 5 s) brings each ECI state change to the ledger sooner.
DOCKER_HOST=unix:///nonexistent VNODE_KUBELET__PORT=0 VNODE_PROVIDER__STATUS_POLL_SECONDS=1 \
  vnode sandbox --provider eci --state-dir state --api-port 0 >sandbox.log 2>&1 &
sandbox=$!
trap 'kill -TERM "$sandbox" 2>/dev/null; wait "$sandbox" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 300); do
  grep -q "vnode sandbox ready:" sandbox.log && break
  kill -0 "$sandbox" 2>/dev/null || { cat sandbox.log >&2; exit 1; }
  sleep 0.1
done
grep -q "vnode sandbox ready:" sandbox.log || { cat sandbox.log >&2; exit 1; }
note "$(grep "vnode sandbox ready:" sandbox.log)"
export KUBECONFIG=$PWD/state/kubeconfig

# One Jenkins agent pod as the kubernetes-plugin makes it: the run's URL as the runUrl/buildUrl annotations (what
# the cost report groups builds by), jenkins/label, the jnlp container beside a build container; the virtual node
# selected and its taint tolerated. Arguments: job, build number, pod suffix, seconds the containers run, the build
# container's cpu and memory requests, and `spot` for a preemptible instance.
agent_pod() {
  local job=$1 number=$2 suffix=$3 seconds=$4 cpu=$5 memory=$6 spot=${7:-}
  local run_url="job/${job//\//\/job\/}/$number/"
  local annotations="    runUrl: $run_url
    buildUrl: https://jenkins.example.com/$run_url"
  if [ "$spot" = spot ]; then
    annotations+="
    k8s.aliyun.com/eci-spot-strategy: SpotAsPriceGo"
  fi
  cat <<YAML
---
apiVersion: v1
kind: Pod
metadata:
  name: ${job##*/}-$number-$suffix
  namespace: ci
  labels:
    jenkins: agent
    jenkins/label: ${job//\//_}_$number-$suffix
  annotations:
$annotations
spec:
  restartPolicy: Never
  nodeSelector:
    type: virtual-kubelet
    vnode.io/provider: eci
  tolerations:
  - key: virtual-kubelet.io/provider
    operator: Equal
    value: eci
    effect: NoSchedule
  containers:
  - name: jnlp
    image: jenkins/inbound-agent:3355.v388858a_47b_33-3-jdk21
    env:
    - name: VNODE_SIM_RUN_SECONDS
      value: "$seconds"
    resources:
      requests: {cpu: 250m, memory: 512Mi}
  - name: build
    image: maven:3.9-eclipse-temurin-21
    command: [cat]
    tty: true
    env:
    - name: VNODE_SIM_RUN_SECONDS
      value: "$seconds"
    resources:
      requests: {cpu: $cpu, memory: $memory}
YAML
}

{
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ci\n'
  agent_pod team/app 41 k2x7q 4 1750m 3584Mi           # ECI rounds 2 vCPU / 4 GiB of requests to spec 2-4Gi
  agent_pod team/app 42 m9t3w 6 1750m 3584Mi
  agent_pod nightly-e2e 7 p4r8s 8 3750m 7680Mi         # 4-8Gi
  agent_pod nightly-e2e 7 v6b2n 3 1750m 3584Mi spot    # a second agent of the same build, on a spot instance
} >pods.yaml
show "kubectl apply -f pods.yaml"

note "waiting for the builds to finish (about 10 s)"
for _ in $(seq 1 240); do
  # Finished, and the final cost written on the pod (vnode.io/cost), for every agent pod.
  pending=$(kubectl get pods -n ci -o jsonpath='{range .items[*]}{.status.phase} {.metadata.annotations.vnode\.io/cost}{"\n"}{end}' |
            grep -cv '^\(Succeeded\|Failed\) [0-9]' || true)
  [ "$pending" = 0 ] && break
  sleep 0.5
done
[ "$pending" = 0 ] || { echo "the builds did not finish: see $work/sandbox.log" >&2; exit 1; }

show "kubectl get pods -n ci -o custom-columns='NAME:.metadata.name,PHASE:.status.phase,SPEC:.metadata.annotations.k8s\.aliyun\.com/eci-instance-spec,COST:.metadata.annotations.vnode\.io/cost'"
# Jenkins deletes an agent pod as soon as its build ends: the ledger keeps what it cost.
show "kubectl delete pods -n ci --all"
show "vnode cost report --db state/cost/ledger.sqlite3 --by build"
show "vnode cost report --db state/cost/ledger.sqlite3 --by job --format csv"
show "vnode cost report --db state/cost/ledger.sqlite3 --by namespace --format json"
show "vnode cost report --db state/cost/ledger.sqlite3 --by build --format html -o cost.html"
show "kubectl get --raw '/api/v1/nodes/vnode/proxy/cost/report?by=job'"
show "kubectl get --raw /api/v1/nodes/vnode/proxy/metrics | grep -E '^vnode_(cost|billed_seconds)_total'"
note "done: the sandbox's files, pods.yaml and cost.html are in $work"
