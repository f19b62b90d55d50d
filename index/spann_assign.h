// SPANN's posting-list assignment of one vector (Chen et al., NeurIPS 2021, section 3.2): a vector
// joins its nearest centroid's list and, as replicas, the lists of other near centroids that pass
// the closure rule (dist(x, c_j) <= (1 + closure_eps) * dist(x, c_1), non-squared L2) and the RNG
// rule (skip c_j when rng_factor * dist(c_j, c_i) < dist(x, c_j) for an already chosen c_i: that
// list is "behind" c_i as seen from x, and the replica would only duplicate c_i's coverage).
#pragma once

#include <cstdint>

#include "index/centroid_graph.h"

namespace vectord::index {

struct AssignParams {
  // Most lists a vector is written to (SPANN: 8). Default 8.
  uint32_t max_replicas = 8;
  // Closure slack on the non-squared L2 distance. Default 0.5 (measured, docs/spann.md "Tuning":
  // with the RNG rule doing the pruning, 0.15 left only ~1.2 lists per vector).
  float closure_eps = 0.5f;
  // RNG-rule factor (SPTAG's RNGFactor); > 1 keeps more replicas. 0 disables the rule. Default 1.2.
  float rng_factor = 1.2f;
};

// `cands`: candidate centroids nearest first (squared L2 from x), as CentroidIndex::Search returns.
// Writes the chosen list ids (the first is always cands[0]) to `out` (max_replicas entries) and
// returns how many. `centroids` gives the centroid vectors for the RNG rule. Pure and thread-safe.
uint32_t SelectReplicas(const CentroidHit* cands, uint32_t n, const CentroidIndex& centroids,
                        const AssignParams& params, uint32_t* out);

}  // namespace vectord::index
