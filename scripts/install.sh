#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian/Ubuntu machine with Node.js 20:
# the Fashion-MNIST Debian package (the default real data), pnpm (the pinned version),
# and the workspace's npm dependencies from the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist
fi
# --with-test-deps: headless Chromium for the end-to-end test that opens `pnpm report` pages
# (without it that test checks the page but skips the browser part, and says so).
if [ "${1:-}" = "--with-test-deps" ] && [ ! -x /usr/bin/chromium ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
fi
PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  $SUDO npm install -g "pnpm@$PNPM_VERSION"
fi
pnpm install --frozen-lockfile
