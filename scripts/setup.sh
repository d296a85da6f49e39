#!/usr/bin/env bash
# setup.sh — install what gradient-datasets needs on Debian 12, then build it. Idempotent.
#   scripts/setup.sh          runtime: fuse3, npm ci, native addon + TypeScript build
#   scripts/setup.sh --test   + the S3 server used by tests (Ceph RGW) and tools the tests drive
#   scripts/setup.sh --bench  + the peers the benchmarks compare against (rclone, s3fs)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(fuse3)
for arg in "$@"; do
  case "$arg" in
    --test) want+=(radosgw ceph-mon ceph-osd ceph-common curl iproute2 procps psmisc python3) ;;
    --bench) want+=(radosgw ceph-mon ceph-osd ceph-common curl iproute2 procps psmisc python3 rclone s3fs) ;;
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

# npm ci only when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] npm ci"
  if ! npm ci --no-audit --no-fund; then
    # npm ci insists on lock entries for every platform's optional packages (rollup, esbuild); a registry
    # that serves only this platform's cannot produce them. Install from the same lock file instead.
    echo "[setup] npm ci refused the lock file; installing with npm install --no-save from the same lock"
    npm install --no-audit --no-fund --no-save
  fi
else
  npm run --silent build:native >/dev/null
fi
npm run --silent build:ts
echo "[setup] ready: $(node -v), $(ls native/build/Release/*.node)"
