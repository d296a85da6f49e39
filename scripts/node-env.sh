# node-env.sh — sourced by the scripts: the project's Node LTS, first on PATH.
# The Node comes from the npm registry (scripts/setup.sh installs it): root installs it for the machine
# (/usr/local), another user under ~/.local, so the daemon, the CLI and the tests all run on the same Node.
GRADIENT_NODE_VERSION=24.22.3
GRADIENT_NODE_MAJOR=${GRADIENT_NODE_VERSION%%.*}
case "$(uname -m)" in
  x86_64) GRADIENT_NODE_ARCH=x64 ;;
  aarch64) GRADIENT_NODE_ARCH=arm64 ;;
  *) GRADIENT_NODE_ARCH=$(uname -m) ;;
esac
if [ "$(id -u)" = 0 ]; then GRADIENT_NODE_PREFIX=/usr/local; else GRADIENT_NODE_PREFIX=$HOME/.local; fi
GRADIENT_NODE_HOME=$GRADIENT_NODE_PREFIX/lib/gradient-node
GRADIENT_NODE_BIN=$GRADIENT_NODE_PREFIX/bin
case ":$PATH:" in *":$GRADIENT_NODE_BIN:"*) ;; *) export PATH="$GRADIENT_NODE_BIN:$PATH" ;; esac
# A Node of this major already first on PATH (a container image's own) is used as it is.
gradient_node_ok() {
  local v
  v=$(node -p 'process.versions.node' 2>/dev/null) || return 1
  [ "${v%%.*}" = "$GRADIENT_NODE_MAJOR" ]
}
# Native modules (ours, better-sqlite3) build against the running Node's own headers, never downloaded ones.
if gradient_node_ok; then
  npm_config_nodedir=$(node -p 'require("path").resolve(process.execPath, "../..")')
  export npm_config_nodedir
fi
