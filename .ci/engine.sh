#!/usr/bin/env bash
# A private Docker engine for berth's container tests, beside whatever else runs on the machine.
#
#   eval "$(.ci/engine.sh start)"    # exports DOCKER_HOST, BERTH_ENGINE_DIR and
#                                     # BERTH_TEST_DOCKER_CA_BUNDLE (see below); the engine is
#                                     # a one-node Swarm manager
#   .ci/engine.sh logs "$BERTH_ENGINE_DIR"   # the daemon's log, after a failure
#   .ci/engine.sh stop "$BERTH_ENGINE_DIR"   # removes its containers, stops the daemon
#
# Needs Debian's docker.io (installed with apt when missing; Debian's /usr/bin/docker matches its
# daemon's API). The engine keeps everything under one folder, BERTH_ENGINE_DIR (default
# /var/cache/berth-ci/engine): its data (images and build cache, kept between runs so that a
# second build is cached), its exec root, pid file and socket. It has a bridge of its own, so
# that another engine on the machine (its docker0, its addresses) is never touched, and its
# containers are kept under this process's own cgroup, so that whatever cleans up the session
# that started it finds them.
#
# Builds behind a TLS-intercepting proxy need its CA inside the build: `start` copies the bundle
# this machine's Node trusts (NODE_EXTRA_CA_CERTS, else Debian's bundle) into the repository as
# .ci/ca-bundle.crt (not committed) and exports its path, for `--build-arg NPM_CA_BUNDLE=…`.
set -euo pipefail
cmd=${1:-start}
DIR=${2:-${BERTH_ENGINE_DIR:-/var/cache/berth-ci/engine}}
DOCKER=/usr/bin/docker
REPO=$(cd "$(dirname "$0")/.." && pwd)

sock() { echo "unix://$1/docker.sock"; }

# The bridge's name, from the folder: two engines with different folders never share one.
# (Interface names are at most 15 characters.)
bridge_of() {
  echo "berth$(echo -n "$1" | md5sum | cut -c1-8)"
}

answers() {
  DOCKER_HOST=$(sock "$1") timeout 10 $DOCKER version >/dev/null 2>&1
}

# A /24 that no address or route of this machine overlaps, for the engine's bridge.
free_subnet() {
  local taken
  taken=$(ip -4 route show table all 2>/dev/null; ip -4 addr show 2>/dev/null)
  for third in $(seq 20 250); do
    if ! grep -q "10\.213\.$third\." <<<"$taken"; then
      echo "10.213.$third"
      return
    fi
  done
  echo "engine: no free 10.213.x.0/24 for the bridge" >&2
  exit 1
}

install_engine() {
  command -v dockerd >/dev/null && [ -x $DOCKER ] && return
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
}

