# shellcheck shell=bash
# Sourced by tests/tools/test-env.sh: gives the tests a Docker engine and the offline test images.
#
# docker_env_start uses the engine at DOCKER_HOST (else /var/run/docker.sock) when one answers. Otherwise it installs
# Debian's docker.io and busybox-static when missing and starts a private dockerd (vfs storage, no iptables, no bridge)
# whose data lives in .test-env/docker/. Then it builds vnode-test/pause:1 and vnode-test/tools:1 with `docker import`
# from a static busybox (no registry), unless images of the same recipe are there. docker_env_stop stops the private
# dockerd by its PID once the last concurrent run using it ends (runs register under .test-env/docker/users/).
# Exports DOCKER_HOST, VNODE_TEST_DOCKER_NETWORK, VNODE_TEST_PAUSE_IMAGE, VNODE_TEST_TOOLS_IMAGE; when no engine can
# be had outside CI, VNODE_TEST_DOCKER_UNAVAILABLE=<reason> instead (Docker tests skip). With CI set, that is fatal.
# Must not: stop or reconfigure an engine it did not start, or let dockerd write to this run's stdout/stderr.

_de_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
_de_env="$_de_root/.test-env"
_de_dir="$_de_env/docker"
_de_host=""
_de_private=0   # this run registered as a user of the private dockerd
_de_lock_fd=""
_de_locked=0

_de_say() { echo "docker-env: $*" >&2; }
_de_now() { date +%s.%N; }
_de_since() { awk -v a="$1" -v b="$(_de_now)" 'BEGIN { printf "%.1f", b - a }'; }

# Under CI a missing engine is an error, never a skip; locally the Docker tests skip with the reason.
_de_unavailable() {
  if [ -n "${CI:-}" ]; then
    _de_say "ERROR: $1"
    exit 1
  fi
  _de_say "WARNING: $1 — the Docker tests will be skipped"
  export VNODE_TEST_DOCKER_UNAVAILABLE="$1"
  return 1
}

_de_docker() { timeout 120 docker -H "$_de_host" "$@"; }

