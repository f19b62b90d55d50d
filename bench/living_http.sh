#!/usr/bin/env bash
# The living index's "grow from small" run over HTTP (docs/spann.md "Living index"): a collection
# indexed at INITIAL points, the rest of the set streamed in at full speed with `vectorctl import`
# while one client queries with `vectorctl bench` (concurrency 1, back to back); then the time from
# the last acknowledged write until the collection is green, recall/QPS at the end, what the
# updater did (GET /collections/{c} index_updates) and the server's RSS.
# Usage: bench/living_http.sh [BUILD_DIR] [DATA_DIR] [INITIAL] [PORT]
#   DATA_DIR holds base.bvecs, query.bvecs and gt.ivecs (exact top-100 of the whole base).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=${2:-../shared/data/mate/sift}
initial=${3:-20000}
port=${4:-16398}
url="http://127.0.0.1:$port"
work=$(mktemp -d /tmp/vectord_living_http.XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "$(free -g | awk '/Mem:/{print $2}') GiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/vectord" --data-dir "$work/data" --host 127.0.0.1 --port "$port" 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
status() { curl -sf "$url/collections/grow" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["status"])'; }
wait_green() { until [ "$(status)" = green ]; do sleep 0.2; done; }
curl -sf -X PUT "$url/collections/grow" -H 'Content-Type: application/json' \
  -d "{\"vectors\":{\"size\":128,\"distance\":\"Euclid\",\"datatype\":\"uint8\"},
       \"spann_config\":{\"indexing_threshold\":$initial}}" >/dev/null
"$build/vectorctl" import --url "$url" --collection grow --file "$data/base.bvecs" \
  --limit "$initial" --batch 1000 --parallel 2 --wait 2>&1 | tail -1
wait_green
echo "== idle, $initial points indexed (recall against the whole set's truth: not meaningful)"
"$build/vectorctl" bench --url "$url" --collection grow --queries "$data/query.bvecs" \
  --gt "$data/gt.ivecs" --k 10 --concurrency 1 --warmup 100
echo "== streaming the rest in (vectorctl import, 4 connections, wait=true) while one client queries"
start=$(date +%s.%N)
"$build/vectorctl" import --url "$url" --collection grow --file "$data/base.bvecs" \
  --skip "$initial" --batch 1000 --parallel 4 --wait >"$work/import.log" 2>&1 &
imp=$!
rounds=0
while kill -0 $imp 2>/dev/null; do
  "$build/vectorctl" bench --url "$url" --collection grow --queries "$data/query.bvecs" \
    --gt "$data/gt.ivecs" --k 10 --concurrency 1 --warmup 0 --limit-queries 500 \
    --csv "$work/during_$rounds.csv" >/dev/null 2>&1 || true
  rounds=$((rounds + 1))
done
wait $imp
end=$(date +%s.%N)
tail -1 "$work/import.log"
echo "queries during the stream (rounds of 500, p50/p99 us): $(for f in "$work"/during_*.csv; do
  [ -s "$f" ] && tail -1 "$f" | awk -F, '{printf "%s/%s ", $8, $10}'; done)"
head -1 "$work/during_0.csv" 2>/dev/null || true
wait_green
green=$(date +%s.%N)
echo "green $(echo "$green - $end" | bc) s after the last write (stream took $(echo "$end - $start" | bc) s)"
echo "== at the end"
"$build/vectorctl" bench --url "$url" --collection grow --queries "$data/query.bvecs" \
  --gt "$data/gt.ivecs" --k 10 --concurrency 1 --warmup 100
curl -sf "$url/collections/grow" | python3 -c '
import json, sys
r = json.load(sys.stdin)["result"]
print("points", r["points_count"], "indexed", r["indexed_vectors_count"])
print("index_updates", json.dumps(r.get("index_updates")))
print("memory_bytes", json.dumps(r.get("memory_bytes")))'
echo "server peak RSS: $(awk '/VmHWM/{printf "%.1f MiB", $2/1024}' /proc/$pid/status)," \
     "current RSS: $(awk '/VmRSS/{printf "%.1f MiB", $2/1024}' /proc/$pid/status)"
