#!/usr/bin/env bash
# The server's RAM per point, open time and payload cost over HTTP (docs/storage.md "Memory
# accounting"): a collection with a SPANN index and 8-field payloads (attrs.jsonl), 3 fields
# indexed (image: keyword, octave: integer, response: float), loaded with `vectorctl import`
# (ingest rate), indexed (status green), then the server restarted and measured:
#   - open time: process start until GET /readyz answers 200, and until the collection answers;
#   - RSS (and its anonymous part) right after the restart;
#   - query latency returning ids only vs returning the 10 payloads (unfiltered, rounds alternated);
#   - RSS after 10,000 filtered queries that return payloads (filters drawn from attrs.jsonl).
# Usage: bench/points_http.sh [BUILD_DIR] [DATA_DIR] [PORT] [ROUNDS]
#   DATA_DIR holds base.bvecs (or base.u8bin), attrs.jsonl, query.bvecs (or query.u8bin) and,
#   optionally, gt.ivecs. VECTORD_BENCH_DIR: a directory for the data (default: a fresh one under
#   /tmp, removed at the end); VECTORD_SERVER_FLAGS: extra vectord flags (e.g. cache sizes);
#   VECTORCTL: the vectorctl to drive it with (default BUILD_DIR/vectorctl), e.g. to measure
#   an older server with the current client.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=${2:-../shared/data/mate/sift}
port=${3:-16397}
rounds=${4:-3}
url="http://127.0.0.1:$port"
ctl=${VECTORCTL:-$build/vectorctl}
base=$data/base.bvecs
[ -f "$base" ] || base=$data/base.u8bin
queries=$data/query.bvecs
[ -f "$queries" ] || queries=$data/query.u8bin
gt=()
[ -f "$data/gt.ivecs" ] && gt=(--gt "$data/gt.ivecs")
if [ -n "${VECTORD_BENCH_DIR:-}" ]; then
  work=$VECTORD_BENCH_DIR
  mkdir -p "$work"
  keep=1
else
  work=$(mktemp -d /tmp/vectord_points_http.XXXXXX)
  keep=0
