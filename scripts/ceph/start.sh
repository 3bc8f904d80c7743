#!/usr/bin/env bash
# Starts a throw-away one-node Ceph cluster serving S3 (RADOS Gateway) on 127.0.0.1 for the tests.
# One ceph-mon, one ceph-osd (BlueStore on a sparse file), one radosgw; no systemd, no cephx.
#
#   scripts/ceph/install.sh            # once: apt packages (~1 min)
#   scripts/ceph/start.sh              # ~10 s; prints the S3_* settings, writes them to $CEPH_DIR/env
#   set -a; . "${CEPH_DIR:-/tmp/simple-registry-ceph}/env"; set +a
#   scripts/ceph/stop.sh               # kills exactly the PIDs it started, removes $CEPH_DIR
#
# Running it again while the cluster is up only prints the settings again (a cluster started by
# an older version of this script, without tcp_nodelay, is restarted).
# Knobs (env): CEPH_DIR (/tmp/simple-registry-ceph), RGW_PORT (7480), MON_PORT (3300, +1 for
# msgr1), CEPH_STORE_BYTES (16 GiB, sparse), S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET (registry).
set -Eeuo pipefail

CEPH_DIR=${CEPH_DIR:-/tmp/simple-registry-ceph}
RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${MON_PORT:-3300}
STORE_BYTES=${CEPH_STORE_BYTES:-17179869184}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-registrytest}
S3_SECRET_KEY=${S3_SECRET_KEY:-registrytestsecret}
S3_BUCKET=${S3_BUCKET:-registry}
HOST=127.0.0.1
ENDPOINT=http://$HOST:$RGW_PORT
MON_ADDRV="[v2:$HOST:$MON_PORT,v1:$HOST:$((MON_PORT + 1))]"
HERE=$(cd "$(dirname "$0")" && pwd)

for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph curl; do
  command -v "$b" >/dev/null || { echo "start.sh: missing $b; run scripts/ceph/install.sh" >&2; exit 1; }
done

# Already running (every saved PID alive and the gateway answering)? Print the settings again.
if [ -s "$CEPH_DIR/pids" ] && [ -s "$CEPH_DIR/env" ]; then
  alive=1
  while read -r _ pid; do kill -0 "$pid" 2>/dev/null || alive=0; done <"$CEPH_DIR/pids"
  if [ "$alive" = 1 ] && ! grep -q 'tcp_nodelay=1' "$CEPH_DIR/ceph.conf" 2>/dev/null; then
    echo "start.sh: the cluster in $CEPH_DIR runs without tcp_nodelay; restarting it" >&2
  elif [ "$alive" = 1 ] && curl -fsS -o /dev/null "$ENDPOINT/"; then
    cat "$CEPH_DIR/env"
    exit 0
  else
    echo "start.sh: stale cluster in $CEPH_DIR; stopping it first" >&2
  fi
  CEPH_DIR=$CEPH_DIR "$HERE/stop.sh"
fi
for port in "$MON_PORT" "$((MON_PORT + 1))" "$RGW_PORT"; do
  if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
    echo "start.sh: port $HOST:$port is already in use; set MON_PORT / RGW_PORT" >&2
    exit 1
  fi
done

t0=$(date +%s%N)
log() {
  local ms=$((($(date +%s%N) - t0) / 1000000))
  printf '[%3d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*" >&2
}
rm -rf "$CEPH_DIR"
mkdir -p "$CEPH_DIR"/{run,log,mon.a,osd.0,rgw.a,crash}
CONF=$CEPH_DIR/ceph.conf
PIDS=$CEPH_DIR/pids
: >"$PIDS"

