#!/usr/bin/env bash
# Runs the peer baselines that vectord's SPANN index is compared with (issue 3,
# docs/benchmarks.md), back to back on one dataset directory, and writes their CSVs and logs:
#   faiss_ivfpq.csv    Faiss IVF-PQ fast-scan + exact refine, in RAM (bench_faiss_ivfpq)
#   faiss_context.csv  Faiss IVF-PQ with a float32 refine store, IVF-Flat, HNSW (context rows)
#   sptag_build.csv, sptag_search.csv   SPTAG's SPANN from the Debian package (sptag/run_sptag.sh)
#   machine.txt        CPU, cores, memory, load before and after each step
#
# Usage: bench/run_peers.sh [DATA_DIR] [RESULTS_DIR] [BUILD_DIR]
#   DATA_DIR     texmex set: base.bvecs, query.bvecs, gt.ivecs [../shared/data/mate/sift, i.e.
#                shared/ beside the repository]
#   RESULTS_DIR  [BUILD_DIR/results/peers-<dataset>-<date>]
#   BUILD_DIR    a configured build tree holding bench/bench_faiss_ivfpq [build-peers]
# Environment: PEERS="faiss context sptag" (steps to run), FAISS_ARGS (extra arguments for the
# main Faiss run, e.g. "--nlist 4096 --m 32"), and run_sptag.sh's SPTAG_* variables.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
data=$(cd "${1:-$root/../shared/data/mate/sift}" && pwd)
name=$(basename "$(dirname "$data")")-$(basename "$data")
build=${3:-$root/build-peers}
results=${2:-$build/results/peers-$name-$(date +%Y%m%d-%H%M)}
peers=${PEERS:-faiss context sptag}
mkdir -p "$results"
bench=$build/bench/bench_faiss_ivfpq
if [[ $peers == *faiss* || $peers == *context* ]] && [[ ! -x $bench ]]; then
  echo "run_peers: $bench missing; build it: cmake -S $root -B $build -G Ninja" \
       "-DCMAKE_BUILD_TYPE=Release && ninja -C $build bench_faiss_ivfpq" >&2
  exit 1
fi

machine() {
  echo "## $1 $(date -Is)"
  echo "load: $(cat /proc/loadavg)"
}
{
  echo "# run_peers on $data"
  grep -m1 'model name' /proc/cpuinfo
  echo "hardware threads: $(nproc)"
  grep MemTotal /proc/meminfo
  lscpu | grep -E '^(Flags|Hypervisor)' | sed 's/^Flags:.*\(avx512f\).*/Flags: ... avx512f .../'
  uname -r
} > "$results/machine.txt"

for step in $peers; do
  machine "before $step" >> "$results/machine.txt"
  case $step in
    faiss)
      # Main row: IVF{nlist},PQ{M}x4fs + exact uint8 refine; nlist 4*sqrt(N) and half of it.
      n=$(( $(stat -c %s "$data/base.bvecs") / 132 ))
      auto=$(awk -v n="$n" 'BEGIN {l = log(4 * sqrt(n)) / log(2); printf "%d", 2 ^ int(l + 0.5)}')
      "$bench" --data "$data" --nlist "$((auto / 2)),$auto" --m 32,64 --refine sq8 \
        --csv "$results/faiss_ivfpq.csv" ${FAISS_ARGS:-} 2>&1 | tee "$results/faiss_ivfpq.log"
      ;;
    context)
      "$bench" --data "$data" --m 32 --refine flat --kfactor 8,16,32,64 --context \
        --csv "$results/faiss_context.csv" 2>&1 | tee "$results/faiss_context.log"
      ;;
    sptag)
      "$root/bench/sptag/run_sptag.sh" "$data" "$results" 2>&1 | tee "$results/sptag.log"
      ;;
    *) echo "run_peers: unknown step '$step' (faiss, context, sptag)" >&2; exit 2 ;;
  esac
  machine "after $step" >> "$results/machine.txt"
done
echo "# results in $results"