fi
pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  [ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "$(free -g | awk '/Mem:/{print $2}') GiB RAM, load $(load)"
echo "server: $build/vectord ${VECTORD_SERVER_FLAGS:-}"
rss() { awk '/VmRSS/{r=$2} /RssAnon/{a=$2} /VmHWM/{h=$2}
             END{printf "RSS %.1f MiB (anon %.1f MiB), peak %.1f MiB", r/1024, a/1024, h/1024}' \
        "/proc/$pid/status"; }
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
start_server() {
  # shellcheck disable=SC2086
  "$build/vectord" --data-dir "$work/data" --host 127.0.0.1 --port "$port" \
    ${VECTORD_SERVER_FLAGS:-} 2>>"$work/server.log" &
  pid=$!
}
now() { date +%s.%N; }
info() { curl -sf "$url/collections/pts"; }
field() { python3 -c "import json,sys; r=json.load(sys.stdin)['result']; print(r$1)"; }

t0=$(now)
start_server
until curl -sf "$url/readyz" >/dev/null; do sleep 0.05; done
n=$(python3 - "$base" <<'EOF'
import os, struct, sys
p = sys.argv[1]
with open(p, 'rb') as f:
    d = struct.unpack('<i', f.read(4))[0]
print(os.path.getsize(p) // (4 + d) if p.endswith('.bvecs') else d)
EOF
)
if ! info >/dev/null 2>&1; then
  echo "== loading $n points from $base with payloads"
  curl -sf -X PUT "$url/collections/pts" -H 'Content-Type: application/json' \
    -d "{\"vectors\":{\"size\":128,\"distance\":\"Euclid\",\"datatype\":\"uint8\"},
         \"spann_config\":{\"indexing_threshold\":$n}}" >/dev/null
  for f in image:keyword octave:integer response:float; do
    curl -sf -X PUT "$url/collections/pts/index?wait=true" -H 'Content-Type: application/json' \
      -d "{\"field_name\":\"${f%%:*}\",\"field_schema\":\"${f##*:}\"}" >/dev/null
  done
  "$ctl" import --url "$url" --collection pts --file "$base" \
    --payload "$data/attrs.jsonl" --batch 1000 --parallel 4 --wait 2>&1 | tail -1
  echo "after import: $(rss), load $(load)"
  ti=$(now)
  until [ "$(info | field "['status']")" = green ]; do sleep 0.5; done
  echo "indexed (green) in $(echo "$(now) - $ti" | bc) s; $(rss)"
else
  echo "== reusing the collection in $work/data"
fi
kill -TERM "$pid"
wait "$pid" || true

echo "== restart"
sync
t0=$(now)
start_server
until curl -sf "$url/readyz" >/dev/null; do sleep 0.01; done
t1=$(now)
until info >/dev/null 2>&1; do sleep 0.01; done
t2=$(now)
echo "open: /readyz 200 after $(echo "$t1 - $t0" | bc) s, collection answers after" \
     "$(echo "$t2 - $t0" | bc) s"
points=$(info | field "['points_count']")
echo "points $points, status $(info | field "['status']"), indexed $(info | field \
  "['indexed_vectors_count']")"
echo "after restart: $(rss) = $(echo "$(rss_kib) * 1024 / $points" | bc) bytes per point"

echo "== ids only vs 10 payloads, k=10, concurrency 1, $rounds rounds alternated (p50/p99 ms)"
for r in $(seq "$rounds"); do
  for mode in ids payloads; do
    extra=()
    [ $mode = payloads ] && extra=(--with-payload)
    "$ctl" bench --url "$url" --collection pts --queries "$queries" "${gt[@]}" \
      --k 10 --concurrency 1 --warmup 100 "${extra[@]}" --csv "$work/$mode.$r.csv" >/dev/null \
      2>&1
    echo "round $r $mode: $(tail -1 "$work/$mode.$r.csv" | awk -F, \
      '{printf "recall %s, %s QPS, p50 %s, p99 %s", ($5 == "" ? "-" : $5), $6, $8, $10}')"
  done
done
python3 - "$work" "$rounds" <<'EOF'
import statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
med = {}
for mode in ("ids", "payloads"):
    rows = [open(f"{work}/{mode}.{r}.csv").read().splitlines()[-1].split(",") for r in range(1, rounds + 1)]
    med[mode] = (statistics.median(float(x[7]) for x in rows), statistics.median(float(x[9]) for x in rows))
print("median p50/p99 ms: ids %.3f/%.3f, payloads %.3f/%.3f; payloads/ids p50 %.2fx, p99 %.2fx" % (
    med["ids"][0], med["ids"][1], med["payloads"][0], med["payloads"][1],
    med["payloads"][0] / med["ids"][0], med["payloads"][1] / med["ids"][1]))
EOF

echo "== 10,000 filtered queries returning payloads"
python3 - "$data/attrs.jsonl" "$work/filters.jsonl" <<'EOF'
import json, random, sys
rng = random.Random(5)
src, out = sys.argv[1], sys.argv[2]
picked = []
with open(src) as f:  # reservoir sample of 200 payloads
    for i, line in enumerate(f):
        if len(picked) < 200:
            picked.append(line)
        elif rng.random() < 200 / (i + 1):
            picked[rng.randrange(200)] = line
with open(out, "w") as o:
    for i, line in enumerate(picked):
        p = json.loads(line)
        if i % 3 == 0:
            flt = {"must": [{"key": "image", "match": {"value": p["image"]}}]}
        elif i % 3 == 1:
            flt = {"must": [{"key": "octave", "match": {"value": p["octave"]}},
                            {"key": "response", "range": {"gte": p["response"]}}]}
        else:
            flt = {"must": [{"key": "response", "range": {"gte": p["response"] * 0.9,
                                                          "lte": p["response"] * 1.1}}]}
        o.write(json.dumps(flt) + "\n")
EOF
"$ctl" bench --url "$url" --collection pts --queries "$queries" --k 10 \
  --concurrency 1,4 --warmup 50 --with-payload --filters "$work/filters.jsonl" \
  --limit-queries 1000 --repeat 10 | tail -3
echo "after 10,000 filtered queries (x2 levels): $(rss) = $(echo "$(rss_kib) * 1024 / $points" \
  | bc) bytes per point, load $(load)"
curl -s "$url/metrics" | awk '/^vectord_memory_trim/{printf "%s %s; ", $1, $2} END{print ""}'
info | python3 -c '
import json, sys
r = json.load(sys.stdin)["result"]
if "memory_bytes" in r:
    print("memory_bytes", json.dumps(r["memory_bytes"]))'
du -sb "$work/data" | awk -v n="$points" '{printf "data directory: %.1f MiB = %.0f bytes per point\n", $1/1048576, $1/n}'
