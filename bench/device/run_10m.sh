#!/usr/bin/env bash
# The 10M-vector SPANN run on the 16-core device machine (docs/benchmarks.md "10M on the device"),
# from the bundle that bench/device/build_bundle.sh makes (it needs nothing installed there).
# Phases (each skipped when its output is already in WORK, so an interrupted run continues):
#   machine  CPU flags, memory, the filesystem of WORK and an O_DIRECT check -> machine.txt
#   gen      gen_clustered: N base + 1000 query vectors from the real SIFT descriptors
#   gt       vectorctl gt: exact top-100 (all cores)
#   io       bench_io: the disk's 4 KiB random-read IOPS (io_uring and pread, O_DIRECT)
#   build    bench_spann --rebuild with a one-point sweep: build time and build peak RSS
#   sweep    bench_spann on the built index: recall@10 / QPS (1 and T threads) / p50 / p99 / pages
#   load     bench_spann at a few points with more threads: IOPS under concurrent load
#   faiss    bench_faiss_ivfpq on the same data (FAISS=1 only): Faiss IVF-PQ fast-scan + refine
# Results (at most 8 files, for the device tool's $OUT) go to WORK/results.
#
#   run_10m.sh all   WORK [N (10000000)]        run the phases in the foreground
#   run_10m.sh start WORK [N]                   the same in a new session, in the background
#   run_10m.sh wait  WORK SECONDS [COPY_TO]     wait until done or SECONDS passed, copy results
# Environment: BUNDLE (binaries; default: this script's directory, else build-device/bundle),
# NPROBE / RERANK / EPS (sweep lists), THREADS (all-threads mode, default 2 x cores), LOAD_THREADS,
# LOAD_NPROBE, IO_MIB (size of the bench_io file, default 8192).
set -uo pipefail
cmd=${1:?usage: run_10m.sh all|start|wait WORK ...}
work=${2:?WORK directory}
here=$(cd "$(dirname "$0")" && pwd)
if [[ -z "${BUNDLE:-}" ]]; then
  if [[ -e "$here/bench_spann" || -e "$here/bench_spann.gz" ]]; then BUNDLE=$here; else BUNDLE=$here/../../build-device/bundle; fi
fi
BUNDLE=$(cd "$BUNDLE" && pwd)
# The shared libraries copied beside the binaries (libroaring, libgomp, ...).
export LD_LIBRARY_PATH=$BUNDLE${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# OpenBLAS (linked statically for Faiss) starts one server thread per core at load, and on the
# device those threads spin (sched_yield) whether or not BLAS is called: with 16 of them the build
# ran at a third of its speed, half of it system time. Nothing on these paths needs threaded BLAS.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
res=$work/results
mkdir -p "$res"

case "$cmd" in
  start)
    setsid nohup "$0" all "$work" "${3:-10000000}" >"$res/run.log" 2>&1 </dev/null &
    echo "started: log $res/run.log"
    exit 0
    ;;
  wait)
    secs=${3:?SECONDS}
    end=$((SECONDS + secs))
    while [[ ! -e "$res/done" && $SECONDS -lt $end ]]; do sleep 5; done
    [[ -e "$res/done" ]] && echo "finished: $(cat "$res/done")" || echo "still running"
    tail -c 6000 "$res/run.log"
    if [[ -n "${4:-}" ]]; then cp "$res"/* "$4"/ 2>/dev/null; fi
    exit 0
    ;;
  all) ;;
  *)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac

n=${3:-10000000}
cores=$(nproc)
threads=${THREADS:-$((2 * cores))}
load_threads=${LOAD_THREADS:-64,128}
nprobe=${NPROBE:-4,8,12,16,24,32,48,64}
rerank=${RERANK:-32,64,128}
eps=${EPS:-0.6}
log() { echo "[$(date +%T) +${SECONDS}s] $*"; }
rm -f "$res/done"
for z in "$BUNDLE"/bench_spann.gz "$BUNDLE"/vectorctl.gz "$BUNDLE"/bench_faiss_ivfpq.gz; do
  [[ -e "$z" && ! -x "${z%.gz}" ]] && gzip -dc "$z" >"${z%.gz}" && chmod +x "${z%.gz}"
done
trap 'echo "exit $? at +${SECONDS}s" >"$res/done"' EXIT
set -e

if [[ ! -s "$res/machine.txt" ]]; then
  log "machine"
  {
    echo "cores: $cores"
    grep -m1 'model name' /proc/cpuinfo
    echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512bw|avx512vl|avx512_vnni|avx512vnni|amx_int8)$' | tr '\n' ' ')"
    uname -a
    grep -E 'MemTotal|MemAvailable' /proc/meminfo
    df -hT "$work"
    stat -f -c 'filesystem type of WORK: %T' "$work"
    grep -v -E 'cgroup|proc|sysfs|devpts|mqueue' /proc/mounts
    lsblk -o NAME,SIZE,ROTA,TYPE,MOUNTPOINT 2>/dev/null || true
    for q in /sys/block/*/queue; do echo "$q: rotational=$(cat $q/rotational) scheduler=$(cat $q/scheduler 2>/dev/null) nr_requests=$(cat $q/nr_requests)"; done
    echo "io_uring_disabled: $(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo n/a)"
    dd if=/dev/zero of="$work/odirect.test" bs=1M count=64 oflag=direct 2>&1 | tail -1
    dd if="$work/odirect.test" of=/dev/null bs=4k count=4096 iflag=direct 2>&1 | tail -1
    rm -f "$work/odirect.test"
    cat /proc/loadavg
  } >"$res/machine.txt" 2>&1
  cat "$res/machine.txt"
