#!/usr/bin/env bash
# Builds the C core with AddressSanitizer into native/build-asan/ (for test/integration/fuse/asan.test.ts).
# Load it with LD_PRELOAD="$(gcc -print-file-name=libasan.so)" GRADIENT_NATIVE_ADDON=native/build-asan/gradient_fuse.node.
set -euo pipefail
cd "$(dirname "$0")/.."
nodeinc=$(node -p "require('path').resolve(process.execPath, '../../include/node')")
mkdir -p native/build-asan
gcc -shared -fPIC -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
  -D_GNU_SOURCE -DNAPI_VERSION=8 -I"$nodeinc" native/src/*.c -o native/build-asan/gradient_fuse.node -lpthread
echo native/build-asan/gradient_fuse.node
