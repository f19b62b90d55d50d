#!/usr/bin/env bash
# Peer baseline: SPTAG's SPANN (Debian package `sptag`, binary sptag-ssdserving) on a texmex
# dataset directory (base.bvecs|fvecs, query.*, gt.ivecs). Builds the SPANN index once with the
# documented sift1m configuration (spann_build.ini.in), then sweeps the search parameters
# (spann_search.ini.in) with 1 thread and with all threads, and writes one CSV row per run:
# recall@k against gt.ivecs, QPS, latency, SSD pages per query, peak RSS (/usr/bin/time -v),
# RAM-resident and on-disk index bytes per vector, build time. See README.md here and
# docs/benchmarks.md.
#
# Usage: run_sptag.sh [DATA_DIR] [RESULTS_DIR]
#   DATA_DIR     [../shared/data/mate/sift from the repository root, i.e. shared/ beside it]
#   RESULTS_DIR  [./results]
# Environment (defaults in brackets):
#   SPTAG_WORK        index + logs directory [/tmp/sptag-spann/<name of DATA_DIR's parent>-<N>]
#   SPTAG_REBUILD     1: rebuild even when the index exists [0]
#   SPTAG_THREADS     build threads and the "all threads" search mode [nproc]
#   SPTAG_NPROBES     posting lists searched per query (SearchInternalResultNum) [2 4 8 16 32 48 64]
#   SPTAG_MAXCHECKS   head-graph search budgets (MaxCheck) [2048]
#   SPTAG_MAXDISTRATIO  query-aware pruning ratio (MaxDistRatio) [8.0]
#   SPTAG_HEAD_RATIO  fraction of vectors chosen as heads (SelectHead Ratio) [0.16]
#   SPTAG_MODES       thread counts to search with [1 $SPTAG_THREADS]
#   K                 neighbours per query [10]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
data=$(cd "${1:-$here/../../../shared/data/mate/sift}" && pwd)
results=${2:-$PWD/results}
mkdir -p "$results"
results=$(cd "$results" && pwd)
threads=${SPTAG_THREADS:-$(nproc)}
nprobes=${SPTAG_NPROBES:-2 4 8 16 32 48 64}
maxchecks=${SPTAG_MAXCHECKS:-2048}
maxdistratio=${SPTAG_MAXDISTRATIO:-8.0}
head_ratio=${SPTAG_HEAD_RATIO:-0.16}
modes=${SPTAG_MODES:-1 $threads}
k=${K:-10}
py=/usr/bin/python3  # Debian's python3 with python3-numpy

for b in sptag-ssdserving; do
  command -v "$b" >/dev/null || { echo "run_sptag: $b not found (apt-get install sptag)" >&2; exit 1; }