fi

if [[ ! -s "$work/base.u8bin" ]]; then
  log "gen: $n vectors"
  gzip -dc "$BUNDLE/sift_base.bvecs.gz" >"$work/sift_base.bvecs"
  "$BUNDLE/gen_clustered" --base "$work/sift_base.bvecs" --query "$BUNDLE/sift_query.bvecs" \
    --n "$n" --nq 1000 --out-base "$work/base.tmp.u8bin" --out-query "$work/query.u8bin"
  mv "$work/base.tmp.u8bin" "$work/base.u8bin"
fi

if [[ ! -s "$work/gt.ivecs" ]]; then
  log "gt"
  "$BUNDLE/vectorctl" gt --base "$work/base.u8bin" --query "$work/query.u8bin" --k 100 \
    --out "$work/gt.tmp.ivecs" 2>&1 | tr '\r' '\n' | grep -v '^gt.*query-chunks' || true
  mv "$work/gt.tmp.ivecs" "$work/gt.ivecs"
fi

if [[ ! -s "$res/bench_io.csv" ]]; then
  log "io"
  "$BUNDLE/bench_io" --dir "$work" --size-mib "${IO_MIB:-8192}" --seconds 2 --depths 1,8,32,128,256 \
    --csv "$res/bench_io.tmp.csv" --remove
  mv "$res/bench_io.tmp.csv" "$res/bench_io.csv"
fi

common=(--base "$work/base.u8bin" --query "$work/query.u8bin" --gt "$work/gt.ivecs"
  --dir "$work/idx" --threads "$threads" --layout "${LAYOUT:-pq4}")
if [[ ! -s "$res/spann_build.txt" ]]; then
  log "build"
  "$BUNDLE/bench_spann" "${common[@]}" --rebuild --nprobe 32 --rerank 64 --eps "$eps" \
    2>&1 | tr '\r' '\n' | tee "$res/spann_build.tmp.txt"
  ls -l "$work/idx" >>"$res/spann_build.tmp.txt"
  mv "$res/spann_build.tmp.txt" "$res/spann_build.txt"
fi

if [[ ! -s "$res/spann_sweep.csv" ]]; then
  log "sweep: nprobe $nprobe, rerank $rerank, eps $eps, $threads threads"
  "$BUNDLE/bench_spann" "${common[@]}" --nprobe "$nprobe" --rerank "$rerank" --eps "$eps" \
    --csv "$res/spann_sweep.tmp.csv"
  mv "$res/spann_sweep.tmp.csv" "$res/spann_sweep.csv"
fi

if [[ ! -s "$res/spann_load.csv" ]]; then
  for t in ${load_threads//,/ }; do
    log "load: $t threads"
    "$BUNDLE/bench_spann" "${common[@]}" --threads "$t" --nprobe "${LOAD_NPROBE:-16,32}" \
      --rerank 64 --eps "$eps" --csv "$res/spann_load_$t.csv"
  done
  {
    head -1 "$res/spann_load_${load_threads%%,*}.csv"
    for t in ${load_threads//,/ }; do tail -n +2 "$res/spann_load_$t.csv"; done
  } >"$res/spann_load.tmp.csv"
  rm -f "$res"/spann_load_*.csv
  mv "$res/spann_load.tmp.csv" "$res/spann_load.csv"
fi
if [[ "${FAISS:-0}" == 1 && ! -s "$res/faiss.csv" ]]; then
  # Faiss's k-means and coarse assignment run their GEMMs through OpenBLAS: all cores here.
  log "faiss: nlist ${FAISS_NLIST:-16384}, m 32"
  OPENBLAS_NUM_THREADS=$cores "$BUNDLE/bench_faiss_ivfpq" --base "$work/base.u8bin" \
    --query "$work/query.u8bin" --gt "$work/gt.ivecs" --nlist "${FAISS_NLIST:-16384}" --m 32 \
    --kfactor "${FAISS_KFACTOR:-8,16,32,64}" --nprobe "${FAISS_NPROBE:-16,32,64,128}" \
    --threads "$cores" --tmp "$work" --csv "$res/faiss.tmp.csv" 2>&1 | tee "$res/faiss.txt"
  mv "$res/faiss.tmp.csv" "$res/faiss.csv"
fi
log "all done"
