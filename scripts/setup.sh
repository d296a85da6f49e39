#!/usr/bin/env bash
# setup.sh — install what gradient-datasets needs on Debian 12, then build it. Idempotent.
#   scripts/setup.sh          runtime: a supported Node LTS, fuse3, npm ci, native addon + TypeScript build
#   scripts/setup.sh --test   + the S3 server used by tests (Ceph RGW) and tools the tests drive
#   scripts/setup.sh --bench  + the peers the benchmarks compare against (rclone, s3fs)
# Other scripts source scripts/node-env.sh for the same Node on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

want=(fuse3)
for arg in "$@"; do
  case "$arg" in
    --test) want+=(radosgw ceph-mon ceph-osd ceph-common curl iproute2 procps psmisc python3 openssl rsync git s3fs) ;;
    --bench) want+=(radosgw ceph-mon ceph-osd ceph-common curl iproute2 procps psmisc python3 openssl rclone s3fs) ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "[setup] apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian 12 ships Node 18; Node 20 is end of life. The supported LTS comes from the npm registry's
# node-linux-<arch> package (the official binary and headers as an npm tarball), unpacked beside the project.
source scripts/node-env.sh
if ! gradient_node_ok; then
  echo "[setup] node $GRADIENT_NODE_VERSION (npm registry: node-linux-$GRADIENT_NODE_ARCH)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-$GRADIENT_NODE_ARCH@$GRADIENT_NODE_VERSION" >/dev/null)
  rm -rf "$GRADIENT_NODE_HOME.new" && mkdir -p "$GRADIENT_NODE_HOME.new"
  tar -xzf "$tmp"/node-linux-*.tgz -C "$GRADIENT_NODE_HOME.new" --strip-components=1
  rm -rf "$tmp" "$GRADIENT_NODE_HOME" && mv "$GRADIENT_NODE_HOME.new" "$GRADIENT_NODE_HOME"
  # `gradient` and the systemd unit start `node` from PATH: make this one the machine's (or the user's) node.
  mkdir -p "$GRADIENT_NODE_BIN" && ln -sf "$GRADIENT_NODE_HOME/bin/node" "$GRADIENT_NODE_BIN/node"
  source scripts/node-env.sh
  gradient_node_ok || { echo "[setup] the node in $GRADIENT_NODE_HOME does not run" >&2; exit 1; }
fi

# npm ci only when the lock file (or the Node it was built for) changed since the last install.
stamp=node_modules/.gradient-node
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
  || [ "$(cat "$stamp" 2>/dev/null)" != "$(node -v)" ]; then
  echo "[setup] npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  node -v >"$stamp"
else
  npm run --silent build:native >/dev/null
fi
npm run --silent build:ts
echo "[setup] ready: $(node -v), $(ls native/build/Release/*.node)"
