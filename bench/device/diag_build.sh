#!/usr/bin/env bash
# Per-core build speed on the device vs the dev VM (docs/benchmarks.md "SPANN build speed"):
# generates an N-row SIFT-like set with the bundle's gen_clustered, computes its ground truth,
# builds the SPANN index with 1 build thread and with every hardware thread (bench_spann prints
# wall, user and system CPU seconds of the build), and runs the kernel micro-benchmarks.
#
#   diag_build.sh WORK [N (1000000)] [RESULTS_DIR]
set -uo pipefail
work=${1:?usage: diag_build.sh WORK [N] [RESULTS_DIR]}
n=${2:-1000000}
out=${3:-$work}
here=$(cd "$(dirname "$0")" && pwd)
BUNDLE=${BUNDLE:-$here}
export LD_LIBRARY_PATH=$BUNDLE${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OPENBLAS_NUM_THREADS=1
mkdir -p "$work" "$out"
for z in "$BUNDLE"/bench_spann.gz "$BUNDLE"/vectorctl.gz; do
  [[ -e "$z" && ! -x "${z%.gz}" ]] && gzip -dc "$z" >"${z%.gz}" && chmod +x "${z%.gz}"
done
log() { echo "[$(date +%T) +${SECONDS}s] $*"; }
{
  nproc
  grep -m1 'model name' /proc/cpuinfo
  grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^avx512(f|bw|vl|_vnni)$|^avx2$' | tr '\n' ' '
  echo
  lscpu 2>/dev/null | grep -E 'Thread|Core|Socket|NUMA|MHz|L2|L3' || true
} | tee "$out/diag_machine.txt"
if [[ -x "$BUNDLE/bench_kernels" ]]; then
  log "kernels"
  "$BUNDLE/bench_kernels" --benchmark_min_time=0.05 2>&1 | tail -40 | tee "$out/diag_kernels.txt"
fi
if [[ ! -s "$work/base.u8bin" ]]; then
  log "gen $n"
  [[ -s "$work/sift_base.bvecs" ]] || gzip -dc "$BUNDLE/sift_base.bvecs.gz" >"$work/sift_base.bvecs"
  "$BUNDLE/gen_clustered" --base "$work/sift_base.bvecs" --query "$BUNDLE/sift_query.bvecs" \
    --n "$n" --nq 1000 --out-base "$work/base.u8bin" --out-query "$work/query.u8bin"
fi
if [[ ! -s "$work/gt.ivecs" ]]; then
  log "gt"
  "$BUNDLE/vectorctl" gt --base "$work/base.u8bin" --query "$work/query.u8bin" --k 100 \
    --out "$work/gt.ivecs" 2>&1 | tr '\r' '\n' | tail -2
fi
for t in 1 0; do
  log "build with ${t/#0/all} build threads"
  "$BUNDLE/bench_spann" --base "$work/base.u8bin" --query "$work/query.u8bin" --gt "$work/gt.ivecs" \
    --dir "$work/idx" --layout full --rebuild --build-threads "$t" --nprobe 8 --threads 1 2>&1 |
    tr '\r' '\n' | grep -E '^#|^full' | tee "$out/diag_build_t$t.txt"
done
log "done"