# An engine answers when the client gets the server's version (`docker version` fails without a server).
_de_answers() {
  command -v docker >/dev/null 2>&1 || return 1
  timeout 15 docker -H "$1" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

_de_static_busybox() {
  local candidate
  for candidate in ${VNODE_TEST_BUSYBOX:-} /bin/busybox /usr/bin/busybox; do
    # ldd fails on a static executable ("not a dynamic executable"): only a static busybox runs in a scratch image.
    if [ -x "$candidate" ] && ! ldd "$candidate" >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

_de_apt_install() {
  local log="$_de_env/apt.log" began
  began=$(_de_now)
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    _de_unavailable "$* missing and cannot be installed here (needs root and apt-get): sudo apt-get install $*"
    return 1
  fi
  _de_say "installing $* (log: ${log#"$_de_root"/})"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 "$@" >>"$log" 2>&1; then
    # A fresh machine may have no package lists yet.
    if ! { apt-get update -q >>"$log" 2>&1 &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 "$@" >>"$log" 2>&1; }
    then
      _de_unavailable "apt-get install $* failed (see $log)"
      return 1
    fi
  fi
  _de_say "installed $* in $(_de_since "$began") s"
}

# unix socket paths are limited to 107 bytes; containerd's sockets are the longest under the exec root.
_de_run_dir() {
  local longest="$_de_dir/exec/containerd/containerd-debug.sock"
  if [ "${#longest}" -le 107 ]; then
    echo "$_de_dir"
  else
    echo "/tmp/vnode-docker-$(printf %s "$_de_dir" | sha256sum | cut -c1-12)"
  fi
}

_de_proc_start() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

# The dockerd of the pidfile, if it is still that dockerd.
_de_dockerd_pid() {
  local pid
  pid=$(cat "$(_de_run_dir)/dockerd.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && echo "$pid"
}

_de_register() {
  mkdir -p "$_de_dir/users"
  _de_proc_start $$ >"$_de_dir/users/$$"
  _de_private=1
}

# Runs still using the private dockerd; entries of runs that died (killed without their traps) are dropped.
_de_live_users() {
  local entry pid count=0
  for entry in "$_de_dir"/users/*; do
    [ -e "$entry" ] || continue
    pid=${entry##*/}
    if [ "$(_de_proc_start "$pid")" = "$(cat "$entry")" ]; then
      count=$((count + 1))
    else
      rm -f "$entry"
    fi
  done
  echo "$count"
}

_de_start_dockerd() {
  local run pid began deadline
  run=$(_de_run_dir)
  _de_host="unix://$run/docker.sock"
  if pid=$(_de_dockerd_pid); then
    if _de_answers "$_de_host"; then
      _de_say "using the private dockerd already running (pid $pid)"
      _de_register
      return 0
    fi
    _de_say "the private dockerd (pid $pid) does not answer: restarting it"
    _de_stop_dockerd
  fi
  mkdir -p "$run" "$_de_dir/data"
  echo '{}' >"$_de_dir/daemon.json"   # keeps a host /etc/docker/daemon.json out of the private engine
  rm -f "$run/docker.sock"
  began=$(_de_now)
  # setsid: its own session, so a Ctrl-C in this terminal does not stop an engine another run may share. The lock's fd
  # is closed for it: an inherited flock would stay held as long as dockerd runs.
  setsid dockerd --data-root "$_de_dir/data" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
    -H "$_de_host" --config-file "$_de_dir/daemon.json" --storage-driver vfs \
    --iptables=false --ip6tables=false --bridge=none >"$_de_dir/dockerd.log" 2>&1 </dev/null {_de_lock_fd}>&- &
  pid=$!
  _de_register
  deadline=$(($(date +%s) + 60))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      _de_say "dockerd exited at start; last lines of $_de_dir/dockerd.log:"
      tail -n 15 "$_de_dir/dockerd.log" | sed 's/^/    /' >&2
      _de_unavailable "the private dockerd did not start (log: $_de_dir/dockerd.log)"
      return 1
    fi
    _de_answers "$_de_host" && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      _de_unavailable "the private dockerd did not answer within 60 s (log: $_de_dir/dockerd.log)"
      return 1
    fi
    sleep 0.1
  done
  _de_say "private dockerd (pid $pid) ready in $(_de_since "$began") s (log: ${_de_dir#"$_de_root"/}/dockerd.log)"
}

# SIGTERM lets dockerd stop its containers and its containerd; SIGKILL after a bound, then what it leaves running.
_de_stop_dockerd() {
  local run pid began child
  run=$(_de_run_dir)
  pid=$(_de_dockerd_pid) || return 0
  began=$(_de_now)
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    _de_say "dockerd (pid $pid) still running 30 s after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    child=$(cat "$run/exec/containerd/containerd.pid" 2>/dev/null || true)
    if [ -n "$child" ] && [ "$(cat "/proc/$child/comm" 2>/dev/null)" = containerd ]; then
      kill -KILL "$child" 2>/dev/null || true
    fi
    # The shims of our containers name our containerd's socket on their command line.
    for child in $(pgrep -f -- "-address $run/exec/containerd/containerd.sock" || true); do
      kill -KILL "$child" 2>/dev/null || true
    done
  fi
  _de_say "private dockerd (pid $pid) stopped in $(_de_since "$began") s"
}

# The pause image's PID 1: the kernel delivers no signal to a namespace's PID 1 that has no handler, so a bare
# `sleep` would ignore SIGTERM; the trap makes `docker stop` end it at once with status 0.
_de_pause_script() {
  cat <<'EOF'
#!/bin/sh
trap 'exit 0' TERM INT
while :; do sleep 2147483647 & wait $!; done
EOF
}

# Debian's busybox-static has no nohup applet; Jenkins' `container() { sh }` step wraps its script in nohup.
_de_nohup_script() {
  cat <<'EOF'
#!/bin/sh
[ $# -gt 0 ] || { echo 'usage: nohup COMMAND [ARG]...' >&2; exit 125; }
trap '' HUP
if [ -t 1 ]; then exec >>nohup.out; fi
if [ -t 2 ]; then exec 2>&1; fi
exec "$@"
EOF
}

# $1 rootfs, $2 static busybox: busybox with a symlink for each applet, and the directories every image has.
_de_rootfs_base() {
  local applet
  mkdir -p "$1"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,proc,sys,dev} || return 1
  chmod 1777 "$1/tmp" "$1/var/tmp" && cp "$2" "$1/bin/busybox" || return 1
  while read -r applet; do
    [ -e "$1/$applet" ] || [ -L "$1/$applet" ] || ln -s /bin/busybox "$1/$applet" || return 1
  done < <("$2" --list-full)
}

# $1 rootfs dir, $2 busybox, $3 tar to write
_de_build_pause() {
  _de_rootfs_base "$1" "$2" || return 1
  _de_pause_script >"$1/pause" && chmod 755 "$1/pause" || return 1
  tar -C "$1" --sort=name --mtime=@0 --numeric-owner --owner=0 --group=0 -cf "$3" .
}

_de_build_tools() {
  _de_rootfs_base "$1" "$2" || return 1
  if [ ! -e "$1/usr/bin/nohup" ]; then
    _de_nohup_script >"$1/usr/bin/nohup" && chmod 755 "$1/usr/bin/nohup" || return 1
  fi
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'jenkins:x:1000:1000:jenkins:/home/jenkins:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$1/etc/passwd" || return 1
  printf '%s\n' 'root:x:0:' 'jenkins:x:1000:' 'nogroup:x:65534:' >"$1/etc/group" || return 1
  mkdir -p "$1/home/jenkins/agent" || return 1
  # The agent's home belongs to uid 1000 (Jenkins' agent images run as it); tar sets owners, so no root is needed.
  tar -C "$1" --sort=name --mtime=@0 --numeric-owner --owner=0 --group=0 --exclude=./home/jenkins -cf "$3" . &&
    tar -C "$1" --sort=name --mtime=@0 --numeric-owner --owner=1000 --group=1000 -rf "$3" ./home/jenkins
}

_de_image_changes() {
  case "$1" in
    pause) printf '%s\n' 'CMD ["/pause"]' ;;
    tools) printf '%s\n' 'CMD ["sh"]' ;;
  esac
  echo 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
}

