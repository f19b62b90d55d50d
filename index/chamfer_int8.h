// Approximate Chamfer (MaxSim) on 8-bit codes: the first stage of the two-stage multi-vector
// re-rank (docs/muvera.md "Two-stage re-rank"). Document token vectors are stored as per-vector
// affine uint8 codes (x ~ offset + scale * code), query vectors as per-vector symmetric int8 codes
// (q ~ scale * code); the code inner products are exact integers (AVX-512 VNNI / AVX-VNNI
// vpdpbusd, an AVX2 emulation, or scalar, picked at run time), so every kernel level returns the
// same bits: the Chamfer score of the dequantized sets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vectord::index {

// Which kernel the int8 Chamfer uses ("avx512" = AVX-512 VNNI, "avxvnni", "avx2" or "scalar"), and
// a switch for tests and benchmarks (false if the CPU lacks the level; "auto" = the best one).
const char* ChamferInt8KernelLevel();
bool SetChamferInt8KernelLevel(const char* level);

// One encoded document token vector: Int8CodeBytes(dim) bytes of codes (dim rounded up to a
// multiple of 4; padding codes 0), then float32 scale and offset (little-endian, unaligned).
inline uint32_t Int8CodeBytes(uint32_t dim) { return (dim + 3) / 4 * 4; }
inline uint32_t Int8RowBytes(uint32_t dim) { return Int8CodeBytes(dim) + 8; }

// Encodes n vectors of `dim` finite floats into n rows of Int8RowBytes(dim) bytes at `out`:
// offset = min, scale = (max - min) / 255, code = round((x - min) / scale) in [0, 255], so each
// element is off by at most scale / 2. Affine rather than symmetric: one-signed vectors (RootSIFT,
// ReLU outputs) get all 256 levels instead of 128; zero-centred ones the same step as symmetric.
void EncodeInt8Rows(const float* x, size_t n, uint32_t dim, uint8_t* out);
// Row j of n encoded rows back to floats (tests, error bounds).
void DecodeInt8Row(const uint8_t* row, uint32_t dim, float* x);

// A query set prepared for the kernels: per-vector symmetric int8 codes (scale = max|q| / 127,
// codes in [-127, 127]) laid out for the kernels in chunks of kChunkLanes query vectors, the
// count rounded up to 8 with zero lanes.
class Int8Query {
 public:
  static constexpr uint32_t kChunkLanes = 32;
  Int8Query(const float* q, size_t nq, uint32_t dim);

  uint32_t dim() const { return dim_; }
  uint32_t size() const { return nq_; }
  // Query vector i as decoded floats (tests, error bounds).
  std::vector<float> Decoded(uint32_t i) const;

 private:
  friend float ChamferInt8(const Int8Query& q, const uint8_t* rows, size_t nd);
  uint32_t dim_ = 0, nq_ = 0, k4_ = 0, lanes_ = 0;
  // Chunk c (lanes [32c, min(32c + 32, lanes_))) holds k4_ steps of [chunk lanes][4 codes].
  std::vector<int8_t> codes_;
  std::vector<float> scale_;   // per lane; 0 for padding lanes
  std::vector<float> sum_;     // per lane: the sum of its codes (the offset term)
  std::vector<int32_t> isum_;  // the same as integers (the AVX2 kernel's bias)
};

// Asks the CPU to start loading n encoded rows (the next document while the kernel scores the
// current one: candidates lie scattered over the copy, so the hardware prefetcher cannot guess
// the next; measured 1.3 -> 0.9 us per 36-vector document on 1,300 random documents of 22,659).
inline void PrefetchInt8Rows(const uint8_t* rows, size_t n, uint32_t dim) {
  const size_t bytes = n * Int8RowBytes(dim);
  for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(rows + b);
}

// sum over query vectors i of max over j < nd of <q_i, x_j>, q_i and x_j dequantized (computed
// as scale_i * max_j (scale_j * <code_i, code_j> + offset_j * sum(code_i))); `rows` holds the
// document's nd encoded rows back to back. An empty query scores 0, an empty document -infinity.
float ChamferInt8(const Int8Query& q, const uint8_t* rows, size_t nd);

}  // namespace vectord::index
