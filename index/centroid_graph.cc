// Centroid navigation (see centroid_graph.h): brute force, two-level tree, Faiss HNSW.
#include "index/centroid_graph.h"

#include <faiss/IndexHNSW.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cstring>
#include <exception>

#include "index/distance.h"

namespace vectord::index {
namespace {

constexpr char kMagic[4] = {'V', 'D', 'C', 'G'};      // float32 centroids
constexpr char kMagicHalf[4] = {'V', 'D', 'C', 'H'};  // the same with IEEE half centroids
constexpr int kHnswM = 16;
constexpr int kHnswEfConstruction = 64;

bool ByDist(const CentroidHit& a, const CentroidHit& b) {
  return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
}

// Keeps the k best of `hits` sorted in place.
void TopK(std::vector<CentroidHit>* hits, uint32_t k) {
  if (hits->size() > k) {
    std::partial_sort(hits->begin(), hits->begin() + k, hits->end(), ByDist);
    hits->resize(k);
  } else {
    std::sort(hits->begin(), hits->end(), ByDist);
  }
}

void Put(std::string* s, const void* p, size_t n) { s->append(static_cast<const char*>(p), n); }
template <typename T>
void PutPod(std::string* s, T v) {
  Put(s, &v, sizeof(v));
}
template <typename T>
bool Get(std::string_view* s, T* v) {
  if (s->size() < sizeof(T)) return false;
  std::memcpy(v, s->data(), sizeof(T));
  s->remove_prefix(sizeof(T));
  return true;
}
template <typename T>
bool GetVec(std::string_view* s, size_t n, std::vector<T>* v) {
  if (n > s->size() / sizeof(T)) return false;
  v->resize(n);
  if (n > 0) std::memcpy(v->data(), s->data(), n * sizeof(T));
  s->remove_prefix(n * sizeof(T));
  return true;
}

}  // namespace

const char* CentroidIndexKindName(CentroidIndexKind k) {
  switch (k) {
    case CentroidIndexKind::kBruteForce:
      return "brute";
    case CentroidIndexKind::kTree:
      return "tree";
    case CentroidIndexKind::kHnsw:
      return "hnsw";
  }
  return "?";
}

const char* CentroidPrecisionName(CentroidPrecision p) {
  return p == CentroidPrecision::kF16 ? "f16" : "f32";
}

CentroidIndex::~CentroidIndex() = default;

Status CentroidIndex::SetPrecision(CentroidPrecision p) {
  if (p == precision_) return Status::OK();
  if (p == CentroidPrecision::kF32) {
    return Status::InvalidArgument("centroid index: half centroids cannot go back to float32");
  }
  if (kind_ == CentroidIndexKind::kHnsw) {
    return Status::InvalidArgument("centroid index: HNSW navigation keeps float32 centroids");
  }
  half_.resize(centroids_.size());
  for (size_t i = 0; i < centroids_.size(); ++i) half_[i] = FloatToHalf(centroids_[i]);
  std::vector<float>().swap(centroids_);
  precision_ = p;
  return Status::OK();
}

float CentroidIndex::L2(const float* q, uint32_t i) const {
  const size_t off = size_t{i} * dim_;
  return precision_ == CentroidPrecision::kF16 ? L2SqrF32F16(q, half_.data() + off, dim_)
                                               : L2SqrF32(q, centroids_.data() + off, dim_);
}

float CentroidIndex::Ip(const float* q, uint32_t i) const {
  const size_t off = size_t{i} * dim_;
  return precision_ == CentroidPrecision::kF16 ? IpF32F16(q, half_.data() + off, dim_)
                                               : IpF32(q, centroids_.data() + off, dim_);
}

void CentroidIndex::Decode(uint32_t i, float* out) const {
  const size_t off = size_t{i} * dim_;
  if (precision_ == CentroidPrecision::kF16) {
    for (uint32_t j = 0; j < dim_; ++j) out[j] = HalfToFloat(half_[off + j]);
  } else {
    std::memcpy(out, centroids_.data() + off, size_t{dim_} * sizeof(float));
  }
}

void CentroidIndex::ScanRange(const float* q, uint32_t begin, uint32_t end,
                              std::vector<CentroidHit>* out) const {
  if (precision_ == CentroidPrecision::kF16) {
    for (uint32_t i = begin; i < end; ++i) {
      out->push_back({L2SqrF32F16(q, half_.data() + size_t{i} * dim_, dim_), i});
    }
  } else {
    for (uint32_t i = begin; i < end; ++i) {
      out->push_back({L2SqrF32(q, centroids_.data() + size_t{i} * dim_, dim_), i});
    }
  }
}

Result<std::unique_ptr<CentroidIndex>> CentroidIndex::Build(
    CentroidIndexKind kind, const float* centroids, uint32_t n, uint32_t dim,
    const std::vector<uint32_t>& group, const std::vector<float>& group_centroids) {
  if (n == 0 || dim == 0) {
    return Status::InvalidArgument("centroid index needs centroids (n=" + std::to_string(n) +
                                   ", dim=" + std::to_string(dim) + ")");
  }
  std::unique_ptr<CentroidIndex> ci(new CentroidIndex());
  ci->kind_ = kind;
  ci->n_ = n;
  ci->dim_ = dim;
  ci->centroids_.assign(centroids, centroids + size_t{n} * dim);
  if (kind == CentroidIndexKind::kTree) {
    VECTORD_RETURN_IF_ERROR(ci->BuildTree(group, group_centroids));
  } else if (kind == CentroidIndexKind::kHnsw) {
    VECTORD_RETURN_IF_ERROR(ci->BuildHnsw());
  }
  return ci;
}

Status CentroidIndex::BuildTree(const std::vector<uint32_t>& group,
                                const std::vector<float>& group_centroids) {
  const uint32_t groups = static_cast<uint32_t>(group_centroids.size() / dim_);
  if (group.size() != n_ || groups == 0) {
    return Status::InvalidArgument("centroid tree: " + std::to_string(group.size()) +
                                   " group labels for " + std::to_string(n_) + " centroids, " +
                                   std::to_string(groups) + " groups");
  }
  member_start_.assign(groups + 1, 0);
  for (uint32_t i = 0; i < n_; ++i) {
    if (group[i] >= groups || (i > 0 && group[i] < group[i - 1])) {
      return Status::InvalidArgument("centroid tree: group labels must be sorted and < " +
                                     std::to_string(groups) + " (centroid " + std::to_string(i) +
                                     " has " + std::to_string(group[i]) + ")");
    }
    member_start_[group[i] + 1]++;
  }
  for (uint32_t g = 0; g < groups; ++g) member_start_[g + 1] += member_start_[g];
  group_centroids_ = group_centroids;
  return Status::OK();
}

Status CentroidIndex::BuildHnsw() {
  try {
    hnsw_ = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(dim_), kHnswM);
    hnsw_->hnsw.efConstruction = kHnswEfConstruction;
    hnsw_->add(n_, centroids_.data());
  } catch (const std::exception& e) {
    return Status::Internal("HNSW over " + std::to_string(n_) + " centroids failed: " + e.what());
  }
  return Status::OK();
}

