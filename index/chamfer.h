// Exact Chamfer (MaxSim) similarity between sets of float vectors, the late-interaction score of
// ColBERT-style multi-vector retrieval: Chamfer(Q, D) = sum over q in Q of max over d in D of <q,
// d>. Used for the exact multi-vector search path and to re-rank MUVERA candidates
// (index/muvera.h). The q x d inner products run through a blocked kernel (4 query rows x 2
// document rows per tile) picked at run time for the CPU, like index/distance.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/flat_search.h"

namespace vectord::index {

// Which kernel the Chamfer functions use ("avx512", "avx2" or "scalar"), and a switch for tests and
// benchmarks (false if the CPU lacks the level; "auto" restores the best one).
const char* ChamferKernelLevel();
bool SetChamferKernelLevel(const char* level);

// best[i] = max(best[i], max over j of <q_i, d_j>) for nq query rows and nd document rows of `dim`
// floats each, row-major. Callers initialise `best` (e.g. to -infinity).
void MaxIpUpdate(const float* q, size_t nq, const float* d, size_t nd, size_t dim, float* best);

// Chamfer(Q, D). An empty query set scores 0; an empty document set scores -infinity (no vector
// to match; the collection layer rejects empty sets before they get here).
float Chamfer(const float* q, size_t nq, const float* d, size_t nd, size_t dim);

// A read-only view of many documents' vectors: document i is rows offsets[i] .. offsets[i+1]-1 of
// `tokens` (row-major, `dim` floats per row). `offsets` has n_docs + 1 non-decreasing entries.
struct MultiVectorView {
  const float* tokens = nullptr;
  const uint64_t* offsets = nullptr;
  size_t n_docs = 0;
  uint32_t dim = 0;
};

// out[i] = Chamfer(query, document ids[i]) for i < n_ids; with ids == nullptr, scores every
// document (n_ids is ignored, out has view.n_docs entries). ids must be < view.n_docs.
void ChamferBatch(const float* query, size_t nq, const MultiVectorView& docs, const uint32_t* ids,
                  size_t n_ids, float* out);

// The k best documents by Chamfer similarity, best first, ties broken by lower document id;
// Neighbor::row is the document id. Candidates as in ChamferBatch (ids == nullptr: all).
std::vector<Neighbor> ChamferTopK(const float* query, size_t nq, const MultiVectorView& docs,
                                  const uint32_t* ids, size_t n_ids, size_t k);

}  // namespace vectord::index
