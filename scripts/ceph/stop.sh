#!/usr/bin/env bash
# Stops what scripts/ceph/start.sh started: kills exactly the PIDs it saved, then removes its state.
# KEEP_CEPH_DIR=1 keeps $CEPH_DIR (logs) for inspection.
set -uo pipefail
CEPH_DIR=${CEPH_DIR:-/tmp/simple-registry-ceph}
PIDS=$CEPH_DIR/pids
[ -f "$PIDS" ] || { echo "stop.sh: no $PIDS, nothing to stop" >&2; exit 0; }
# Reverse start order: rgw, osd, mon.
tac "$PIDS" | while read -r name pid; do
  kill -0 "$pid" 2>/dev/null || continue
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "stop.sh: $name ($pid) ignored TERM, sending KILL" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  echo "stopped $name ($pid)" >&2
done
rm -f "$PIDS"
[ "${KEEP_CEPH_DIR:-0}" = 1 ] || rm -rf "$CEPH_DIR"
