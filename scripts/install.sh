#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian/Ubuntu machine with Node.js 20:
# Debian's packages (Fashion-MNIST, the default real data; oneDNN, for the native CPU kernels;
# a C++ compiler, make and python3, with which node-gyp builds the oneDNN addon and, where no
# prebuilt binary can be downloaded, better-sqlite3), pnpm (the pinned version), and the
# workspace's npm dependencies from the lockfile.
#   --with-test-deps   also what the test suite checks against: headless Chromium (the tests that
#                      open pages in a browser) and Debian's PyTorch/torchvision for
#                      /usr/bin/python3 (the test that loads a .pth written by torch.save)
# One line per step; each step's full output goes to .install.log and is shown only when the
# step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG="$PWD/.install.log"
: >"$LOG"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

step() {
  local label="$1"
  shift
  local start=$SECONDS
  printf '%s… ' "$label"
  echo "=== $label: $*" >>"$LOG"
  if "$@" >>"$LOG" 2>&1; then
    echo "done ($((SECONDS - start)) s)"
  else
    local rc=$?
    echo "FAILED (exit $rc)"
    echo "--- last 40 lines of $LOG ---" >&2
    tail -n 40 "$LOG" >&2
    echo "--- the whole log is in $LOG ---" >&2
    exit "$rc"
  fi
}

apt_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

apt_install() {
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

PACKAGES=(dataset-fashion-mnist libdnnl-dev g++ make python3)
# Headless Chromium: the end-to-end tests that open `pnpm report` and `pnpm serve` pages.
# python3-torchvision (and python3-torch): packages/model/test/pth.test.ts, skipped without them.
if [ "${1:-}" = "--with-test-deps" ]; then PACKAGES+=(chromium python3-torchvision); fi
read -r -a MISSING <<<"$(apt_missing "${PACKAGES[@]}")"
if [ "${#MISSING[@]}" -gt 0 ]; then
  step "installing Debian packages: ${MISSING[*]}" apt_install "${MISSING[@]}"
fi

PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  step "installing pnpm $PNPM_VERSION" $SUDO npm install -g "pnpm@$PNPM_VERSION"
fi
step "installing npm dependencies and building better-sqlite3 and the native kernels (about two minutes)" \
  pnpm install --frozen-lockfile --reporter=append-only
