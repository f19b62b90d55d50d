// Product quantizer: Faiss trains the codebooks; encoding, decoding and look-up tables use
// index/distance.h's dispatched kernels; serialization follows docs/pq.md.
#include "index/pq.h"

#include <faiss/impl/FaissException.h>
#include <faiss/impl/ProductQuantizer.h>
#include <omp.h>

#include <array>
#include <cstring>
#include <exception>
#include <limits>

#include "index/distance.h"

namespace vectord::index {
namespace {

constexpr char kMagic[4] = {'V', 'D', 'P', 'Q'};
constexpr uint32_t kVersion = 1;
// magic, version, dim, m, nbits
constexpr size_t kHeaderBytes = 4 + 4 * 4;

Status CheckParams(const PqParams& p) {
  if (p.dim == 0 || p.m == 0 || p.dim % p.m != 0) {
    return Status::InvalidArgument("PQ: dim " + std::to_string(p.dim) +
                                   " must be a positive multiple of m " + std::to_string(p.m));
  }
  if (p.nbits != 4 && p.nbits != 8) {
    return Status::InvalidArgument("PQ: nbits is " + std::to_string(p.nbits) + ", must be 4 or 8");
  }
  return Status::OK();
}

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  out->append(b, 4);
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

// Sets this thread's OpenMP team size for the guard's lifetime (a per-thread setting: other
// threads' Faiss calls are not affected).
class OmpThreadsGuard {
 public:
  explicit OmpThreadsGuard(int threads) : prev_(omp_get_max_threads()), set_(threads > 0) {
    if (set_) omp_set_num_threads(threads);
  }
  ~OmpThreadsGuard() {
    if (set_) omp_set_num_threads(prev_);
  }
  OmpThreadsGuard(const OmpThreadsGuard&) = delete;
  OmpThreadsGuard& operator=(const OmpThreadsGuard&) = delete;

 private:
  int prev_;
  bool set_;
};

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

}  // namespace

uint32_t PqCrc32c(const void* data, size_t n) {
  static const std::array<uint32_t, 256> kTable = MakeCrcTable();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = kTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

Result<ProductQuantizer> ProductQuantizer::Train(const PqParams& p, const float* x, size_t n,
                                                 uint64_t seed, int threads) {
  VECTORD_RETURN_IF_ERROR(CheckParams(p));
  const size_t ksub = size_t{1} << p.nbits;
  if (n < ksub) {
    return Status::InvalidArgument("PQ: " + std::to_string(n) +
                                   " training vectors, need at least " + std::to_string(ksub) +
                                   " (2^nbits)");
  }
  try {
    OmpThreadsGuard guard(threads);
    faiss::ProductQuantizer pq(p.dim, p.m, p.nbits);
    pq.cp.seed = static_cast<int>(seed & 0x7FFFFFFF);
    pq.cp.niter = 25;
    pq.verbose = false;
    pq.cp.min_points_per_centroid = 1;  // small samples are fine: no warning per subspace
    pq.train(n, x);
    return FromCentroids(p, std::move(pq.centroids));
  } catch (const std::exception& e) {
    return Status::Internal("PQ: Faiss training (dim " + std::to_string(p.dim) + ", m " +
                            std::to_string(p.m) + ", nbits " + std::to_string(p.nbits) + ", n " +
                            std::to_string(n) + ") failed: " + e.what());
  }
}

Result<ProductQuantizer> ProductQuantizer::FromCentroids(const PqParams& p,
                                                         std::vector<float> centroids) {
  VECTORD_RETURN_IF_ERROR(CheckParams(p));
  const size_t want = (size_t{1} << p.nbits) * p.dim;
  if (centroids.size() != want) {
    return Status::InvalidArgument("PQ: " + std::to_string(centroids.size()) +
                                   " centroid floats, expected " + std::to_string(want));
  }
  return ProductQuantizer(p, std::move(centroids));
}

void ProductQuantizer::Encode(const float* x, size_t n, uint8_t* codes) const {
  const uint32_t m = params_.m, ds = dsub(), ks = ksub();
  const size_t cs = code_size();
  for (size_t i = 0; i < n; ++i) {
    const float* v = x + i * params_.dim;
    uint8_t* code = codes + i * cs;
    std::memset(code, 0, cs);
    for (uint32_t j = 0; j < m; ++j) {
      const float* sub = v + size_t{j} * ds;
      const float* c = centroids_.data() + size_t{j} * ks * ds;
      uint32_t best = 0;
      float best_d = std::numeric_limits<float>::infinity();
      for (uint32_t k = 0; k < ks; ++k) {
        const float d = L2SqrF32(sub, c + size_t{k} * ds, ds);
        if (d < best_d) {
          best_d = d;
          best = k;
        }
      }
      if (params_.nbits == 8) {
        code[j] = static_cast<uint8_t>(best);
      } else {
        code[j / 2] |= static_cast<uint8_t>(best << ((j & 1) * 4));
      }
    }
  }
}

void ProductQuantizer::Decode(const uint8_t* codes, size_t n, float* x) const {
  const uint32_t m = params_.m, ds = dsub(), ks = ksub();
  const size_t cs = code_size();
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* code = codes + i * cs;
    float* v = x + i * params_.dim;
    for (uint32_t j = 0; j < m; ++j) {
      const uint32_t k = params_.nbits == 8 ? code[j] : (code[j / 2] >> ((j & 1) * 4)) & 0xF;
      std::memcpy(v + size_t{j} * ds, centroids_.data() + (size_t{j} * ks + k) * ds,
                  ds * sizeof(float));
    }
  }
}

void ProductQuantizer::ComputeLut(const float* q, PqMetric metric, float* lut) const {
  const uint32_t m = params_.m, ds = dsub(), ks = ksub();
  for (uint32_t j = 0; j < m; ++j) {
    const float* sub = q + size_t{j} * ds;
    const float* c = centroids_.data() + size_t{j} * ks * ds;
    float* row = lut + size_t{j} * ks;
    if (metric == PqMetric::kL2) {
      for (uint32_t k = 0; k < ks; ++k) row[k] = L2SqrF32(sub, c + size_t{k} * ds, ds);
    } else {
      for (uint32_t k = 0; k < ks; ++k) row[k] = IpF32(sub, c + size_t{k} * ds, ds);
    }
  }
}

std::string ProductQuantizer::Serialize() const {
  std::string out;
  out.reserve(kHeaderBytes + centroids_.size() * 4 + 4);
  out.append(kMagic, 4);
  PutU32(&out, kVersion);
  PutU32(&out, params_.dim);
  PutU32(&out, params_.m);
  PutU32(&out, params_.nbits);
  for (float f : centroids_) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    PutU32(&out, bits);
  }
  PutU32(&out, PqCrc32c(out.data(), out.size()));
  return out;
}