void CentroidIndex::Search(const float* q, uint32_t k, const CentroidSearchParams& params,
                           std::vector<CentroidHit>* out) const {
  out->clear();
  k = std::min(k, n_);
  if (k == 0) return;
  switch (kind_) {
    case CentroidIndexKind::kBruteForce:
      SearchBrute(q, k, out);
      break;
    case CentroidIndexKind::kTree:
      SearchTree(q, k, params.tree_groups ? params.tree_groups : std::max<uint32_t>(8, k / 2), out);
      break;
    case CentroidIndexKind::kHnsw:
      SearchHnsw(q, k, params.ef ? params.ef : std::max<uint32_t>(2 * k, 64), out);
      break;
  }
}

void CentroidIndex::SearchBrute(const float* q, uint32_t k, std::vector<CentroidHit>* out) const {
  out->reserve(n_);
  ScanRange(q, 0, n_, out);
  TopK(out, k);
}

void CentroidIndex::SearchTree(const float* q, uint32_t k, uint32_t groups,
                               std::vector<CentroidHit>* out) const {
  const uint32_t ng = static_cast<uint32_t>(member_start_.size() - 1);
  std::vector<CentroidHit> gh(ng);
  for (uint32_t g = 0; g < ng; ++g) {
    gh[g] = {L2SqrF32(q, group_centroids_.data() + size_t{g} * dim_, dim_), g};
  }
  TopK(&gh, std::min(groups, ng));
  for (const CentroidHit& h : gh) ScanRange(q, member_start_[h.id], member_start_[h.id + 1], out);
  TopK(out, k);
}

void CentroidIndex::SearchHnsw(const float* q, uint32_t k, uint32_t ef,
                               std::vector<CentroidHit>* out) const {
  std::vector<faiss::Index::idx_t> labels(k);
  std::vector<float> dists(k);
  faiss::SearchParametersHNSW sp;
  sp.efSearch = static_cast<int>(std::max(ef, k));
  try {
    hnsw_->search(1, q, k, dists.data(), labels.data(), &sp);
  } catch (const std::exception&) {
    SearchBrute(q, k, out);  // cannot happen for valid input; stay correct regardless
    return;
  }
  for (uint32_t i = 0; i < k; ++i) {
    if (labels[i] >= 0) out->push_back({dists[i], static_cast<uint32_t>(labels[i])});
  }
}

