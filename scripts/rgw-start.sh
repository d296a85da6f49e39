#!/usr/bin/env bash
# rgw-start.sh - throwaway single-node Ceph cluster + RADOS Gateway (S3) on 127.0.0.1 only.
#
#   1 ceph-mon, 1 ceph-osd (memstore = RAM, or bluestore on a sparse file), optional ceph-mgr,
#   1 radosgw (beast frontend), all under $RGW_DIR, all bound to 127.0.0.1, auth "none"
#   between the daemons (S3 requests are still SigV4-authenticated by RGW).
#
# Env (all optional):
#   RGW_DIR=/tmp/rgw-local   everything lives here (keep it short: admin sockets need < 107 chars)
#   RGW_PORT=7480            S3 endpoint port   -> http://127.0.0.1:$RGW_PORT
#   RGW_SSL_PORT=7443        the same S3 over TLS -> https://127.0.0.1:$RGW_SSL_PORT, with a throwaway CA
#                            ($RGW_DIR/tls/ca.pem) made here with openssl; 0 = no TLS endpoint
#   MON_PORT=3300            ceph-mon msgr2 port (OSD/mgr take free ports in 6800-7300)
#   OBJECTSTORE=memstore     memstore (data in OSD RAM, fastest) | bluestore (sparse file on disk)
#   MEMSTORE_BYTES=8G        capacity the memstore OSD reports (RAM is only used for data stored)
#   BLUESTORE_SIZE=20G       size of the sparse bluestore block file
#   WITH_MGR=0               1 = also run ceph-mgr (only needed for `ceph df`/`rados df`/pg stats)
#   RGW_ACCESS_KEY / RGW_SECRET_KEY   default: random
#   RGW_UID=tester           S3 user id
#   AUTO_INSTALL=1           apt-get install the Debian packages if radosgw is missing
#
# Prints the endpoint and keys, and writes $RGW_DIR/s3.env (shell) and $RGW_DIR/s3.json (with the TLS
# endpoint and the CA file to trust for it: S3_ENDPOINT_TLS / S3_CA_FILE, endpointTls / caFile).
# Stop + clean up with rgw-stop.sh (same RGW_DIR).
set -euo pipefail

RGW_DIR=${RGW_DIR:-/tmp/rgw-local}
RGW_PORT=${RGW_PORT:-7480}
RGW_SSL_PORT=${RGW_SSL_PORT:-7443}
MON_PORT=${MON_PORT:-3300}
OBJECTSTORE=${OBJECTSTORE:-memstore}
MEMSTORE_BYTES=${MEMSTORE_BYTES:-8G}
BLUESTORE_SIZE=${BLUESTORE_SIZE:-20G}
WITH_MGR=${WITH_MGR:-0}
RGW_UID=${RGW_UID:-tester}
AUTO_INSTALL=${AUTO_INSTALL:-1}

