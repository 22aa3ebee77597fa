#!/usr/bin/env bash
# Throwaway PostgreSQL and S3 (Ceph radosgw) servers on 127.0.0.1 for berth's tests.
#
#   eval "$(.ci/services.sh start)"     # exports BERTH_TEST_DATABASE_URL, BERTH_TEST_S3_* and
#                                        # BERTH_SERVICES_DIR; prints what it could not start
#   .ci/services.sh logs "$BERTH_SERVICES_DIR"    # the servers' logs, after a failure
#   .ci/services.sh stop "$BERTH_SERVICES_DIR"
#
# Needs Debian's packages: postgresql, and radosgw ceph-mon ceph-osd (--no-install-recommends).
# Everything lives in one temporary folder: the PostgreSQL cluster (fsync off) and a one-node
# Ceph cluster whose OSD keeps objects in memory (memstore), with daemon auth off. Both servers
# listen on 127.0.0.1 only. As root, PostgreSQL runs as the `postgres` user.
set -euo pipefail
cmd=${1:-start}
# Fresh ports each start (unless given): a daemon of an earlier cluster still shutting down can
# never answer in place of this one's (seen: an OSD told "wrong fsid" by a stale monitor).
# Below Linux's ephemeral range (32768+), where a client socket could hold the port.
random_port() { echo $((20000 + RANDOM % 12000)); }
PG_PORT=${BERTH_PG_PORT:-$(random_port)}
RGW_PORT=${BERTH_RGW_PORT:-$(random_port)}
MON_PORT=${BERTH_MON_PORT:-$(random_port)}
# The memstore OSD holds every object in RAM: keep test objects small.
STORE_BYTES=${BERTH_RGW_STORE_BYTES:-$((2 * 1024 * 1024 * 1024))}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

# Whether a process still runs: a zombie whose threads all ended does not (one left as a
# zombie under PID 1 is harmless), but a zombie leader with live threads does.
running() {
  local pid=$1 state threads
  state=$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1 || true)
  [ -n "$state" ] || return 1
  threads=$(ls "/proc/$pid/task" 2>/dev/null | wc -l)
  [ "$state" != Z ] || [ "$threads" -gt 1 ]
}

# Waits up to 10 s for every pid to stop running; fails if one still does.
wait_gone() {
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "$@"; do running "$pid" && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.2
  done
  return 1
}

