#!/usr/bin/env bash
# Installs what is missing, builds Release and starts vectord on 127.0.0.1:6333 with data in ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
tools/build.sh build
exec build/vectord --data-dir ./data --host 127.0.0.1 --port 6333 "$@"