t0=$(date +%s%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%6.2fs", (b - a) / 1e9 }'; }
log() { echo "[start-rgw $(elapsed)] $*" >&2; }
die() { echo "[start-rgw] ERROR: $*" >&2; exit 1; }
to_bytes() { numfmt --from=iec "$1"; }

# ---------------------------------------------------------------- packages
need_pkgs=()
command -v ceph-mon >/dev/null || need_pkgs+=(ceph-mon)
command -v ceph-osd >/dev/null || need_pkgs+=(ceph-osd)
command -v radosgw  >/dev/null || need_pkgs+=(radosgw)
command -v ceph     >/dev/null || need_pkgs+=(ceph-common)
if [ "$WITH_MGR" = 1 ] && ! command -v ceph-mgr >/dev/null; then need_pkgs+=(ceph-mgr); fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$AUTO_INSTALL" = 1 ] || die "missing packages: ${need_pkgs[*]}"
  log "installing ${need_pkgs[*]} (apt, ~65-73 MB download, ~35 s)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null; } \
    || die "apt-get install ${need_pkgs[*]} failed"
  log "packages installed"
fi
uuid() { cat /proc/sys/kernel/random/uuid; }
command -v curl >/dev/null || die "curl missing (apt-get install curl)"
command -v ss >/dev/null || die "ss missing (apt-get install iproute2)"
if [ "$RGW_SSL_PORT" != 0 ]; then command -v openssl >/dev/null || die "openssl missing (apt-get install openssl)"; fi

# ---------------------------------------------------------------- sanity
if [ -d "$RGW_DIR/run" ]; then
  for f in "$RGW_DIR"/run/*.pid; do
    if [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
      die "$RGW_DIR already has a running daemon ($f); run rgw-stop.sh first"
    fi
  done
fi
for p in "$RGW_PORT" "$MON_PORT" $([ "$RGW_SSL_PORT" = 0 ] || echo "$RGW_SSL_PORT"); do
  if ss -Hltn "sport = :$p" | grep -q .; then die "port $p already in use"; fi
done
[ ${#RGW_DIR} -lt 80 ] || die "RGW_DIR too long (unix socket path limit)"

rm -rf "$RGW_DIR"
mkdir -p "$RGW_DIR"/{log,run,mon,osd,rgw,mgr,tls}
RGW_DIR=$(cd "$RGW_DIR" && pwd)
export CEPH_CONF="$RGW_DIR/ceph.conf"

# Kill whatever we started if anything below fails.
started_ok=0
cleanup_on_fail() {
  [ "$started_ok" = 1 ] && return
  echo "[start-rgw] failed; stopping daemons. Logs: $RGW_DIR/log" >&2
  for f in "$RGW_DIR"/run/*.pid; do
    if [ -e "$f" ]; then kill -9 "$(cat "$f")" 2>/dev/null || true; fi
  done
}
trap cleanup_on_fail EXIT

FSID=$(uuid)
ACCESS_KEY=${RGW_ACCESS_KEY:-$(od -An -tx1 -N10 /dev/urandom | tr -d ' \n' | tr a-f A-F)}
SECRET_KEY=${RGW_SECRET_KEY:-$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')}

if [ "$OBJECTSTORE" = memstore ]; then
  STORE_CONF="osd objectstore = memstore
memstore device bytes = $(to_bytes "$MEMSTORE_BYTES")"
elif [ "$OBJECTSTORE" = bluestore ]; then
  STORE_CONF="osd objectstore = bluestore
bluestore block path = $RGW_DIR/osd.block
bluestore block create = true
bluestore block size = $(to_bytes "$BLUESTORE_SIZE")
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mount = false
bdev enable discard = false
osd memory target = 1073741824"
else
  die "OBJECTSTORE must be memstore or bluestore"
fi

# ---------------------------------------------------------------- TLS (throwaway CA + cert for 127.0.0.1)
# Clients must trust $RGW_DIR/tls/ca.pem explicitly (AWS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, curl --cacert):
# nothing here touches the system trust store.
FRONTEND="beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1"
if [ "$RGW_SSL_PORT" != 0 ]; then
  TLS=$RGW_DIR/tls
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=gradient-datasets test CA" -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>"$RGW_DIR/log/openssl.err"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>>"$RGW_DIR/log/openssl.err"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TLS/server.ext"
  openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial -days 30 \
    -extfile "$TLS/server.ext" -out "$TLS/server.pem" 2>>"$RGW_DIR/log/openssl.err"
  FRONTEND="$FRONTEND ssl_endpoint=127.0.0.1:$RGW_SSL_PORT ssl_certificate=$TLS/server.pem ssl_private_key=$TLS/server.key"
fi

# ---------------------------------------------------------------- ceph.conf
cat > "$CEPH_CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
# no cephx between daemons; radosgw defaults to 'secure' mon mode, which auth=none can't do
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
keyring = /dev/null
run dir = $RGW_DIR/run
pid file = $RGW_DIR/run/\$name.pid
admin socket = $RGW_DIR/run/\$name.asok
log file = $RGW_DIR/log/\$name.log
mon cluster log file = $RGW_DIR/log/cluster.log
crash dir = $RGW_DIR/log/crash
# single OSD: size 1, few PGs (default 32/pool x 8 rgw pools would exceed mon_max_pg_per_osd=250)
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
# don't refuse to start on a nearly full disk
mon data avail warn = 1
mon data avail crit = 0
# faster map updates at bootstrap (default 1 s)
paxos propose interval = 0.1

[mon.a]
mon data = $RGW_DIR/mon

[osd.0]
osd data = $RGW_DIR/osd
$STORE_CONF

[mgr.x]
mgr data = $RGW_DIR/mgr
mgr initial modules = iostat

[client.rgw.r]
rgw frontends = $FRONTEND
rgw data = $RGW_DIR/rgw
# free deleted/overwritten object tails after ~30 s instead of 2 h (memstore keeps them in RAM)
rgw gc obj min wait = 30
rgw gc processor period = 30
rgw gc processor max time = 30
EOF

wait_for() { # wait_for <seconds> <description> <command...>
  local secs=$1 what=$2; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timeout waiting for $what (see $RGW_DIR/log)"
    sleep 0.1
  done
}

# ---------------------------------------------------------------- mon
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$RGW_DIR/monmap" >/dev/null
ceph-mon -i a --mkfs --monmap "$RGW_DIR/monmap" --keyring /dev/null
ceph-mon -i a
wait_for 30 "ceph-mon" timeout 5 ceph --connect-timeout 3 mon stat
log "mon up (127.0.0.1:$MON_PORT)"

# ---------------------------------------------------------------- mgr (optional)
if [ "$WITH_MGR" = 1 ]; then
  ceph-mgr -i x
  log "mgr started"
fi

# ---------------------------------------------------------------- osd
OSD_UUID=$(uuid)
OSD_ID=$(ceph osd new "$OSD_UUID")
[ "$OSD_ID" = 0 ] || die "unexpected osd id $OSD_ID"
ceph-osd -i 0 --mkfs --osd-uuid "$OSD_UUID" 2>"$RGW_DIR/log/osd-mkfs.err"
ceph-osd -i 0 2>>"$RGW_DIR/log/osd-start.err"
osd_up() { ceph osd stat -f json | grep -q '"num_up_osds":1'; }
wait_for 60 "osd.0 up" osd_up
log "osd.0 up ($OBJECTSTORE)"

# ---------------------------------------------------------------- rgw pools
# Pre-create all pools RGW uses (it would otherwise create them one by one, lazily, making the
# first CreateBucket/PutObject take seconds). One `ceph` process reads all commands from stdin.
{
  for p in .rgw.root default.rgw.control default.rgw.meta default.rgw.log \
           default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec; do
    echo "osd pool create $p 8 8"
    echo "osd pool application enable $p rgw"
  done
} | ceph >"$RGW_DIR/log/pools.out" 2>&1
log "pools created"

# ---------------------------------------------------------------- S3 user (blocks until PGs active)
radosgw-admin user create --uid="$RGW_UID" --display-name="S3 test user" \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$RGW_DIR/user.json" 2>"$RGW_DIR/log/user-create.err"
log "user '$RGW_UID' created"

# ---------------------------------------------------------------- radosgw
radosgw -n client.rgw.r
wait_for 60 "radosgw on 127.0.0.1:$RGW_PORT" curl -sf -o /dev/null "http://127.0.0.1:$RGW_PORT/"
ENDPOINT="http://127.0.0.1:$RGW_PORT"
ENDPOINT_TLS=
CA_FILE=
if [ "$RGW_SSL_PORT" != 0 ]; then
  ENDPOINT_TLS="https://127.0.0.1:$RGW_SSL_PORT"
  CA_FILE=$TLS/ca.pem
  wait_for 30 "radosgw TLS on 127.0.0.1:$RGW_SSL_PORT" curl -sf --cacert "$CA_FILE" -o /dev/null "$ENDPOINT_TLS/"
fi
log "radosgw ready"

cat > "$RGW_DIR/s3.env" <<EOF
export S3_ENDPOINT=$ENDPOINT
export AWS_ENDPOINT_URL=$ENDPOINT
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=us-east-1
export S3_FORCE_PATH_STYLE=1
export S3_ENDPOINT_TLS=$ENDPOINT_TLS
export S3_CA_FILE=$CA_FILE
export CEPH_CONF=$CEPH_CONF
EOF
cat > "$RGW_DIR/s3.json" <<EOF
{"endpoint":"$ENDPOINT","endpointTls":"$ENDPOINT_TLS","caFile":"$CA_FILE","region":"us-east-1","forcePathStyle":true,"accessKeyId":"$ACCESS_KEY","secretAccessKey":"$SECRET_KEY"}
EOF
started_ok=1
trap - EXIT

echo "RGW ready in $(elapsed | tr -d ' ')"
echo "endpoint:   $ENDPOINT   (path-style, region us-east-1)"
[ -z "$ENDPOINT_TLS" ] || echo "TLS:        $ENDPOINT_TLS   (trust $CA_FILE)"
echo "access key: $ACCESS_KEY"
echo "secret key: $SECRET_KEY"
echo "env file:   $RGW_DIR/s3.env   (source it)"
echo "pids:       $(for f in "$RGW_DIR"/run/*.pid; do printf '%s=%s ' "$(basename "$f" .pid)" "$(cat "$f")"; done)"; echo
