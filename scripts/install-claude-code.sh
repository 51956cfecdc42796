#!/usr/bin/env bash
# Install Claude Code (@anthropic-ai/claude-code, pinned) into .tools/ for the
# Claude Code end-to-end test; installs Node.js and npm from Debian first when
# missing. The package brings a native binary for the platform (an optional
# dependency), so Node's own version matters only to its small launcher.
set -euo pipefail
version=${CLAUDE_CODE_VERSION:-2.1.332}
dest=.tools/claude-code
bin="$dest/node_modules/.bin/claude"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$version"; then
  exit 0
fi
command -v npm >/dev/null || scripts/apt-install.sh nodejs npm
mkdir -p "$dest"
npm install --prefix "$dest" --no-audit --no-fund --loglevel error "@anthropic-ai/claude-code@$version" >/dev/null
"$bin" --version
