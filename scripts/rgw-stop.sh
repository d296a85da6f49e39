#!/usr/bin/env bash
# rgw-stop.sh - stop the daemons started by rgw-start.sh (by the PIDs in $RGW_DIR/run/*.pid)
# and delete $RGW_DIR. KEEP_DIR=1 keeps the directory (logs) but the cluster is not restartable
# as-is with memstore unless the OSD was stopped gracefully.
set -uo pipefail
RGW_DIR=${RGW_DIR:-/tmp/rgw-local}
KEEP_DIR=${KEEP_DIR:-0}
[ -d "$RGW_DIR/run" ] || { echo "[stop-rgw] nothing at $RGW_DIR"; exit 0; }

# stop_one <pidfile> <expected exe name> <grace seconds>
stop_one() {
  local f=$1 exe=$2 grace=$3 pid
  [ -e "$f" ] || return 0
  pid=$(cat "$f")
  # only signal the PID if it is still the daemon we started (guards against PID reuse)
  if ! kill -0 "$pid" 2>/dev/null || ! tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | grep -q "$exe"; then
    rm -f "$f"; return 0
  fi
  kill -TERM "$pid" 2>/dev/null
  local end=$(( $(date +%s) + grace ))
  while kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' /proc/"$pid"/status 2>/dev/null; do
    if [ "$(date +%s)" -ge "$end" ]; then kill -KILL "$pid" 2>/dev/null; break; fi
    sleep 0.1
  done
  echo "[stop-rgw] stopped $(basename "$f" .pid) (pid $pid)"
  rm -f "$f"
}

stop_one "$RGW_DIR/run/client.rgw.r.pid" radosgw 10
stop_one "$RGW_DIR/run/mgr.x.pid" ceph-mgr 10
# memstore writes every object to disk on a clean shutdown; the data is thrown away anyway,
# so give the OSD only 2 s before SIGKILL.
stop_one "$RGW_DIR/run/osd.0.pid" ceph-osd 2
stop_one "$RGW_DIR/run/mon.a.pid" ceph-mon 10

if [ "$KEEP_DIR" != 1 ]; then rm -rf "$RGW_DIR"; echo "[stop-rgw] removed $RGW_DIR"; fi