stop() {
  local dir=${1:?usage: services.sh stop DIR}
  local bin
  bin=$(pg_bin)
  if [ -d "$dir/pg/data" ] && [ -n "$bin" ]; then
    as_postgres "$bin/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  local pids
  pids=$(cat "$dir"/ceph/*.pid 2>/dev/null || true)
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  wait_gone $pids || { for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done; wait_gone $pids || true; }
  rm -rf "$dir"
}

# Whether something accepts connections on 127.0.0.1:PORT (bash's /dev/tcp: no curl needed).
listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A server left listening (an earlier start not stopped yet) would answer in place of ours.
assert_free() {
  local port=$1
  if listening "$port"; then
    echo "services: 127.0.0.1:$port is in use; stop the earlier services first" >&2
    exit 1
  fi
}

start_postgres() {
  local dir=$1 bin
  bin=$(pg_bin)
  [ -n "$bin" ] || { echo "echo 'services: no PostgreSQL (apt-get install postgresql)' >&2"; return; }
  mkdir -p "$dir/pg"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/pg"
  as_postgres "$bin/initdb" -D "$dir/pg/data" -U postgres -A trust --no-sync -E UTF8 \
    --locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1 || { cat "$dir/pg/initdb.log" >&2; exit 1; }
  as_postgres "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $dir/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$dir/pg/server.log" >&2; exit 1; }
  as_postgres "$bin/psql" -h "$dir/pg" -p "$PG_PORT" -U postgres -qc "create database berth_test" >/dev/null
  echo "export BERTH_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/berth_test"
}

start_radosgw() {
  local dir=$1/ceph
  command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null || {
    echo "echo 'services: no radosgw (apt-get install --no-install-recommends radosgw ceph-mon ceph-osd)' >&2"
    return
  }
  mkdir -p "$dir/run" "$dir/mon.a" "$dir/osd.0" "$dir/rgw.a"
  local fsid osd_uuid osd
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon allow pool delete = true
osd objectstore = memstore
memstore device bytes = $STORE_BYTES
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/\$name.log
pid file = $dir/\$name.pid
keyring = $dir/keyring
[mon.a]
mon data = $dir/mon.a
[osd.0]
osd data = $dir/osd.0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $dir/rgw.a
rgw dns name = 127.0.0.1
CONF
  local c=(-c "$dir/ceph.conf")
  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$MON_PORT]" "$dir/monmap" >/dev/null
  ceph-mon "${c[@]}" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
  ceph-mon "${c[@]}" -i a
  # The OSD's uuid must be the one registered with the monitor, or its boot is ignored.
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  osd=$(ceph "${c[@]}" osd create "$osd_uuid")
  ceph-osd "${c[@]}" -i "$osd" --mkfs --osd-uuid "$osd_uuid" >"$dir/osd-mkfs.log" 2>&1
  ceph "${c[@]}" osd crush add "osd.$osd" 1 root=default host=localhost >/dev/null 2>&1 || true
  ceph-osd "${c[@]}" -i "$osd"
  for _ in $(seq 1 60); do
    ceph "${c[@]}" osd stat 2>/dev/null | grep -q '1 up' && break
    sleep 0.5
  done
  ceph "${c[@]}" osd stat | grep -q '1 up' || { echo "services: the Ceph OSD did not come up" >&2; exit 1; }
  radosgw "${c[@]}" -n client.rgw.a
  for _ in $(seq 1 120); do
    listening "$RGW_PORT" && break
    sleep 0.5
  done
  listening "$RGW_PORT" ||
    { echo "services: radosgw did not start; see $dir/client.rgw.a.log" >&2; exit 1; }
  timeout 60 radosgw-admin "${c[@]}" user create --uid=berth-test --display-name=berth-test \
    --access-key=berthtest --secret=berthtestsecret >/dev/null
  # This cluster's own daemons answered: its monitor has its fsid, its gateway logs here.
  [ "$(ceph "${c[@]}" fsid 2>/dev/null)" = "$fsid" ] && [ -f "$dir/client.rgw.a.log" ] ||
    { echo "services: the Ceph cluster in $dir is not the one answering" >&2; exit 1; }
  echo "export BERTH_TEST_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT BERTH_TEST_S3_KEY=berthtest BERTH_TEST_S3_SECRET=berthtestsecret"
}

# The servers' own logs, when something failed (printed by .ci/run before it stops them).
logs() {
  local dir=${1:?usage: services.sh logs DIR}
  for log in "$dir"/pg/server.log "$dir"/ceph/*.log; do
    [ -f "$log" ] || continue
    echo "=== $log (last 40 lines)"
    tail -n 40 "$log"
  done
}

case "$cmd" in
  logs)
    logs "${2:-${BERTH_SERVICES_DIR:-}}"
    ;;
  start)
    for port in "$PG_PORT" "$RGW_PORT" "$MON_PORT"; do assert_free "$port"; done
    dir=$(mktemp -d /tmp/berth-services.XXXXXX)
    chmod 755 "$dir"
    # A start that fails part-way leaves nothing running.
    trap 'stop "$dir" >/dev/null 2>&1' EXIT
    echo "export BERTH_SERVICES_DIR=$dir"
    start_postgres "$dir"
    start_radosgw "$dir"
    trap - EXIT
    ;;
  stop)
    stop "${2:-${BERTH_SERVICES_DIR:-}}"
    ;;
  *)
    echo "usage: services.sh start | logs DIR | stop DIR" >&2
    exit 2
    ;;
esac
