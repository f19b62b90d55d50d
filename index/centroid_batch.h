// Batched search of the SPANN centroid tree for the build's assignment pass: the lists that
// CentroidIndex::Search (kTree) returns, for a block of rows at once. Per-row search touches
// thousands of random centroids (memory-bound at 10M rows); here the rows of a block are grouped by
// the top-level groups they probe, and each group's centroids are compared with all of its rows by
// the blocked GEMM-form kernel (index/l2_block.h) while they sit in cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "index/centroid_graph.h"
#include "index/l2_block.h"

namespace vectord::index {

// Runs fn(i) for every i in [0, n), possibly concurrently; returns when all are done.
using ParallelForFn = std::function<void(size_t n, const std::function<void(size_t)>& fn)>;

class BatchTreeSearch {
 public:
  // `ci` must be a kTree index (see is_tree) and outlive this object. Packs a copy of the
  // centroids (MemoryBytes).
  explicit BatchTreeSearch(const CentroidIndex& ci);
  static bool Supports(const CentroidIndex& ci) {
    return ci.kind() == CentroidIndexKind::kTree && ci.member_start().size() >= 2;
  }
  size_t MemoryBytes() const;
  // Scratch bytes Search holds for a block of n rows.
  static size_t ScratchBytes(size_t n, uint32_t k, uint32_t groups);

  // For each of n rows (row-major floats, ci.dim() each) the k nearest centroids among the
  // members of its `groups` nearest groups, as ci.Search(row, k, {tree_groups = groups}) gives
  // them: hits[i * k, i * k + counts[i]) nearest first (counts[i] <= k, fewer where the probed
  // groups hold fewer centroids), distances exact (L2SqrF32). Groups and
  // candidates are ranked by the kernel's GEMM-form distances, so near ties may rank differently
  // from Search; the result is the same for any parallel_for. Not thread-safe (scratch buffers).
  void Search(const float* rows, size_t n, uint32_t k, uint32_t groups,
              const ParallelForFn& parallel_for, std::vector<CentroidHit>* hits,
              std::vector<uint32_t>* counts);

 private:
  const CentroidIndex& ci_;
  CentroidPanels group_panels_;
  std::vector<CentroidPanels> member_panels_;  // per group
  // Scratch of one Search call.
  std::vector<float> norms_;
  std::vector<float> limit_;           // per row: the k-th distance in its nearest group
  std::vector<uint32_t> probe_;        // n x G probed groups
  std::vector<uint32_t> group_start_;  // probe entries by group: counting-sort offsets
  std::vector<uint32_t> by_group_;     // probe entry (row * G + slot), grouped by group
  std::vector<CentroidHit> cand_;      // per probe entry: the group's best k, nearest first
  std::vector<uint32_t> cand_n_;       // per probe entry: how many
};

}  // namespace vectord::index
