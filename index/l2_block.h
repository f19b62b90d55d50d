// Blocked squared-L2 distances of many rows to many centroids (the GEMM form
// |x|^2 + |c|^2 - 2 x.c), for the SPANN build's k-means and assignment pass. The centroids are
// packed once into panels of 16 (dimension-major inside a panel) so that a register tile of rows
// x 32 centroids is computed with one FMA per row, centroid and dimension; AVX-512, AVX2 or scalar
// chosen at run time. Every distance is computed by the same sequence of operations wherever its
// row and centroid sit in a block, so results do not depend on how callers split the work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vectord::index {

// Centroids packed for L2SqrBlock.
class CentroidPanels {
 public:
  static constexpr uint32_t kWidth = 16;  // centroids per panel

  CentroidPanels() = default;
  CentroidPanels(const float* centroids, uint32_t k, uint32_t dim) { Pack(centroids, k, dim); }
  // Packs k row-major centroids of dim floats (zero-padded to whole panels).
  void Pack(const float* centroids, uint32_t k, uint32_t dim);

  uint32_t k() const { return k_; }
  uint32_t dim() const { return dim_; }
  uint32_t panels() const { return (k_ + kWidth - 1) / kWidth; }
  uint32_t padded() const { return panels() * kWidth; }  // row stride of L2SqrBlock's output
  const float* panel(uint32_t p) const { return data_.data() + size_t{p} * dim_ * kWidth; }
  const float* norms() const { return norms_.data(); }  // padded() entries
  size_t MemoryBytes() const { return (data_.capacity() + norms_.capacity()) * sizeof(float); }

 private:
  uint32_t k_ = 0;
  uint32_t dim_ = 0;
  std::vector<float> data_;
  std::vector<float> norms_;
};

// Squared norms of n rows of dim floats.
void SquaredNorms(const float* x, size_t n, uint32_t dim, float* out);

// out[i * ldo + j] = max(0, x_norms[i] + |c_j|^2 - 2 x_i.c_j) for i < nx and the centroids j of
// panels [p_begin, p_end) (j counted from p_begin * 16; padding lanes are written too, so ldo must
// be >= 16 * (p_end - p_begin)). x: nx row-major rows of c.dim() floats.
void L2SqrBlock(const float* x, const float* x_norms, size_t nx, const CentroidPanels& c,
                uint32_t p_begin, uint32_t p_end, float* out, size_t ldo);

// Positions j < n with d[j] <= limit, ascending, to idx (n entries of room); returns how many.
// The candidate filter of top-k selection over L2SqrBlock's output.
size_t IndicesAtMost(const float* d, size_t n, float limit, uint32_t* idx);

// Which implementation runs ("avx512", "avx2", "scalar"); SetL2BlockLevel as SetKernelLevel.
const char* L2BlockLevel();
bool SetL2BlockLevel(const char* level);

}  // namespace vectord::index