size_t CentroidIndex::MemoryBytes() const {
  size_t b = centroids_.size() * sizeof(float) + half_.size() * sizeof(uint16_t) +
             group_centroids_.size() * sizeof(float) + member_start_.size() * sizeof(uint32_t);
  if (hnsw_) {
    // Faiss keeps its own copy of the vectors plus the neighbour lists and levels.
    b += size_t{n_} * dim_ * sizeof(float) + hnsw_->hnsw.neighbors.size() * sizeof(int32_t) +
         hnsw_->hnsw.levels.size() * sizeof(int) + hnsw_->hnsw.offsets.size() * sizeof(size_t);
  }
  return b;
}

std::string CentroidIndex::Serialize() const {
  std::string s;
  const bool half = precision_ == CentroidPrecision::kF16;
  Put(&s, half ? kMagicHalf : kMagic, 4);
  PutPod<uint32_t>(&s, static_cast<uint32_t>(kind_));
  PutPod<uint32_t>(&s, n_);
  PutPod<uint32_t>(&s, dim_);
  if (half) {
    Put(&s, half_.data(), half_.size() * sizeof(uint16_t));
  } else {
    Put(&s, centroids_.data(), centroids_.size() * sizeof(float));
  }
  if (kind_ == CentroidIndexKind::kTree) {
    PutPod<uint32_t>(&s, static_cast<uint32_t>(member_start_.size() - 1));
    Put(&s, member_start_.data(), member_start_.size() * sizeof(uint32_t));
    Put(&s, group_centroids_.data(), group_centroids_.size() * sizeof(float));
  } else if (kind_ == CentroidIndexKind::kHnsw) {
    faiss::VectorIOWriter w;
    faiss::write_index(hnsw_.get(), &w);
    PutPod<uint64_t>(&s, w.data.size());
    Put(&s, w.data.data(), w.data.size());
  }
  return s;
}

Result<std::unique_ptr<CentroidIndex>> CentroidIndex::Deserialize(std::string_view s) {
  auto bad = [](const std::string& what) { return Status::Corruption("centroid index: " + what); };
  if (s.size() < 16) return bad("truncated header");
  const bool half = std::memcmp(s.data(), kMagicHalf, 4) == 0;
  if (!half && std::memcmp(s.data(), kMagic, 4) != 0) return bad("bad magic");
  s.remove_prefix(4);
  uint32_t kind = 0, n = 0, dim = 0;
  Get(&s, &kind);
  Get(&s, &n);
  Get(&s, &dim);
  if (kind > 2 || n == 0 || dim == 0) {
    return bad("kind " + std::to_string(kind) + ", n " + std::to_string(n) + ", dim " +
               std::to_string(dim));
  }
  std::unique_ptr<CentroidIndex> ci(new CentroidIndex());
  ci->kind_ = static_cast<CentroidIndexKind>(kind);
  ci->n_ = n;
  ci->dim_ = dim;
  if (half) {
    if (kind == static_cast<uint32_t>(CentroidIndexKind::kHnsw)) return bad("half HNSW centroids");
    ci->precision_ = CentroidPrecision::kF16;
    if (!GetVec(&s, size_t{n} * dim, &ci->half_)) return bad("truncated centroids");
  } else if (!GetVec(&s, size_t{n} * dim, &ci->centroids_)) {
    return bad("truncated centroids");
  }
  if (ci->kind_ == CentroidIndexKind::kTree) {
    uint32_t groups = 0;
    if (!Get(&s, &groups) || groups == 0 || !GetVec(&s, size_t{groups} + 1, &ci->member_start_) ||
        !GetVec(&s, size_t{groups} * dim, &ci->group_centroids_)) {
      return bad("truncated tree");
    }
    for (uint32_t g = 0; g < groups; ++g) {
      if (ci->member_start_[g] > ci->member_start_[g + 1]) return bad("tree ranges not sorted");
    }
    if (ci->member_start_[0] != 0 || ci->member_start_[groups] != n) return bad("tree ranges");
  } else if (ci->kind_ == CentroidIndexKind::kHnsw) {
    uint64_t bytes = 0;
    if (!Get(&s, &bytes) || bytes > s.size()) return bad("truncated HNSW blob");
    try {
      faiss::VectorIOReader r;
      r.data.assign(s.data(), s.data() + bytes);
      std::unique_ptr<faiss::Index> idx(faiss::read_index(&r));
      auto* h = dynamic_cast<faiss::IndexHNSWFlat*>(idx.get());
      if (h == nullptr || h->ntotal != n || h->d != static_cast<int>(dim)) {
        return bad("HNSW blob does not match the centroids");
      }
      idx.release();
      ci->hnsw_.reset(h);
    } catch (const std::exception& e) {
      return bad(std::string("HNSW blob: ") + e.what());
    }
  }
  return ci;
}

}  // namespace vectord::index
