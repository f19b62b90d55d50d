// Look-up-table scan kernels for PQ codes: the 4-bit fast-scan (codes packed in blocks of 32
// vectors, tables held in SIMD registers and read with pshufb, uint16 sums; André et al.,
// "Quicker ADC", and Faiss's IndexPQFastScan use the same idea) and a plain float-table scan for
// 8-bit codes. Runtime CPU dispatch (AVX-512BW, AVX2, scalar) as in index/distance.cc.
// Byte layout and error bounds: docs/pq.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vectord::index {

// Vectors per fast-scan block.
inline constexpr size_t kFastScanBlock = 32;

// Bytes per 32-vector block: 16 * m rounded up to even (one byte holds two vectors' 4-bit codes).
size_t FastScanBlockBytes(uint32_t m);
// Packs n 4-bit codes (ceil(m / 2) bytes each, as ProductQuantizer::Encode writes them) into
// ceil(n / 32) blocks of FastScanBlockBytes(m) bytes at `out`. Missing vectors of the last block
// get code 0 in every subquantizer.
void PackFastScan(const uint8_t* codes, size_t n, uint32_t m, uint8_t* out);
// Vector i's codes, back in Encode's layout (ceil(m / 2) bytes).
void UnpackFastScanCode(const uint8_t* packed, size_t i, uint32_t m, uint8_t* code_out);

// A float LUT (m x 16) quantized to bytes: table[j * 16 + k] = round((lut[j][k] - min_j) * scale),
// with rows padded to an even count by a zero row. The estimate for a sum of table entries `acc`
// is bias + acc / scale, where bias = sum_j min_j; its error against the float LUT sum is at most
// m * 0.5 / scale (rounding), see MaxError(). `scale` is common to all rows and chosen so that each
// entry fits a byte and every possible sum fits uint16: the kernels cannot overflow.
struct QuantizedLut {
  std::vector<uint8_t> table;
  float scale = 1;
  float bias = 0;
  uint32_t m = 0;  // subquantizers (before padding)
  // Bound on |FastScanToFloat(acc) - float LUT sum| for any code.
  float MaxError() const { return 0.5f * static_cast<float>(m) / scale; }
};
QuantizedLut QuantizeLut(const float* lut, uint32_t m);

// out[v] for v in [0, nblocks * 32) = sum over subquantizers of lut.table entries for the codes of
// packed vector v. Exact integer arithmetic at every level (no saturation possible).
void FastScanAccumulate(const uint8_t* packed, size_t nblocks, uint32_t m, const QuantizedLut& lut,
                        uint16_t* out);
inline float FastScanToFloat(const QuantizedLut& lut, uint16_t acc) {
  return lut.bias + static_cast<float>(acc) / lut.scale;
}

// 8-bit codes (m bytes per vector, contiguous): out[i] = sum_j lut[j * 256 + codes[i * m + j]].
// Float sums in subquantizer order at every level (unrolled scalar: SIMD gathers measured slower).
void Scan8(const uint8_t* codes, size_t n, uint32_t m, const float* lut, float* out);

// Active level: "avx512", "avx2" or "scalar".
const char* FastScanLevel();
// Forces a level ("scalar", "avx2", "avx512", or "auto" for the best one); false if the CPU lacks
// it. For tests and benchmarks; not meant to be flipped while other threads scan.
bool SetFastScanLevel(const char* level);

}  // namespace vectord::index
