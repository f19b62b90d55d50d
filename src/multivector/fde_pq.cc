// FdePq: 4-bit fast-scan PQ over multi-vector document FDEs (src/fde_pq.h).
#include "src/multivector/fde_pq.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace vectord {

uint64_t FdePq::TrainRows(uint64_t rows) {
  if (rows < kMinRows) return 0;
  uint64_t t = kMinRows;
  while (t * 4 <= rows) t *= 4;
  return t;
}

uint32_t FdePq::AutoM(uint32_t dim, uint32_t dsub) {
  const uint32_t target = std::max<uint32_t>(1, dim / std::max<uint32_t>(1, dsub));
  uint32_t best = 1;
  for (uint32_t m = 1; m <= dim; ++m) {
    if (dim % m != 0) continue;
    const uint32_t d = m > target ? m - target : target - m;
    const uint32_t db = best > target ? best - target : target - best;
    if (d < db) best = m;
  }
  return best;
}

Result<std::unique_ptr<FdePq>> FdePq::Train(uint32_t dim, uint32_t m, const float* sample, size_t n,
                                            uint64_t trained_rows, uint64_t seed) {
  index::PqParams p;
  p.dim = dim;
  p.m = m;
  p.nbits = 4;
  // One OpenMP thread: Faiss's k-means steps are small, and the machine is shared (index/pq.h).
  VECTORD_ASSIGN_OR_RETURN(index::ProductQuantizer pq,
                           index::ProductQuantizer::Train(p, sample, n, seed, /*threads=*/1));
  return Create(std::move(pq), trained_rows);
}

std::unique_ptr<FdePq> FdePq::Create(index::ProductQuantizer pq, uint64_t trained_rows) {
  return std::unique_ptr<FdePq>(
      new FdePq(std::make_shared<const index::ProductQuantizer>(std::move(pq)), trained_rows));
}

FdePq::FdePq(std::shared_ptr<const index::ProductQuantizer> pq, uint64_t trained_rows)
    : pq_(std::move(pq)), trained_rows_(trained_rows) {
  // Groups of an even number of subquantizers (whole code bytes), at most kGroupM each.
  const uint32_t m = pq_->params().m;
  uint32_t groups = 1;
  for (uint32_t g = 1; g <= m; ++g) {
    if (m % g == 0 && m / g <= kGroupM && (g == 1 || (m / g) % 2 == 0)) {
      groups = g;
      break;
    }
  }
  group_m_ = m / groups;
  packed_.resize(groups);
}

size_t FdePq::bytes() const {
  size_t b = 0;
  for (const auto& p : packed_) b += p.capacity();
  return b;
}

void FdePq::Encode(const index::ProductQuantizer& pq, const float* x, size_t n, uint8_t* codes) {
  const uint32_t m = pq.params().m, dsub = pq.dsub(), dim = pq.params().dim;
  constexpr uint32_t kK = 16;  // 4-bit codes
  const size_t cs = pq.code_size();
  // Centroids transposed to [subspace][float][centroid]: the 16 distances of a subspace are
  // accumulated side by side (vectorized), in the same float order as one distance at a time.
  std::vector<float> ct(size_t{m} * dsub * kK);
  const float* cent = pq.centroids().data();
  for (uint32_t j = 0; j < m; ++j) {
    for (uint32_t k = 0; k < kK; ++k) {
      for (uint32_t t = 0; t < dsub; ++t) {
        ct[(size_t{j} * dsub + t) * kK + k] = cent[(size_t{j} * kK + k) * dsub + t];
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const float* v = x + i * dim;
    uint8_t* code = codes + i * cs;
    std::memset(code, 0, cs);
    for (uint32_t j = 0; j < m; ++j) {
      float d[kK] = {};
      for (uint32_t t = 0; t < dsub; ++t) {
        const float xv = v[size_t{j} * dsub + t];
        const float* c = ct.data() + (size_t{j} * dsub + t) * kK;
        for (uint32_t k = 0; k < kK; ++k) {
          const float e = xv - c[k];
          d[k] += e * e;
        }
      }
      uint32_t arg = 0;
      for (uint32_t k = 1; k < kK; ++k) {
        if (d[k] < d[arg]) arg = k;
      }
      code[j / 2] |= static_cast<uint8_t>(arg << ((j & 1) * 4));
    }
  }
}

void FdePq::Append(const uint8_t* codes, size_t n) {
  if (n == 0) return;
  const size_t cs = pq_->code_size();
  const size_t gcs = (group_m_ + 1) / 2;  // code bytes of one group (whole bytes: see ctor)
  const size_t bb = index::FastScanBlockBytes(group_m_);
  // Repack from the last partial block: its codes come back out of the packed form.
  const size_t first_block = rows_ / index::kFastScanBlock;
  const size_t tail = rows_ - first_block * index::kFastScanBlock;
  const size_t blocks = (tail + n + index::kFastScanBlock - 1) / index::kFastScanBlock;
  std::vector<uint8_t> buf((tail + n) * gcs);
  for (size_t g = 0; g < packed_.size(); ++g) {
    std::vector<uint8_t>& packed = packed_[g];
    for (size_t i = 0; i < tail; ++i) {
      index::UnpackFastScanCode(packed.data() + first_block * bb, i, group_m_,
                                buf.data() + i * gcs);
    }
    for (size_t i = 0; i < n; ++i) {
      std::memcpy(buf.data() + (tail + i) * gcs, codes + i * cs + g * gcs, gcs);
    }
    packed.resize((first_block + blocks) * bb);
    index::PackFastScan(buf.data(), tail + n, group_m_, packed.data() + first_block * bb);
  }
  rows_ += n;
}

void FdePq::Scan(const float* q, std::vector<float>* out) const {
  const uint32_t m = pq_->params().m;
  std::vector<float> table(size_t{m} * pq_->ksub());
  pq_->ComputeLut(q, index::PqMetric::kIP, table.data());
  const size_t blocks = (rows_ + index::kFastScanBlock - 1) / index::kFastScanBlock;
  const size_t n = blocks * index::kFastScanBlock;
  out->assign(n, 0.0f);
  std::vector<uint16_t> acc(n);
  for (size_t g = 0; g < packed_.size(); ++g) {
    const index::QuantizedLut lut =
        index::QuantizeLut(table.data() + g * group_m_ * pq_->ksub(), group_m_);
    index::FastScanAccumulate(packed_[g].data(), blocks, group_m_, lut, acc.data());
    const float inv = 1.0f / lut.scale;
    float* o = out->data();
    for (size_t i = 0; i < n; ++i) o[i] += lut.bias + static_cast<float>(acc[i]) * inv;
  }
}

}  // namespace vectord