done
[[ -x /usr/bin/time ]] || { echo "run_sptag: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }

if [[ -f $data/base.bvecs ]]; then
  vectors=$data/base.bvecs queries=$data/query.bvecs value_type=UInt8
elif [[ -f $data/base.fvecs ]]; then
  vectors=$data/base.fvecs queries=$data/query.fvecs value_type=Float
else
  echo "run_sptag: $data has no base.bvecs or base.fvecs" >&2; exit 1
fi
gt=$data/gt.ivecs
dim=$(od -An -t d4 -N4 "$vectors" | tr -d ' ')
elem=$([[ $value_type == UInt8 ]] && echo 1 || echo 4)
n=$(( $(stat -c %s "$vectors") / (4 + dim * elem) ))
name=$(basename "$(dirname "$data")")-$(basename "$data")-$n
work=${SPTAG_WORK:-/tmp/sptag-spann/$name}
index=$work/index
mkdir -p "$work/tmp" "$index"

fill() {  # template output key=value...
  local tmpl=$1 out=$2; shift 2
  local args=()
  for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${args[@]}" "$tmpl" > "$out"
}

# Peak VmRSS (kB) of the sptag-ssdserving child of /usr/bin/time pid $1, sampled every 20 ms until
# its log $2 says the measured search has finished: after that, SPTAG loads the whole base vector
# file for its own result report, which a serving process would not hold.
serving_rss() {
  local tpid=$1 log=$2 pid="" max=0 kb
  while kill -0 "$tpid" 2>/dev/null; do
    [[ -z $pid ]] && pid=$(pgrep -P "$tpid" sptag-ssdservin | head -1)
    grep -q "Finish ANN Search" "$log" 2>/dev/null && break
    if [[ -n $pid ]]; then
      kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      [[ -n $kb && $kb -gt $max ]] && max=$kb
    fi
    sleep 0.02
  done
  echo "$max"
}

echo "# run_sptag: SPTAG SPANN ($(dpkg-query -W -f '${Version}' sptag 2>/dev/null || echo '?')) on $data"
echo "# $n x $dim $value_type; cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-); $(nproc) hardware threads; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# work dir: $work; results: $results"

build_csv=$work/sptag_build.csv
if [[ ${SPTAG_REBUILD:-0} == 1 || ! -f $index/SPTAGFullList.bin ]]; then
  rm -rf "$index" && mkdir -p "$index"
  fill "$here/spann_build.ini.in" "$work/build.ini" VALUE_TYPE=$value_type DIM=$dim \
    VECTORS=$vectors QUERIES=$queries INDEX_DIR=$index THREADS=$threads TMP_DIR=$work/tmp \
    HEAD_RATIO=$head_ratio
  echo "# building: sptag-ssdserving $work/build.ini (log: $work/build.log)"
  if ! /usr/bin/time -v sptag-ssdserving "$work/build.ini" > "$work/build.log" 2>&1; then
    echo "run_sptag: the SPANN build failed; the end of $work/build.log:" >&2
    tail -30 "$work/build.log" >&2
    exit 1
  fi
fi
if [[ ! -f $build_csv || $work/build.log -nt $build_csv ]]; then
  [[ -f $work/build.log ]] || { echo "run_sptag: $index exists but $work/build.log does not: rebuild with SPTAG_REBUILD=1" >&2; exit 1; }
  wall=$(grep 'Elapsed (wall clock)' "$work/build.log" | awk '{print $NF}' |
         awk -F: '{s=0; for (i=1;i<=NF;i++) s=s*60+$i; print s}')
  rss=$(grep 'Maximum resident set size' "$work/build.log" | awk '{printf "%.1f", $NF/1024}')
  cpu=$(grep -E '(User|System) time' "$work/build.log" | awk '{s+=$NF} END {printf "%.1f", s}')
  phases=$(grep -o 'select head time: .*' "$work/build.log" | tail -1)
  posting=$(stat -c %s "$index/SPTAGFullList.bin")
  head_ram=$(du -cb "$index/HeadIndex" "$index/SPTAGHeadVectorIDs.bin" | tail -1 | cut -f1)
  total=$(du -cb "$index" | tail -1 | cut -f1)
  heads=$(( $(stat -c %s "$index/SPTAGHeadVectorIDs.bin") / 8 ))
  echo "peer,n,dim,threads,build_wall_s,build_cpu_s,build_peak_rss_mb,heads,posting_file_bytes,head_index_bytes,index_dir_bytes,posting_bytes_per_vector,head_bytes_per_vector,index_dir_bytes_per_vector,phases,load_at_end" > "$build_csv"
  echo "sptag-spann,$n,$dim,$threads,$wall,$cpu,$rss,$heads,$posting,$head_ram,$total,$(( posting / n )),$(( head_ram / n )),$(( total / n )),\"$phases\",\"$(cut -d' ' -f1-3 /proc/loadavg)\"" >> "$build_csv"
fi
cp "$build_csv" "$results/sptag_build.csv"
echo "# build:"; column -s, -t < "$build_csv" || cat "$build_csv"
build_s=$(tail -1 "$build_csv" | cut -d, -f5)
disk_bpv=$(tail -1 "$build_csv" | cut -d, -f14)
head_bpv=$(tail -1 "$build_csv" | cut -d, -f13)

csv=$results/sptag_search.csv
echo "peer,index,search_params,mode,threads,n,k,build_s,ram_index_bytes_per_vector,disk_bytes_per_vector,serving_peak_rss_mb,recall_at_k,recall_ties,qps,lat_avg_ms,p50_ms,p99_ms,pages_avg,pages_p99,ios_avg,peak_rss_mb,nq" > "$csv"
for t in $modes; do
  for mc in $maxchecks; do
    for np in $nprobes; do
      tag=t${t}-mc${mc}-np${np}
      fill "$here/spann_search.ini.in" "$work/search-$tag.ini" VALUE_TYPE=$value_type DIM=$dim \
        VECTORS=$vectors QUERIES=$queries INDEX_DIR=$index THREADS=$t K=$k MAXCHECK=$mc \
        NPROBE=$np MAXDISTRATIO=$maxdistratio RESULT=$work/result-$tag.bin
      /usr/bin/time -v -o "$work/time-$tag.log" sptag-ssdserving "$work/search-$tag.ini" \
        > "$work/search-$tag.log" 2>&1 &
      serving_kb=$(serving_rss $! "$work/search-$tag.log")
      if ! wait $!; then
        echo "run_sptag: search $tag failed; the end of $work/search-$tag.log:" >&2
        tail -20 "$work/search-$tag.log" >&2
        continue
      fi
      mode=$([[ $t == 1 ]] && echo "1 thread" || echo "$t threads concurrent")
      "$py" "$here/sptag_eval.py" "$work/result-$tag.bin" "$gt" "$vectors" "$queries" "$k" \
        "$work/search-$tag.log" "$work/time-$tag.log" sptag-spann "SPANN BKT head ratio $head_ratio" \
        "\"SearchInternalResultNum=$np MaxCheck=$mc MaxDistRatio=$maxdistratio\"" "$mode" "$t" \
        "$n" "$k" "$build_s" "$head_bpv" "$disk_bpv" "$(awk -v kb="$serving_kb" 'BEGIN {printf "%.1f", kb / 1024}')" | tee -a "$csv"
    done
  done
done
echo "# CSV: $csv"
