#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors and runs every test (CTest), then the
# unit tests again under ASan/UBSan. Set VECTORD_SKIP_SANITIZE=1 to skip the sanitizer pass.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
tools/build.sh build-ci -DVECTORD_WERROR=ON
(cd build-ci && ctest --output-on-failure -j 2 --timeout 900)
if [ "${VECTORD_SKIP_SANITIZE:-0}" != 1 ]; then
  tools/build.sh build-asan -DVECTORD_WERROR=ON -DVECTORD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
    -DVECTORD_BUILD_BENCH=OFF
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j 2 --timeout 900 -L unit)
fi
