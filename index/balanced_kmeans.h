// Hierarchical balanced k-means for the SPANN build: clusters a sample into many small clusters
// (posting lists) with our own Lloyd k-means on the blocked distance kernels (index/l2_block.h),
// top level first, then each top cluster split in proportion to its size, then any cluster above
// the size limit split again. The top level is kept as a two-level tree over the centroids
// (index/centroid_graph.h can search it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vectord/status.h"

namespace vectord::index {

struct KMeansParams {
  // Centroids wanted (>= 1). The result may hold a few more (oversize splits) or fewer (a top
  // cluster with fewer points than its share).
  uint32_t num_centroids = 0;
  // Largest cluster allowed, in sample points; bigger clusters are split again. 0 = no limit.
  uint32_t max_cluster_points = 0;
  // Lloyd iterations per level (default 10).
  int niter = 10;
  uint64_t seed = 1234;
  // Threads: the top level's nearest-centroid passes run in row slices, the second level's groups
  // are clustered in parallel (one thread each). The result does not depend on it. 0 or 1 = one.
  unsigned threads = 1;
};

struct KMeansResult {
  uint32_t dim = 0;
  std::vector<float> centroids;  // k x dim
  // Top-level cluster of each centroid (k entries) and the top-level centroids (groups x dim).
  std::vector<uint32_t> group;
  std::vector<float> group_centroids;
  uint32_t k() const { return dim == 0 ? 0 : static_cast<uint32_t>(centroids.size() / dim); }
  uint32_t num_groups() const {
    return dim == 0 ? 0 : static_cast<uint32_t>(group_centroids.size() / dim);
  }
};

// Clusters n row-major float vectors. Deterministic for a given seed and input, for any thread
// count (and the same kernel level, l2_block.h).
Result<KMeansResult> HierarchicalKMeans(const float* x, size_t n, uint32_t dim,
                                        const KMeansParams& params);

// The two levels of HierarchicalKMeans as separate steps, for a caller that streams the second
// level's points group by group (the SPANN build reads them back from a spill file sorted by
// group, so that its RAM does not grow with N). HierarchicalKMeans(x) equals: k1 =
// TopLevelGroups(k); TrainTopLevel; each point to its nearest group (AssignNearest); then per
// group g ClusterGroup(its points in order, kg = GroupShare(k, n_g, n), g), concatenated in
// group order.
uint32_t TopLevelGroups(uint32_t num_centroids);  // round(sqrt(num_centroids)), at least 1
// A group's share of the centroids: max(1, round(num_centroids * group_points / points)).
uint32_t GroupShare(uint32_t num_centroids, size_t group_points, size_t points);
// Level 1: k1 group centroids (k1 x dim replace *group_centroids; fewer when n < k1) from n
// points, trained on at most 256 points per group, on params.threads threads.
Status TrainTopLevel(const float* x, size_t n, uint32_t dim, uint32_t k1,
                     const KMeansParams& params, std::vector<float>* group_centroids);
// Level 2 for group g: min(kg, n) centroids for its n points, then up to three rounds of
// splitting clusters over params.max_cluster_points; the centroids replace *out (none for n = 0).
// One thread; deterministic for (params.seed, g, points).
Status ClusterGroup(const float* x, size_t n, uint32_t dim, uint32_t kg, uint32_t g,
                    const KMeansParams& params, std::vector<float>* out);

// Nearest centroid (squared L2, ties to the lower id) of each of n vectors; labels/dists may be
// null. Blocked kernel (l2_block.h), rows split over `threads` (same result for any count).
Status AssignNearest(const float* x, size_t n, const float* centroids, uint32_t k, uint32_t dim,
                     uint32_t* labels, float* dists, unsigned threads = 1);

}  // namespace vectord::index
