#!/usr/bin/env bash
# Installs the Debian packages vectord needs to build, test and benchmark, skipping those present.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config git ca-certificates curl
      libfaiss-dev libopenblas-dev liblapack-dev librocksdb-dev libboost-dev libboost-system-dev
      nlohmann-json3-dev liburing-dev libroaring-dev libcli11-dev libgtest-dev libgmock-dev
      libbenchmark-dev
      zlib1g-dev clang-format nodejs npm python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere than Debian; only install them when no node is on PATH.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
clean=(); for p in "${missing[@]}"; do [ -n "$p" ] && clean+=("$p"); done
if [ ${#clean[@]} -gt 0 ]; then
  echo "install_deps: installing ${clean[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${clean[@]}"
fi