# $1 pause|tools, $2 image name, $3 busybox. The recipe (these functions and the busybox binary) is hashed into a
# label: an image carrying the same hash is reused, any change rebuilds it.
_de_image() {
  local kind=$1 image=$2 busybox=$3 recipe have work began change
  local -a changes=()
  recipe=$({ declare -f _de_rootfs_base "_de_build_$kind" _de_image_changes _de_pause_script _de_nohup_script
             _de_image_changes "$kind"; sha256sum <"$busybox"; } | sha256sum | cut -c1-16)
  have=$(_de_docker image inspect --format '{{index .Config.Labels "vnode.test.recipe"}}' "$image" 2>/dev/null || true)
  if [ "$have" = "$recipe" ]; then
    return 0
  fi
  began=$(_de_now)
  work="$_de_dir/build/$kind"
  rm -rf "$work" "$work.tar"
  mkdir -p "$work"
  if ! "_de_build_$kind" "$work/rootfs" "$busybox" "$work.tar"; then
    _de_unavailable "building the rootfs of $image failed (in $work)"
    return 1
  fi
  while read -r change; do changes+=(--change "$change"); done < <(_de_image_changes "$kind")
  changes+=(--change "LABEL vnode.test.recipe=$recipe")
  if ! _de_docker import "${changes[@]}" "$work.tar" "$image" >/dev/null; then
    _de_unavailable "docker import of $image failed"
    return 1
  fi
  rm -rf "$work" "$work.tar"
  _de_say "built $image in $(_de_since "$began") s"
}

