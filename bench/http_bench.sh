#!/usr/bin/env bash
# Foundation figures over HTTP on one dataset: vectorctl import rate (with payloads, wait=true),
# vectorctl bench (recall, QPS, p50/p95/p99 at concurrency 1 and 4), the server's peak RSS
# with the set loaded, and the embedded Collection::Search p50 for the HTTP overhead.
# Usage: bench/http_bench.sh [BUILD_DIR] [DATA_DIR] [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=${2:-../shared/data/mate/sift}
port=${3:-16399}
work=$(mktemp -d /tmp/vectord_http_bench.XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "$(free -g | awk '/Mem:/{print $2}') GiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/vectord" --data-dir "$work/data" --host 127.0.0.1 --port "$port" 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
payload=()
[ -f "$data/attrs.jsonl" ] && payload=(--payload "$data/attrs.jsonl")
"$build/vectorctl" import --url "http://127.0.0.1:$port" --collection bench --file "$data/base.bvecs" \
  "${payload[@]}" --create --distance Euclid --datatype uint8 --batch 1000 --parallel 4 --wait
"$build/vectorctl" bench --url "http://127.0.0.1:$port" --collection bench \
  --queries "$data/query.bvecs" --gt "$data/gt.ivecs" --k 10 --concurrency 1,4 --warmup 100
echo "server peak RSS: $(awk '/VmHWM/{printf "%.1f MiB", $2/1024}' /proc/$pid/status)," \
     "current RSS: $(awk '/VmRSS/{printf "%.1f MiB", $2/1024}' /proc/$pid/status)"
kill -TERM $pid; wait $pid || true
"$build/bench/bench_engine" --data "$data"
