// Product quantization (Jégou et al., PAMI 2011) for the SPANN posting lists: training through
// Faiss, encoding/decoding and look-up tables with our own kernels, and a checksummed byte format
// (docs/pq.md). The 4-bit fast-scan kernels that read the codes live in index/fast_scan.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vectord/status.h"

namespace vectord::index {

// What a look-up table holds: squared L2 (smaller is closer) or inner product (larger is closer).
enum class PqMetric { kL2, kIP };

struct PqParams {
  uint32_t dim = 0;    // vector dimension; > 0
  uint32_t m = 0;      // number of subquantizers; dim % m == 0
  uint32_t nbits = 4;  // bits per subquantizer code: 4 (fast-scan) or 8
};

class ProductQuantizer {
 public:
  // Trains on n sample vectors (row-major float, n >= 1 << nbits) with faiss::ProductQuantizer
  // (k-means per subspace, 25 iterations). Deterministic for a given seed and input.
  // `threads` = OpenMP threads Faiss may use in this call (0 = OpenMP's default). Faiss's k-means
  // parallelizes in small steps, which on a busy machine costs far more than it gains: use 1 for
  // small samples and in tests (measured: 20x slower with 2 threads on a loaded 2-core box).
  static Result<ProductQuantizer> Train(const PqParams& p, const float* x, size_t n, uint64_t seed,
                                        int threads = 0);
  // Builds a quantizer from given centroids (m x ksub x dsub floats), e.g. for tests.
  static Result<ProductQuantizer> FromCentroids(const PqParams& p, std::vector<float> centroids);

  const PqParams& params() const { return params_; }
  uint32_t ksub() const { return 1u << params_.nbits; }
  uint32_t dsub() const { return params_.dim / params_.m; }
  // Bytes per vector: ceil(m * nbits / 8). With 4 bits, subquantizer 2j is the low nibble of
  // byte j and 2j+1 the high nibble (Faiss's packing); an odd m leaves the last high nibble 0.
  size_t code_size() const { return (size_t{params_.m} * params_.nbits + 7) / 8; }
  // m x ksub x dsub floats: centroid k of subquantizer j starts at (j * ksub + k) * dsub.
  const std::vector<float>& centroids() const { return centroids_; }

  // Nearest centroid per subspace (ties to the lower index), with index/distance.h's kernels.
  // Const and stateless: safe to call from many threads at once.
  void Encode(const float* x, size_t n, uint8_t* codes) const;
  void Decode(const uint8_t* codes, size_t n, float* x) const;
  // m x ksub table: lut[j * ksub + k] = squared L2 (kL2) or inner product (kIP) between query
  // sub-vector j and centroid k of subquantizer j. Summing one entry per subquantizer gives the
  // distance (or inner product) between q and the decoded vector.
  void ComputeLut(const float* q, PqMetric metric, float* lut) const;

  // Byte format: docs/pq.md ("VDPQ", version 1, params, centroids, CRC-32C).
  std::string Serialize() const;
  static Result<ProductQuantizer> Deserialize(std::string_view bytes);

 private:
  ProductQuantizer(const PqParams& p, std::vector<float> centroids)
      : params_(p), centroids_(std::move(centroids)) {}

  PqParams params_;
  std::vector<float> centroids_;
};

// CRC-32C (Castagnoli), software table version. The index layer keeps its own copy so that it
// does not depend on storage/; same polynomial and result as storage/crc32c.h.
uint32_t PqCrc32c(const void* data, size_t n);

}  // namespace vectord::index
