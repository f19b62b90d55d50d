#!/usr/bin/env bash
# Builds the self-contained benchmark bundle for the 16-core device machine (docs/benchmarks.md
# "10M on the device"): bench_spann, bench_io, gen_clustered, vectorctl and bench_faiss_ivfpq (the
# Faiss peer; Debian ships libfaiss static), Release, with libstdc++,
# libgcc, OpenBLAS (+ gfortran/quadmath) and liburing linked statically, the remaining shared
# libraries (libroaring, libgomp, ...) copied beside the binaries (run_10m.sh puts the bundle on
# LD_LIBRARY_PATH; an rpath of $ORIGIN does not survive CMake + Ninja + sh quoting), and the real SIFT
# source vectors the generator resamples, gzip-compressed. The device has no package registry, so
# everything the run needs is in BUNDLE (default build-device/bundle, < 64 MiB; build-* is ignored
# by git, so it travels only when named in the device tool's `carry`).
#
#   bench/device/build_bundle.sh [BUILD_DIR (build-device)] [JOBS (2)]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-device}
jobs=${2:-2}
data=${VECTORD_SIFT_DIR:-$(pwd)/../shared/data/mate/sift}
lib=/usr/lib/x86_64-linux-gnu

# Static OpenBLAS: FindLAPACK's link check of the static archive lacks -lm/-lgfortran and fails, so
# its result is given (LAPACK_openblas_WORKS); the real links add them (CMAKE_*_STANDARD_LIBRARIES).
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVECTORD_WERROR=ON \
  -DVECTORD_BUILD_TESTS=OFF -DBLA_VENDOR=OpenBLAS -DBLA_STATIC=ON -DLAPACK_openblas_WORKS=1 -DURING_LIB="$lib/liburing.a" \
  -DCMAKE_EXE_LINKER_FLAGS='-static-libstdc++ -static-libgcc -Wl,--as-needed' \
  -DCMAKE_C_STANDARD_LIBRARIES='-Wl,-Bstatic -lgfortran -lquadmath -Wl,-Bdynamic -lm -lpthread' \
  -DCMAKE_CXX_STANDARD_LIBRARIES='-Wl,-Bstatic -lgfortran -lquadmath -Wl,-Bdynamic -lm -lpthread'
ninja -C "$build" -j"$jobs" bench_spann bench_io gen_clustered vectorctl bench_kernels \
  bench_faiss_ivfpq

bundle=$build/bundle
rm -rf "$bundle"
mkdir -p "$bundle"
for b in bench/bench_spann bench/bench_io bench/gen_clustered vectorctl bench/bench_kernels \
  bench/bench_faiss_ivfpq; do
  strip -o "$bundle/$(basename $b)" "$build/$b"
done
# Shared libraries that are not part of glibc, beside the binaries (LD_LIBRARY_PATH in run_10m.sh).
for b in "$bundle"/bench_spann "$bundle"/bench_io "$bundle"/gen_clustered "$bundle"/vectorctl \
  "$bundle"/bench_kernels "$bundle"/bench_faiss_ivfpq; do
  ldd "$b" | awk '/=> \//{print $3}'
done | sort -u | grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
  while read -r so; do cp -L "$so" "$bundle/"; done
# fio is not bundled: with its Debian dependencies (ceph, gluster, icu...) it is 80 MB. bench_io
# measures the disk with raw io_uring O_DIRECT reads instead (and with fio where one is installed).
# Real SIFT descriptors for gen_clustered (base: the rows resampled; query: the query seeds).
gzip -1 -c "$data/base.bvecs" >"$bundle/sift_base.bvecs.gz"
# The two binaries with OpenBLAS inside (all of its CPU kernels) travel gzip-compressed (30 + 39 MB
# -> 8 + 12 MB); run_10m.sh unpacks them beside the libraries.
gzip -9 "$bundle/bench_spann" "$bundle/vectorctl" "$bundle/bench_faiss_ivfpq"
cp "$data/query.bvecs" "$bundle/sift_query.bvecs"
cp bench/device/run_10m.sh bench/device/diag_build.sh "$bundle/"
du -sh "$bundle"
ls -la "$bundle"
