// Distance kernels for every stored data type, picked at run time for the CPU (AVX-512, AVX2,
// scalar) through GCC target attributes: one binary for every x86-64 machine.
// CONTRACT (owned by the kernels work; signatures may grow but not change):
#pragma once

#include <cstddef>
#include <cstdint>

namespace vectord::index {

// Which implementation the dispatcher picked: "avx512", "avx2" or "scalar".
const char* KernelLevel();
// Forces a level (for tests/benchmarks); returns false if the CPU lacks it. "auto" restores.
bool SetKernelLevel(const char* level);

// Squared L2 and inner product. a/b have d elements.
float L2SqrF32(const float* a, const float* b, size_t d);
float IpF32(const float* a, const float* b, size_t d);
uint32_t L2SqrU8(const uint8_t* a, const uint8_t* b, size_t d);  // exact integer result
int32_t IpU8(const uint8_t* a, const uint8_t* b, size_t d);
int32_t L2SqrI8(const int8_t* a, const int8_t* b, size_t d);
int32_t IpI8(const int8_t* a, const int8_t* b, size_t d);
float L2SqrF32U8(const float* q, const uint8_t* x, size_t d);  // float query, uint8 row
float IpF32U8(const float* q, const uint8_t* x, size_t d);
float L2SqrF32F16(const float* q, const uint16_t* x, size_t d);  // IEEE half rows
float IpF32F16(const float* q, const uint16_t* x, size_t d);

// Extensions to the contract.
float L2SqrF32I8(const float* q, const int8_t* x, size_t d);  // float query, int8 row
float IpF32I8(const float* q, const int8_t* x, size_t d);
// Squared L2 of one uint8 query against n consecutive rows of d bytes: out[i] = |q - row i|^2.
// Faster than n calls of L2SqrU8 (the query is widened once, four rows share each query load).
void L2SqrU8Rows(const uint8_t* q, const uint8_t* rows, size_t n, size_t d, uint32_t* out);
// L1 (Manhattan) distances, float query against rows of each type; scalar code.
float L1F32(const float* q, const float* x, size_t d);
float L1F32U8(const float* q, const uint8_t* x, size_t d);
float L1F32I8(const float* q, const int8_t* x, size_t d);
float L1F32F16(const float* q, const uint16_t* x, size_t d);

// Half-precision conversion (round to nearest even).
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

}  // namespace vectord::index
