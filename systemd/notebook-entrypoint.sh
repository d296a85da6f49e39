#!/bin/sh
# Example entrypoint for a notebook container: mount /datasets, wait until the daemon is ready, then exec the
# notebook (so it receives signals directly). Use with an init that reaps orphans (docker run --init, tini),
# since the daemon keeps running beside the notebook.
#
#   ENTRYPOINT ["tini", "--", "/usr/local/bin/notebook-entrypoint.sh"]
#   CMD ["jupyter", "lab", "--ip=0.0.0.0", "--no-browser"]
#
# The container needs /dev/fuse and CAP_SYS_ADMIN (docker run --device /dev/fuse --cap-add SYS_ADMIN), or
# fusermount3 installed setuid for an unprivileged user. A failed start prints the daemon's last log lines and
# exits non-zero instead of starting a notebook without its data.
set -eu

SETTINGS="${GRADIENT_SETTINGS:-/notebooks/.gradient/settings.yaml}"
MOUNTPOINT="${GRADIENT_MOUNTPOINT:-/datasets}"
TIMEOUT="${GRADIENT_READY_TIMEOUT:-120}"
LOG="${GRADIENT_LOG:-/tmp/gradient-datasets.log}"

mkdir -p "$MOUNTPOINT"
gradient mount --settings "$SETTINGS" --mountpoint "$MOUNTPOINT" >>"$LOG" 2>&1 &
daemon=$!

# Ready = the filesystem is mounted and settings.yaml applied. Exit code 1 means ready but with entries in
# error (shown in the table): the notebook still starts; 6 means no ready daemon.
rc=0
gradient status --wait --timeout "$TIMEOUT" || rc=$?
if [ "$rc" -ge 2 ] || ! kill -0 "$daemon" 2>/dev/null; then
  echo "gradient-datasets did not become ready; last log lines:" >&2
  tail -n 30 "$LOG" >&2 || true
  exit 1
fi

exec "$@"
