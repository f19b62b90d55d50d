// SPANN closure + RNG replica selection (see spann_assign.h).
#include "index/spann_assign.h"

#include "index/distance.h"

namespace vectord::index {

uint32_t SelectReplicas(const CentroidHit* cands, uint32_t n, const CentroidIndex& centroids,
                        const AssignParams& params, uint32_t* out) {
  if (n == 0 || params.max_replicas == 0) return 0;
  const float slack = (1.0f + params.closure_eps) * (1.0f + params.closure_eps);
  const float limit = cands[0].dist * slack;
  const float f2 = params.rng_factor * params.rng_factor;
  const uint32_t dim = centroids.dim();
  uint32_t chosen = 0;
  out[chosen++] = cands[0].id;
  for (uint32_t j = 1; j < n && chosen < params.max_replicas; ++j) {
    if (cands[j].dist > limit) break;  // sorted: no later candidate passes the closure rule
    bool keep = true;
    if (f2 > 0) {
      const float* cj = centroids.centroid(cands[j].id);
      for (uint32_t i = 0; i < chosen && keep; ++i) {
        if (f2 * L2SqrF32(cj, centroids.centroid(out[i]), dim) < cands[j].dist) keep = false;
      }
    }
    if (keep) out[chosen++] = cands[j].id;
  }
  return chosen;
}

}  // namespace vectord::index
