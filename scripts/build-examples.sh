#!/usr/bin/env bash
# Builds the example plugin examples/callerid-router in each of its languages
# and packages each as a plugin folder (component + manifest):
#
#   target/plugins/callerid-router-rust/{plugin.wasm,plugin.toml}        cargo, plugboard-sdk
#   target/plugins/callerid-router-python/{plugin.wasm,plugin.toml}      componentize-py
#   target/plugins/callerid-router-javascript/{plugin.wasm,plugin.toml}  componentize-js
#
# Works on a fresh machine: adds the wasm32-wasip2 Rust target, makes a Python
# venv under target/pyenv with the pinned componentize-py, and runs `npm ci`
# in the JavaScript folder. Needs python3 (with venv), node and npm.
#
# Idempotent: cargo rebuilds only what changed, and the Python and JavaScript
# components are rebuilt only when an input (source, pins, the WIT contract,
# the tool install) is newer than the packaged component.
#
# Usage: scripts/build-examples.sh [rust|python|javascript ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

EX=examples/callerid-router
WIT=wit/v0.1
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-target}")
OUT=$TARGET/plugins
PYENV=$TARGET/pyenv
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(rust python javascript)

# True when $1 exists and no file under the other arguments is newer.
up_to_date() {
  local out=$1
  shift
  [ -f "$out" ] && [ -z "$(find "$@" -newer "$out" -print -quit)" ]
}

# Copies $2 to $1 only when the content differs (keeps mtimes stable).
install_file() {
  cmp -s "$2" "$1" 2>/dev/null || cp "$2" "$1"
}

# package LANG WASM: target/plugins/callerid-router-LANG/{plugin.wasm,plugin.toml}
package() {
  local dir="$OUT/callerid-router-$1"
  mkdir -p "$dir"
  install_file "$dir/plugin.wasm" "$2"
  install_file "$dir/plugin.toml" "$EX/$1/plugin.toml"
  echo "build-examples: $dir ($(stat -c %s "$dir/plugin.wasm") bytes)"
}

build_rust() {
  rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
  # The guest flags of scripts/build-plugins.sh: no debug info in the component.
  CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    cargo build --release --target wasm32-wasip2 -p callerid-router
  package rust "$TARGET/wasm32-wasip2/release/callerid_router.wasm"
}

build_python() {
  local src="$EX/python" wasm="$OUT/callerid-router-python/plugin.wasm"
  local stamp="$PYENV/.requirements.txt"
  if ! cmp -s "$src/requirements.txt" "$stamp" || [ ! -x "$PYENV/bin/componentize-py" ]; then
    if [ ! -x "$PYENV/bin/pip" ]; then
      python3 -m venv "$PYENV" || {
        echo "build-examples: cannot create a venv (Debian: apt-get install python3-venv)" >&2
        exit 1
      }
    fi
    "$PYENV/bin/pip" install --quiet --disable-pip-version-check -r "$src/requirements.txt"
    cp "$src/requirements.txt" "$stamp"
  fi
  if up_to_date "$wasm" "$src/app.py" "$stamp" "$WIT"; then
    echo "build-examples: python component up to date"
  else
    mkdir -p "$(dirname "$wasm")"
    "$PYENV/bin/componentize-py" -d "$WIT" -w call-flow componentize -p "$src" app \
      -o "$wasm.tmp"
    mv "$wasm.tmp" "$wasm"
  fi
  package python "$wasm"
}

build_javascript() {
  local src="$EX/javascript" wasm="$OUT/callerid-router-javascript/plugin.wasm"
  command -v npm >/dev/null || { echo "build-examples: node and npm are needed" >&2; exit 1; }
  # npm writes node_modules/.package-lock.json on every install.
  if ! up_to_date "$src/node_modules/.package-lock.json" "$src/package-lock.json" "$src/package.json"; then
    (cd "$src" && npm ci --no-audit --no-fund)
  fi
  if up_to_date "$wasm" "$src/app.js" "$src/node_modules/.package-lock.json" "$WIT"; then
    echo "build-examples: javascript component up to date"
  else
    # Import specifiers carry the contract's full version (plugboard:pbx/call@X.Y.Z).
    local version
    version=$(sed -n 's/^package plugboard:pbx@\([^;]*\);/\1/p' "$WIT/pbx.wit")
    if grep -q "from 'plugboard:pbx/" "$src/app.js" && ! grep -q "plugboard:pbx/[a-z-]*@$version'" "$src/app.js"; then
      echo "build-examples: $src/app.js must import plugboard:pbx/...@$version (the version in $WIT/pbx.wit)" >&2
      exit 1
    fi
    # componentize-js wants the WIT folder inside the project: a gitignored copy.
    rm -rf "$src/wit"
    cp -r "$WIT" "$src/wit"
    mkdir -p "$(dirname "$wasm")"
    # -d http fetch-event: do not import wasi:http (the host does not link it).
    (cd "$src" && node_modules/.bin/componentize-js --wit wit --world-name call-flow \
      -d http fetch-event -o "$wasm.tmp" app.js)
    mv "$wasm.tmp" "$wasm"
  fi
  package javascript "$wasm"
}

for lang in "${langs[@]}"; do
  case "$lang" in
    rust | python | javascript)
      start=$SECONDS
      "build_$lang"
      echo "build-examples: $lang done in $((SECONDS - start)) s"
      ;;
    *)
      echo "build-examples: unknown language $lang (rust, python, javascript)" >&2
      exit 2
      ;;
  esac
done