fail() {
  trap - ERR
  echo "start.sh: $*" >&2
  for f in "$CEPH_DIR"/log/*; do echo "--- $f" >&2; tail -n 15 "$f" >&2; done
  CEPH_DIR=$CEPH_DIR KEEP_CEPH_DIR=1 "$HERE/stop.sh" || true
  exit 1
}
trap 'fail "command failed (line $LINENO)"' ERR
# wait_for SECONDS PID WHAT CMD...: polls CMD until it succeeds; gives up when PID dies.
wait_for() {
  local secs=$1 pid=$2 what=$3
  shift 3
  local end=$(($(date +%s) + secs))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || fail "$what: process $pid exited"
    [ "$(date +%s)" -lt "$end" ] || fail "$what: not ready after ${secs}s"
    sleep 0.3
  done
}

FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
cat >"$CONF" <<CONF
[global]
fsid = $FSID
mon host = $MON_ADDRV
public addr = $HOST
cluster addr = $HOST
ms bind ipv6 = false
# Test cluster: no cephx. radosgw defaults to ms_mon_client_mode=secure, which needs cephx.
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
run dir = $CEPH_DIR/run
log file = $CEPH_DIR/log/\$name.log
mon cluster log file = $CEPH_DIR/log/cluster.log
crash dir = $CEPH_DIR/crash
keyring = $CEPH_DIR/keyring
mon data = $CEPH_DIR/mon.\$id
osd data = $CEPH_DIR/osd.\$id
rgw data = $CEPH_DIR/rgw.\$id
# One OSD: size-1 pools, few PGs, no redundancy warnings.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
# Commit cluster-map changes quickly (radosgw creates its pools as a series of them).
paxos propose interval = 0.1
mon data avail warn = 2
mon data avail crit = 1
mon osd full ratio = 0.97
mon osd backfillfull ratio = 0.96
mon osd nearfull ratio = 0.95
osd objectstore = bluestore
bluestore block path = $CEPH_DIR/osd.\$id/block.file
bluestore block create = true
bluestore block size = $STORE_BYTES
bluestore fsck on mount = false
osd memory target = 939524096
osd op num shards = 1
osd op num threads per shard = 2

[client.rgw.a]
# tcp_nodelay: without it every response with a body waits for the client's delayed ACK (Nagle on
# RGW's side), ~40 ms per GET, which would dominate every S3 figure and test.
rgw frontends = beast endpoint=$HOST:$RGW_PORT tcp_nodelay=1
rgw thread pool size = 64
rgw dynamic resharding = false
rgw enable usage log = false
rgw enable ops log = false
# Reclaim deleted objects' data within seconds (default: after 2 h), or repeated 1 GiB test
# pushes fill the OSD and every write blocks.
rgw gc obj min wait = 5
rgw gc processor period = 10
rgw gc processor max time = 10
CONF
C=(-c "$CONF")
cli() { timeout 60 ceph "${C[@]}" "$@"; }

monmaptool --create --fsid "$FSID" --addv a "$MON_ADDRV" "$CEPH_DIR/monmap" >/dev/null
ceph-mon "${C[@]}" -i a --mkfs --monmap "$CEPH_DIR/monmap" >"$CEPH_DIR/log/mon.mkfs.out" 2>&1
ceph-mon "${C[@]}" -i a -f >"$CEPH_DIR/log/mon.a.out" 2>&1 &
MON_PID=$!
echo "mon.a $MON_PID" >>"$PIDS"
wait_for 60 "$MON_PID" "ceph-mon" cli mon stat
log "mon up ($MON_PID)"

OSD_ID=$(cli osd new "$OSD_UUID")
ceph-osd "${C[@]}" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >"$CEPH_DIR/log/osd.mkfs.out" 2>&1
ceph-osd "${C[@]}" -i "$OSD_ID" -f >"$CEPH_DIR/log/osd.$OSD_ID.out" 2>&1 &
OSD_PID=$!
echo "osd.$OSD_ID $OSD_PID" >>"$PIDS"
osd_up() { cli osd dump | grep -q "^osd.$OSD_ID up"; }
wait_for 120 "$OSD_PID" "ceph-osd" osd_up
log "osd.$OSD_ID up ($OSD_PID)"

radosgw "${C[@]}" -n client.rgw.a -f >"$CEPH_DIR/log/rgw.a.out" 2>&1 &
RGW_PID=$!
echo "rgw.a $RGW_PID" >>"$PIDS"
wait_for 180 "$RGW_PID" "radosgw" curl -fsS -o /dev/null "$ENDPOINT/"
log "radosgw up ($RGW_PID) on $HOST:$RGW_PORT"

timeout 60 radosgw-admin "${C[@]}" user create --uid=registry --display-name=registry \
  --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >"$CEPH_DIR/log/user.json"

# The first bucket creates the data and index pools (~2 s): the tests' bucket does it now.
S=(-fsS -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY"
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
curl "${S[@]}" -X PUT "$ENDPOINT/$S3_BUCKET"
curl "${S[@]}" -X PUT --data-binary warm "$ENDPOINT/$S3_BUCKET/warmup"
curl "${S[@]}" -X DELETE "$ENDPOINT/$S3_BUCKET/warmup"
log "ready: bucket $S3_BUCKET"

cat >"$CEPH_DIR/env" <<ENV
CEPH_DIR=$CEPH_DIR
S3_ENDPOINT=$ENDPOINT
S3_ACCESS_KEY=$S3_ACCESS_KEY
S3_SECRET_KEY=$S3_SECRET_KEY
S3_REGION=us-east-1
S3_BUCKET=$S3_BUCKET
ENV
trap - ERR
cat "$CEPH_DIR/env"
