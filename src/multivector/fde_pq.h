// FdePq: the compressed candidate stage of multi-vector collections (docs/muvera.md "Collections",
// "FDE index"). A 4-bit product quantizer (inner product) over the documents' FDEs, codes packed
// for the fast-scan kernels (index/fast_scan.h), kept in RAM beside the float16 FDE rows: one
// query scans m/2 bytes per document instead of 2 * fde_dim, then the best candidates are
// re-scored with the exact float16 FDEs and re-ranked by exact Chamfer.
//
// Not persisted: trained deterministically (fixed seed, a strided sample of the first
// TrainRows(rows) rows) and rebuilt from the FDE rows at open, so a restart gives the same codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "index/fast_scan.h"
#include "index/pq.h"
#include "vectord/status.h"

namespace vectord {

class FdePq {
 public:
  // Documents a collection needs before the PQ stage is trained.
  static constexpr uint64_t kMinRows = 1000;
  // Rows sampled for training, at most.
  static constexpr size_t kSampleRows = 1024;
  // The training prefix for a collection of `rows` rows: the largest kMinRows * 4^j <= rows (0
  // below kMinRows). The quantizer is retrained (every row re-encoded) when this grows, so the
  // codebook follows the data at O(1) amortized encodes per row, and depends only on `rows`.
  static uint64_t TrainRows(uint64_t rows);
  // Subquantizers for an FDE of `dim` floats when the config leaves it open (0): the divisor of
  // dim nearest dim / dsub. With dsub = d_proj each subspace is one SimHash bucket of one
  // repetition (measured best per byte, docs/muvera.md).
  static uint32_t AutoM(uint32_t dim, uint32_t dsub);

  // Trains on n float vectors of `dim` (row-major), m subquantizers of 4 bits, inner product.
  static Result<std::unique_ptr<FdePq>> Train(uint32_t dim, uint32_t m, const float* sample,
                                              size_t n, uint64_t trained_rows, uint64_t seed);
  // An empty index over a given 4-bit quantizer (Train's result; tests).
  static std::unique_ptr<FdePq> Create(index::ProductQuantizer pq, uint64_t trained_rows);

  // ProductQuantizer::Encode's codes (nearest centroid per subspace by squared L2, ties to the
  // lower index, two 4-bit codes per byte; needs nbits 4), the 16 distances of a subspace
  // computed side by side: the generic path makes one kernel call per few-float distance.
  static void Encode(const index::ProductQuantizer& pq, const float* x, size_t n, uint8_t* codes);

  // The immutable encoder (shared with writers encoding a batch outside the collection's lock).
  const std::shared_ptr<const index::ProductQuantizer>& encoder() const { return pq_; }
  uint64_t trained_rows() const { return trained_rows_; }
  size_t code_size() const { return pq_->code_size(); }
  uint64_t rows() const { return rows_; }
  // RAM held by the packed codes.
  size_t bytes() const;

  // Appends n rows' codes (code_size() bytes each, as ProductQuantizer::Encode writes them).
  void Append(const uint8_t* codes, size_t n);
  // Approximate inner products of q with every row: (*out)[r] for r < rows() (more entries may
  // follow, padding to a whole block). The subquantizers are scanned in groups of at most
  // kGroupM, each with its own byte table (uint16 sums hold 256 full-range byte entries), so
  // the table's rounding error stays that of an 8-bit table whatever m.
  void Scan(const float* q, std::vector<float>* out) const;

  static constexpr uint32_t kGroupM = 256;

 private:
  FdePq(std::shared_ptr<const index::ProductQuantizer> pq, uint64_t trained_rows);

  std::shared_ptr<const index::ProductQuantizer> pq_;
  uint64_t trained_rows_ = 0;
  uint64_t rows_ = 0;
  uint32_t group_m_ = 0;  // subquantizers per group (m / packed_.size())
  // Per group: ceil(rows_ / 32) fast-scan blocks of its subquantizers' codes.
  std::vector<std::vector<uint8_t>> packed_;
};

}  // namespace vectord