start() {
  local dir=$1 bridge subnet mtu uplink parent pid
  install_engine
  mkdir -p "$dir"
  chmod 700 "$dir"
  bridge=$(bridge_of "$dir")
  if ! answers "$dir"; then
    # A daemon killed without cleaning up leaves its pid file, which would refuse the next start.
    if [ -f "$dir/dockerd.pid" ]; then
      pid=$(cat "$dir/dockerd.pid")
      if kill -0 "$pid" 2>/dev/null; then
        echo "engine: dockerd $pid of $dir runs but does not answer; see $dir/dockerd.log" >&2
        exit 1
      fi
      rm -f "$dir/dockerd.pid"
    fi
    if ! ip link show "$bridge" >/dev/null 2>&1; then
      subnet=$(free_subnet)
      ip link add "$bridge" type bridge
      ip addr add "$subnet.1/24" dev "$bridge"
    fi
    ip link set "$bridge" up
    # Containers' packets leave through the default route's interface: a larger MTU inside
    # than on it stalls TLS transfers (npm through the proxy) on packets that never arrive.
    uplink=$(ip -4 route show default | awk '{print $5; exit}')
    mtu=$(cat "/sys/class/net/${uplink:-lo}/mtu" 2>/dev/null || echo 1500)
    [ "$mtu" -le 1500 ] || mtu=1500
    # cgroup v1 names the memory controller; v2 has one hierarchy ("0::/path").
    parent=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
    [ -n "$parent" ] || parent=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
    parent="${parent%/}/berth-engine"
    # Swarm tasks use the node's own image rather than asking a registry first (there is none).
    DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 nohup dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
      -H "$(sock "$dir")" --bridge "$bridge" --mtu "$mtu" --cgroup-parent "$parent" \
      >"$dir/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 150); do
      answers "$dir" && break
      sleep 0.2
    done
    if ! answers "$dir"; then
      echo "engine: dockerd did not answer; see $dir/dockerd.log" >&2
      tail -n 20 "$dir/dockerd.log" >&2
      # A start that failed leaves nothing running.
      stop "$dir"
      exit 1
    fi
    # The build cache is kept between runs; untagged layers built over a week ago go (so a
    # build starts uncached about once a week, and the folder does not grow without end).
    DOCKER_HOST=$(sock "$dir") $DOCKER image prune -f --filter until=168h >/dev/null 2>&1 || true
  fi
  # A one-node swarm for the swarm scheduler's tests (BERTH_SCHEDULER=swarm): its own address
  # only, so nothing outside this machine can join it. Its gateway bridge is made first, as the
  # engine's own bridge is: a subnet no route of this machine uses and an interface of its own
  # (the engine would take docker_gwbridge and 172.18.0.0/16, whoever else has them).
  if [ "$(DOCKER_HOST=$(sock "$dir") $DOCKER info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    if ! DOCKER_HOST=$(sock "$dir") $DOCKER network inspect docker_gwbridge >/dev/null 2>&1; then
      DOCKER_HOST=$(sock "$dir") $DOCKER network create --subnet "$(free_subnet).0/24" \
        --opt com.docker.network.bridge.name="$(bridge_of "$dir")g" \
        --opt com.docker.network.bridge.enable_icc=false \
        --opt com.docker.network.bridge.enable_ip_masquerade=true docker_gwbridge >/dev/null
    fi
    if ! DOCKER_HOST=$(sock "$dir") $DOCKER swarm init --advertise-addr 127.0.0.1 \
      --listen-addr 127.0.0.1:2377 >/dev/null; then
      echo "engine: docker swarm init failed; see $dir/dockerd.log" >&2
      stop "$dir"
      exit 1
    fi
  fi
  cp "${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}" "$REPO/.ci/ca-bundle.crt"
  echo "export DOCKER_HOST=$(sock "$dir") BERTH_ENGINE_DIR=$dir"
  echo "export BERTH_TEST_DOCKER_CA_BUNDLE=.ci/ca-bundle.crt"
}

stop() {
  local dir=$1 pid ids
  export DOCKER_HOST
  DOCKER_HOST=$(sock "$dir")
  if answers "$dir"; then
    $DOCKER swarm leave --force >/dev/null 2>&1 || true
    ids=$($DOCKER ps -aq)
    [ -z "$ids" ] || $DOCKER rm -f $ids >/dev/null
  fi
  if [ -f "$dir/dockerd.pid" ]; then
    pid=$(cat "$dir/dockerd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/dockerd.pid"
    fi
  fi
  umount "$dir/exec/netns/default" 2>/dev/null || true
  ip link del "$(bridge_of "$dir")" 2>/dev/null || true
  # The swarm's gateway bridge, which leaving the swarm keeps.
  ip link del "$(bridge_of "$dir")g" 2>/dev/null || true
}

case "$cmd" in
  start) start "$DIR" ;;
  stop) stop "$DIR" ;;
  logs) tail -n 60 "$DIR/dockerd.log" ;;
  *)
    echo "usage: engine.sh start [DIR] | logs [DIR] | stop [DIR]" >&2
    exit 2
    ;;
esac
