// MUVERA fixed-dimensional encodings: parameter validation, the seeded random matrices and the
// query/document encoders. See muvera.h for the algorithm.
#include "index/muvera.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "index/distance.h"

namespace vectord::index {
namespace {

// splitmix64 (Steele, Lea, Flood 2014): a tiny generator whose output is fixed by its definition,
// unlike std:: distributions, whose results differ between standard library versions.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : x_(seed) {}
  uint64_t Next() {
    uint64_t z = (x_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in (0, 1], 53 random bits.
  double Uniform() { return static_cast<double>((Next() >> 11) + 1) * 0x1.0p-53; }
  // Standard normal by the Box-Muller transform (one of each pair kept for the next call).
  double Gaussian() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(Uniform()));
    const double t = 2.0 * M_PI * Uniform();
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }
  // Uniform in [0, n).
  uint32_t Below(uint32_t n) {
    return static_cast<uint32_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  uint64_t x_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// Independent streams per repetition and for the final sketch, derived from the one seed.
uint64_t StreamSeed(uint64_t seed, uint64_t stream) {
  SplitMix64 g(seed ^ (0xD1B54A32D192ED03ull * (stream + 1)));
  return g.Next();
}
constexpr uint64_t kFinalStream = 0xFFFFFFFFull;

Status OutOfRange(const char* field, uint64_t value, uint64_t lo, uint64_t hi, const char* what) {
  return Status::InvalidArgument("muvera_config: " + std::string(field) + " = " +
                                 std::to_string(value) + " is out of range [" + std::to_string(lo) +
                                 ", " + std::to_string(hi) + "] (" + what + ")");
}

}  // namespace

Status ValidateMuveraParams(const MuveraParams& p) {
  if (p.dim < 1 || p.dim > 65536) {
    return OutOfRange("dim", p.dim, 1, 65536, "dimension of the input vectors");
  }
  if (p.k_sim > 16) return OutOfRange("k_sim", p.k_sim, 0, 16, "SimHash bits, 2^k_sim buckets");
  if (p.d_proj < 1 || p.d_proj > p.dim) {
    return OutOfRange("d_proj", p.d_proj, 1, p.dim, "inner projection dimension, at most dim");
  }
  if (p.r_reps < 1 || p.r_reps > 1024) {
    return OutOfRange("r_reps", p.r_reps, 1, 1024, "repetitions");
  }
  const uint64_t raw = uint64_t{p.r_reps} * (uint64_t{1} << p.k_sim) * p.d_proj;
  if (raw > kMaxRawFdeDim) {
    return Status::InvalidArgument(
        "muvera_config: r_reps * 2^k_sim * d_proj = " + std::to_string(p.r_reps) + " * 2^" +
        std::to_string(p.k_sim) + " * " + std::to_string(p.d_proj) + " = " + std::to_string(raw) +
        " floats per encoding exceeds the limit of " + std::to_string(kMaxRawFdeDim) +
        "; lower k_sim, d_proj or r_reps");
  }
  if (!p.center.empty() && p.center.size() != p.dim) {
    return Status::InvalidArgument("muvera_config: center has " + std::to_string(p.center.size()) +
                                   " values, expected 0 or dim = " + std::to_string(p.dim));
  }
  for (size_t i = 0; i < p.center.size(); ++i) {
    if (!std::isfinite(p.center[i])) {
      return Status::InvalidArgument("muvera_config: center[" + std::to_string(i) +
                                     "] is not a finite number");
    }
  }
  if (p.final_dim > raw) {
    return OutOfRange("final_dim", p.final_dim, 0, raw,
                      "0 = no final projection, else at most r_reps * 2^k_sim * d_proj");
  }
  return Status::OK();
}

Result<FdeEncoder> FdeEncoder::Create(const MuveraParams& params) {
  VECTORD_RETURN_IF_ERROR(ValidateMuveraParams(params));
  FdeEncoder e(params);
  const uint32_t dim = params.dim;
  e.identity_proj_ = params.d_proj == dim;
  e.raw_dim_ = params.r_reps * (1u << params.k_sim) * params.d_proj;
  e.fde_dim_ = params.final_dim > 0 ? params.final_dim : e.raw_dim_;
  e.rows_per_rep_ = params.k_sim + (e.identity_proj_ ? 0 : params.d_proj);
  e.rows_.resize(size_t{params.r_reps} * e.rows_per_rep_ * dim);
  const float proj_scale = 1.0f / std::sqrt(static_cast<float>(params.d_proj));
  for (uint32_t rep = 0; rep < params.r_reps; ++rep) {
    SplitMix64 rng(StreamSeed(params.seed, rep));
    float* rows = e.rows_.data() + size_t{rep} * e.rows_per_rep_ * dim;
    for (size_t i = 0; i < size_t{params.k_sim} * dim; ++i) {
      rows[i] = static_cast<float>(rng.Gaussian());
    }
    if (!e.identity_proj_) {
      float* proj = rows + size_t{params.k_sim} * dim;
      for (size_t i = 0; i < size_t{params.d_proj} * dim; i += 64) {
        const uint64_t bits = rng.Next();
        const size_t m = std::min<size_t>(64, size_t{params.d_proj} * dim - i);
        for (size_t b = 0; b < m; ++b) proj[i + b] = (bits >> b) & 1 ? proj_scale : -proj_scale;
      }
    }
  }
  e.offsets_.assign(size_t{params.r_reps} * params.k_sim, 0.0f);
  if (!params.center.empty()) {
    for (uint32_t rep = 0; rep < params.r_reps; ++rep) {
      for (uint32_t b = 0; b < params.k_sim; ++b) {
        e.offsets_[size_t{rep} * params.k_sim + b] = IpF32(
            e.rows_.data() + (size_t{rep} * e.rows_per_rep_ + b) * dim, params.center.data(), dim);
      }
    }
  }
  if (params.final_dim > 0) {
    SplitMix64 rng(StreamSeed(params.seed, kFinalStream));
    e.final_index_.resize(e.raw_dim_);
    e.final_sign_.resize(e.raw_dim_);
    for (uint32_t i = 0; i < e.raw_dim_; ++i) {
      e.final_index_[i] = rng.Below(params.final_dim);
      e.final_sign_[i] = rng.Next() >> 63 ? 1.0f : -1.0f;
    }
  }
  return e;
}

void FdeEncoder::EncodeQuery(const float* vecs, size_t n, float* out) const {
  Encode(vecs, n, /*is_query=*/true, out);
}

void FdeEncoder::EncodeDocument(const float* vecs, size_t n, float* out) const {
  Encode(vecs, n, /*is_query=*/false, out);
}

void FdeEncoder::Encode(const float* vecs, size_t n, bool is_query, float* out) const {
  const uint32_t dim = params_.dim;
  const uint32_t k_sim = params_.k_sim;
  const uint32_t buckets = 1u << k_sim;
  const uint32_t dp = params_.d_proj;
  std::vector<float> raw_buf;
  float* raw = out;
  if (params_.final_dim > 0) {
    raw_buf.assign(raw_dim_, 0.0f);
    raw = raw_buf.data();
  } else {
    std::fill(out, out + raw_dim_, 0.0f);
  }
  if (n > 0) {
    std::vector<uint32_t> codes(n);
    std::vector<float> proj(identity_proj_ ? 0 : n * dp);
    std::vector<uint32_t> counts(buckets);
    for (uint32_t rep = 0; rep < params_.r_reps; ++rep) {
      const float* rows = rows_.data() + size_t{rep} * rows_per_rep_ * dim;
      const float* offs = offsets_.data() + size_t{rep} * k_sim;
      for (size_t v = 0; v < n; ++v) {
        const float* x = vecs + v * dim;
        uint32_t code = 0;
        for (uint32_t b = 0; b < k_sim; ++b) {
          if (IpF32(rows + size_t{b} * dim, x, dim) > offs[b]) code |= 1u << b;
        }
        codes[v] = code;
        if (!identity_proj_) {
          const float* prows = rows + size_t{k_sim} * dim;
          float* p = proj.data() + v * dp;
          for (uint32_t j = 0; j < dp; ++j) p[j] = IpF32(prows + size_t{j} * dim, x, dim);
        }
      }
      // The projected vector v: either a row of proj or the input itself.
      const auto projected = [&](size_t v) {
        return identity_proj_ ? vecs + v * dim : proj.data() + v * dp;
      };
      float* block = raw + size_t{rep} * buckets * dp;
      std::fill(counts.begin(), counts.end(), 0u);
      for (size_t v = 0; v < n; ++v) {
        ++counts[codes[v]];
        float* dst = block + size_t{codes[v]} * dp;
        const float* src = projected(v);
        for (uint32_t j = 0; j < dp; ++j) dst[j] += src[j];
      }
      if (is_query) continue;
      for (uint32_t b = 0; b < buckets; ++b) {
        float* dst = block + size_t{b} * dp;
        if (counts[b] > 1) {
          const float inv = 1.0f / static_cast<float>(counts[b]);
          for (uint32_t j = 0; j < dp; ++j) dst[j] *= inv;
        } else if (counts[b] == 0 && params_.fill_empty) {
          size_t best = 0;
          int best_dist = 64;
          for (size_t v = 0; v < n; ++v) {
            const int dist = std::popcount(codes[v] ^ b);
            if (dist < best_dist) best_dist = dist, best = v;
          }
          std::memcpy(dst, projected(best), sizeof(float) * dp);
        }
      }
    }
  }
  if (params_.final_dim > 0) {
    std::fill(out, out + fde_dim_, 0.0f);
    for (uint32_t i = 0; i < raw_dim_; ++i) out[final_index_[i]] += final_sign_[i] * raw[i];
  }
}

}  // namespace vectord::index
