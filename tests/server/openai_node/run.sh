#!/usr/bin/env bash
# Runs openai_sdk_test.mjs with the OpenAI Node SDK pinned by package-lock.json, installed by
# `npm ci` into DIR (in the build directory, never the source tree) once per lock file.
# Skips (77) when node or npm is missing or npm cannot reach its registry.
# Usage (through tests/server/with_server.py, which sets VORTEX_BASE_URL): run.sh DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: run.sh DIR}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node or npm is not installed (scripts/install-deps.sh test installs them): skipped"
  exit 77
fi
mkdir -p "$dir"
if ! cmp -s "$here/package-lock.json" "$dir/package-lock.json" || [ ! -f "$dir/node_modules/openai/package.json" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$dir/npm-ci.log" 2>&1; then
    cat "$dir/npm-ci.log"
    rm -f "$dir/package-lock.json"  # try again next time
    if grep -qiE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|offline' \
        "$dir/npm-ci.log"; then
      echo "npm cannot reach its registry: skipped"
      exit 77
    fi
    exit 1
  fi
fi
# Node resolves 'openai' from the script's folder: run a copy placed beside node_modules.
cp "$here/openai_sdk_test.mjs" "$dir/"
exec node "$dir/openai_sdk_test.mjs"