Result<ProductQuantizer> ProductQuantizer::Deserialize(std::string_view bytes) {
  if (bytes.size() < kHeaderBytes + 4 || std::memcmp(bytes.data(), kMagic, 4) != 0) {
    return Status::Corruption("PQ: " + std::to_string(bytes.size()) +
                              " bytes do not start with a VDPQ header");
  }
  const uint32_t stored = GetU32(bytes.data() + bytes.size() - 4);
  const uint32_t actual = PqCrc32c(bytes.data(), bytes.size() - 4);
  if (stored != actual) {
    return Status::Corruption("PQ: checksum mismatch over " + std::to_string(bytes.size() - 4) +
                              " bytes (stored " + std::to_string(stored) + ", computed " +
                              std::to_string(actual) + ")");
  }
  const uint32_t version = GetU32(bytes.data() + 4);
  if (version != kVersion) {
    return Status::Corruption("PQ: format version " + std::to_string(version) +
                              " is not supported (expected " + std::to_string(kVersion) + ")");
  }
  PqParams p;
  p.dim = GetU32(bytes.data() + 8);
  p.m = GetU32(bytes.data() + 12);
  p.nbits = GetU32(bytes.data() + 16);
  Status st = CheckParams(p);
  if (!st.ok()) return Status::Corruption(st.message());
  const size_t nfloats = (size_t{1} << p.nbits) * p.dim;
  if (bytes.size() != kHeaderBytes + nfloats * 4 + 4) {
    return Status::Corruption("PQ: " + std::to_string(bytes.size()) + " bytes, expected " +
                              std::to_string(kHeaderBytes + nfloats * 4 + 4) + " for dim " +
                              std::to_string(p.dim) + ", nbits " + std::to_string(p.nbits));
  }
  std::vector<float> c(nfloats);
  for (size_t i = 0; i < nfloats; ++i) {
    const uint32_t bits = GetU32(bytes.data() + kHeaderBytes + 4 * i);
    std::memcpy(&c[i], &bits, 4);
  }
  return FromCentroids(p, std::move(c));
}

}  // namespace vectord::index
