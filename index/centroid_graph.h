// The in-RAM navigation structure over the SPANN centroids: given a query, the nearest posting
// lists. Three kinds, chosen by measurement (docs/spann.md "Centroid navigation"): brute force with
// our AVX-512/AVX2 kernels, a two-level tree from the hierarchical k-means (SPTAG's BKT idea with
// one inner level), and Faiss HNSW.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vectord/status.h"

namespace faiss {
struct IndexHNSWFlat;
}

namespace vectord::index {

enum class CentroidIndexKind : uint8_t { kBruteForce = 0, kTree = 1, kHnsw = 2 };
const char* CentroidIndexKindName(CentroidIndexKind k);  // "brute", "tree", "hnsw"

// How the centroids are held in RAM and in the centroid file: float32, or IEEE half (2 bytes a
// dimension: half the RAM, so twice the lists for the same budget; docs/spann.md "Centroid
// precision" measures the recall and speed). The tree's group centroids stay float32.
enum class CentroidPrecision : uint8_t { kF32 = 0, kF16 = 1 };
const char* CentroidPrecisionName(CentroidPrecision p);  // "f32", "f16"

struct CentroidHit {
  float dist;  // squared L2 between query and centroid
  uint32_t id;
};

struct CentroidSearchParams {
  // kTree: top-level groups whose members are scanned (default 0 = auto: max(8, k / 2)).
  uint32_t tree_groups = 0;
  // kHnsw: efSearch (0 = auto: max(2k, 64)).
  uint32_t ef = 0;
};

class CentroidIndex {
 public:
  // `centroids` (n x dim) are copied. `group`/`group_centroids` come from HierarchicalKMeans and
  // are needed for kTree only (ignored otherwise); `group` must be non-decreasing.
  static Result<std::unique_ptr<CentroidIndex>> Build(CentroidIndexKind kind,
                                                      const float* centroids, uint32_t n,
                                                      uint32_t dim,
                                                      const std::vector<uint32_t>& group,
                                                      const std::vector<float>& group_centroids);
  ~CentroidIndex();
  CentroidIndex(const CentroidIndex&) = delete;
  CentroidIndex& operator=(const CentroidIndex&) = delete;

  // Up to k nearest centroids, nearest first. Thread-safe (const, no shared mutable state).
  void Search(const float* q, uint32_t k, const CentroidSearchParams& params,
              std::vector<CentroidHit>* out) const;

  CentroidIndexKind kind() const { return kind_; }
  uint32_t size() const { return n_; }
  uint32_t dim() const { return dim_; }
  CentroidPrecision precision() const { return precision_; }
  // Converts float32 centroids to `p` (the builder does so after assignment, before writing the
  // centroid file). kF16 is refused for kHnsw (Faiss keeps its own float32 copy anyway).
  Status SetPrecision(CentroidPrecision p);
  // Squared L2 / inner product between a float32 query and centroid i, in either precision.
  float L2(const float* q, uint32_t i) const;
  float Ip(const float* q, uint32_t i) const;
  // Centroid i as float32 (decoded from half where need be).
  void Decode(uint32_t i, float* out) const;
  // float32 storage only (precision() == kF32; the build works on float32): centroid i, all.
  const float* centroid(uint32_t i) const { return centroids_.data() + size_t{i} * dim_; }
  const std::vector<float>& centroids() const { return centroids_; }
  // kTree only (empty otherwise): group g holds centroids [member_start()[g], member_start()[g+1]).
  const std::vector<uint32_t>& member_start() const { return member_start_; }
  const std::vector<float>& group_centroids() const { return group_centroids_; }
  // Bytes held in RAM (centroids, tree, graph).
  size_t MemoryBytes() const;

  // Self-contained byte form (kind, sizes, centroids, tree or Faiss HNSW blob); no checksum
  // (the SPANN centroid file has one over everything).
  std::string Serialize() const;
  static Result<std::unique_ptr<CentroidIndex>> Deserialize(std::string_view bytes);

 private:
  CentroidIndex() = default;
  // out->push_back({L2(q, i), i}) for i in [begin, end).
  void ScanRange(const float* q, uint32_t begin, uint32_t end, std::vector<CentroidHit>* out) const;
  void SearchBrute(const float* q, uint32_t k, std::vector<CentroidHit>* out) const;
  void SearchTree(const float* q, uint32_t k, uint32_t groups, std::vector<CentroidHit>* out) const;
  void SearchHnsw(const float* q, uint32_t k, uint32_t ef, std::vector<CentroidHit>* out) const;
  Status BuildTree(const std::vector<uint32_t>& group, const std::vector<float>& group_centroids);
  Status BuildHnsw();

  CentroidIndexKind kind_ = CentroidIndexKind::kBruteForce;
  uint32_t n_ = 0;
  uint32_t dim_ = 0;
  CentroidPrecision precision_ = CentroidPrecision::kF32;
  std::vector<float> centroids_;  // kF32: n x dim (empty for kF16)
  std::vector<uint16_t> half_;    // kF16: n x dim IEEE half (empty for kF32)
  // kTree: the groups' centroids; group g holds centroids [member_start_[g], member_start_[g+1])
  // (HierarchicalKMeans emits centroids group by group, so groups are contiguous id ranges).
  std::vector<float> group_centroids_;
  std::vector<uint32_t> member_start_;
  std::unique_ptr<faiss::IndexHNSWFlat> hnsw_;
};

}  // namespace vectord::index