_de_start_locked() {
  local need=() busybox
  command -v docker >/dev/null 2>&1 || need+=(docker.io)
  _de_static_busybox >/dev/null || need+=(busybox-static)
  if [ -n "${DOCKER_HOST:-}" ]; then
    _de_host=$DOCKER_HOST
  elif [ -S /var/run/docker.sock ]; then
    _de_host=unix:///var/run/docker.sock
  fi
  if [ -n "$_de_host" ] && [ "${#need[@]}" -gt 0 ]; then
    _de_apt_install "${need[@]}" || return 1
    need=()
  fi
  if [ -n "$_de_host" ] && _de_answers "$_de_host"; then
    export VNODE_TEST_DOCKER_NETWORK=bridge
  elif [ -n "${DOCKER_HOST:-}" ]; then
    _de_unavailable "DOCKER_HOST=$DOCKER_HOST is set but no Docker engine answers there"
    return 1
  else
    command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
    if [ "${#need[@]}" -gt 0 ]; then
      _de_apt_install "${need[@]}" || return 1
    fi
    _de_start_dockerd || return 1
    # The private engine has no bridge: a pod's sandbox gets only loopback.
    export VNODE_TEST_DOCKER_NETWORK=none
  fi
  export DOCKER_HOST=$_de_host
  busybox=$(_de_static_busybox) || { _de_unavailable "no static busybox (install busybox-static)"; return 1; }
  export VNODE_TEST_PAUSE_IMAGE=vnode-test/pause:1 VNODE_TEST_TOOLS_IMAGE=vnode-test/tools:1
  _de_image pause "$VNODE_TEST_PAUSE_IMAGE" "$busybox" || return 1
  _de_image tools "$VNODE_TEST_TOOLS_IMAGE" "$busybox" || return 1
  if [ "$VNODE_TEST_DOCKER_NETWORK" = none ]; then
    # The private engine pulls nothing: it gets examples/build-pod.yaml's image (busybox) from the tools image, so
    # `make run` can be tested on it. A developer's own engine is never retagged.
    _de_docker tag "$VNODE_TEST_TOOLS_IMAGE" busybox:1.36 || return 1
  fi
}

# Concurrent runs in one checkout share the private engine: start, image builds and stop take turns.
_de_lock() {
  [ "$_de_locked" = 1 ] && return 0
  mkdir -p "$_de_dir"
  exec {_de_lock_fd}>"$_de_dir/lock"
  flock -w "$1" "$_de_lock_fd" || { exec {_de_lock_fd}>&-; return 1; }
  _de_locked=1
}

_de_unlock() {
  [ "$_de_locked" = 1 ] || return 0
  exec {_de_lock_fd}>&-
  _de_locked=0
}

docker_env_start() {
  local began
  began=$(_de_now)
  unset VNODE_TEST_DOCKER_UNAVAILABLE
  if ! _de_lock 600; then
    _de_unavailable "timed out waiting for $_de_dir/lock (another run holds it)" || return 0
  fi
  _de_start_locked || true
  _de_unlock
  if [ -z "${VNODE_TEST_DOCKER_UNAVAILABLE:-}" ]; then
    _de_say "engine $DOCKER_HOST ready with test images in $(_de_since "$began") s"
  fi
}

# For the EXIT trap: stop the private dockerd if this run was the last one using it. Never fails.
docker_env_stop() {
  [ "$_de_private" = 1 ] || return 0
  _de_private=0
  if ! _de_lock 120; then
    _de_say "WARNING: $_de_dir/lock held for 2 min; going on without it"
  fi
  rm -f "$_de_dir/users/$$"
  if [ "$(_de_live_users)" = 0 ]; then
    _de_stop_dockerd
  else
    _de_say "leaving the private dockerd running for the other runs using it"
  fi
  _de_unlock
}
