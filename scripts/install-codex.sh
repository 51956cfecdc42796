#!/usr/bin/env bash
# Install the Codex CLI (@openai/codex, pinned) into .tools/ for the Codex
# end-to-end test; installs Node.js and npm from Debian first when missing.
set -euo pipefail
version=${CODEX_VERSION:-0.169.0}
dest=.tools/codex
bin="$dest/node_modules/.bin/codex"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$version"; then
  exit 0
fi
command -v npm >/dev/null || scripts/apt-install.sh nodejs npm
mkdir -p "$dest"
npm install --prefix "$dest" --no-audit --no-fund --loglevel error "@openai/codex@$version" >/dev/null
"$bin" --version
