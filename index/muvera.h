// MUVERA fixed-dimensional encodings (FDEs) of vector sets (Dhulipala et al., "MUVERA: Multi-Vector
// Retrieval via Fixed Dimensional Encodings", NeurIPS 2024): the inner product of a query FDE and
// a document FDE approximates the Chamfer (MaxSim) similarity of the two sets (index/chamfer.h), so
// a single-vector inner-product index finds candidates that exact Chamfer then re-ranks.
//
// Encoding (paper section 2; docs/muvera.md). For each of r_reps independent repetitions:
//   1. SimHash: k_sim Gaussian hyperplanes give each vector a k_sim-bit code = one of 2^k_sim
//      buckets (bit i set when <x, g_i> > 0).
//   2. Inner projection: each vector is multiplied by a random +-1 matrix scaled by 1/sqrt(d_proj)
//      (d_proj == dim: identity, no projection).
//   3. Per bucket, queries SUM their projected vectors, documents AVERAGE theirs; a document
//      bucket that no vector fell into is filled (fill_empty) with the projected vector whose code
//      is nearest to the bucket's in Hamming distance (lowest vector index on ties).
//   The repetitions' 2^k_sim * d_proj blocks are concatenated: r_reps * 2^k_sim * d_proj floats.
//   4. Optional final projection (final_dim > 0): a count-sketch (each coordinate added with a
//      random sign into one random output coordinate) down to final_dim floats.
// Everything random comes from `seed` through the encoder's own generator (splitmix64 +
// Box-Muller), so the same parameters give the same FDE on every platform and library version:
// the seed is stored with the collection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vectord/status.h"

namespace vectord::index {

struct MuveraParams {
  uint32_t dim = 0;        // dimension of the input vectors; required, 1 .. 65536
  uint32_t k_sim = 5;      // SimHash bits per repetition: 2^k_sim buckets; 0 .. 16
  uint32_t d_proj = 16;    // inner projection dimension, 1 .. dim (dim = no projection)
  uint32_t r_reps = 20;    // independent repetitions, 1 .. 1024
  uint32_t final_dim = 0;  // 0 = no final projection; else the count-sketch output dimension,
                           // 1 .. r_reps * 2^k_sim * d_proj
  bool fill_empty = true;  // fill empty document buckets from the Hamming-nearest vector
  uint64_t seed = 42;      // all randomness derives from it
  // Optional SimHash origin (empty, or dim floats; a vectord extension to the paper): codes are
  // taken of x - center, so the hyperplanes pass through it. Data that lie in one orthant (SIFT,
  // RootSIFT, ReLU embeddings) fall almost all on one side of hyperplanes through 0, which leaves
  // most buckets empty; the mean of a sample of the collection's vectors is the usual choice.
  // Only the partition moves: the projected vectors and the Chamfer approximation are unchanged.
  std::vector<float> center = {};
};

// Largest FDE (before the final projection) accepted, in floats: 16 MiB per encoded set.
inline constexpr uint64_t kMaxRawFdeDim = uint64_t{1} << 22;

// OK, or InvalidArgument naming the field, its value and the allowed range.
Status ValidateMuveraParams(const MuveraParams& p);

class FdeEncoder {
 public:
  static Result<FdeEncoder> Create(const MuveraParams& params);

  const MuveraParams& params() const { return params_; }
  // Floats in one FDE: final_dim if set, else r_reps * 2^k_sim * d_proj.
  uint32_t fde_dim() const { return fde_dim_; }
  // r_reps * 2^k_sim * d_proj: the FDE before the final projection.
  uint32_t raw_dim() const { return raw_dim_; }

  // `vecs` holds n row-major vectors of params().dim floats; `out` receives fde_dim() floats.
  // An empty set encodes as all zeros. Thread-safe (the encoder is immutable).
  void EncodeQuery(const float* vecs, size_t n, float* out) const;     // per-bucket sum
  void EncodeDocument(const float* vecs, size_t n, float* out) const;  // per-bucket average

 private:
  explicit FdeEncoder(const MuveraParams& p) : params_(p) {}
  void Encode(const float* vecs, size_t n, bool is_query, float* out) const;

  MuveraParams params_;
  uint32_t raw_dim_ = 0;
  uint32_t fde_dim_ = 0;
  bool identity_proj_ = false;  // d_proj == dim: vectors are used as they are
  // Per repetition, k_sim hyperplane rows then (unless identity_proj_) d_proj projection rows, dim
  // floats each: r_reps * rows_per_rep_ * dim floats.
  uint32_t rows_per_rep_ = 0;
  std::vector<float> rows_;
  // Per repetition, k_sim offsets <g_i, center> subtracted before the sign test (zeros if none).
  std::vector<float> offsets_;
  // Final count-sketch: raw coordinate i goes to final_index_[i] with sign final_sign_[i].
  std::vector<uint32_t> final_index_;
  std::vector<float> final_sign_;
};

}  // namespace vectord::index
