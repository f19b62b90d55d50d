// Batched centroid-tree search (see centroid_batch.h).
#include "index/centroid_batch.h"

#include <algorithm>
#include <cmath>

#include "index/distance.h"

namespace vectord::index {
namespace {

constexpr size_t kRowBlock = 96;     // rows per task when ranking groups / merging
constexpr size_t kEntryBlock = 48;   // probe entries per kernel call within a group
constexpr size_t kMergeBlock = 256;  // rows per merge task

// A function object (not a function pointer) so that the sorts inline it.
struct ByDistLess {
  bool operator()(const CentroidHit& a, const CentroidHit& b) const {
    return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
  }
};
constexpr ByDistLess ByDist;

// Best k (by ByDist) of those d[j] <= limit among d[0, n) with ids id0 + j, nearest first, to
// top; returns how many. Candidates collect in buf (2k entries), cut back to k by nth_element
// when it fills: O(n) compares instead of a sorted insertion per candidate.
uint32_t SelectTopK(const float* d, uint32_t n, uint32_t id0, uint32_t k, float limit,
                    std::vector<CentroidHit>* buf, CentroidHit* top) {
  constexpr uint32_t kStep = 64;  // positions filtered per IndicesAtMost call
  buf->resize(2 * size_t{k});
  CentroidHit* b = buf->data();
  uint32_t idx[kStep];
  float lim = limit;
  if (lim == INFINITY && n > 2 * k) {
    // No bound yet. Split d into m = 2k strided blocks; the k-th smallest block minimum bounds the
    // k-th smallest distance (k blocks hold a value <= it) and lets only ~1.3k candidates through.
    // Branch-free minima instead of a selection over all n (mispredicted branches).
    const uint32_t m = 2 * k;
    thread_local std::vector<float> mins;
    mins.assign(d, d + m);
    uint32_t j0 = m;
    for (; j0 + m <= n; j0 += m) {
      for (uint32_t b = 0; b < m; ++b) mins[b] = std::min(mins[b], d[j0 + b]);
    }
    for (uint32_t b = 0; j0 + b < n; ++b) mins[b] = std::min(mins[b], d[j0 + b]);
    std::nth_element(mins.begin(), mins.begin() + (k - 1), mins.end());
    lim = mins[k - 1];
  }
  uint32_t nb = 0;
  for (uint32_t j0 = 0; j0 < n; j0 += kStep) {
    const size_t m = IndicesAtMost(d + j0, std::min(kStep, n - j0), lim, idx);
    for (size_t t = 0; t < m; ++t) {
      const uint32_t j = j0 + idx[t];
      if (!(d[j] <= lim)) continue;  // lim fell within this step
      b[nb++] = {d[j], id0 + j};
      if (nb == 2 * k) {
        std::nth_element(b, b + k - 1, b + nb, ByDist);
        nb = k;
        // A later equal distance has a higher id: it loses to the k-th.
        lim = std::nextafter(b[k - 1].dist, -INFINITY);
      }
    }
  }
  const uint32_t m = std::min(nb, k);
  std::partial_sort(b, b + m, b + nb, ByDist);
  std::copy(b, b + m, top);
  return m;
}

}  // namespace

BatchTreeSearch::BatchTreeSearch(const CentroidIndex& ci) : ci_(ci) {
  const uint32_t dim = ci.dim();
  const auto& start = ci.member_start();
  const uint32_t ng = static_cast<uint32_t>(start.size() - 1);
  group_panels_.Pack(ci.group_centroids().data(), ng, dim);
  member_panels_.resize(ng);
  for (uint32_t g = 0; g < ng; ++g) {
    member_panels_[g].Pack(ci.centroid(start[g]), start[g + 1] - start[g], dim);
  }
}

size_t BatchTreeSearch::MemoryBytes() const {
  size_t b = group_panels_.MemoryBytes();
  for (const auto& p : member_panels_) b += p.MemoryBytes() + sizeof(p);
  return b;
}

size_t BatchTreeSearch::ScratchBytes(size_t n, uint32_t k, uint32_t groups) {
  return n * (8 + size_t{groups} * (4 + 4 + 4 + k * sizeof(CentroidHit)));
}

void BatchTreeSearch::Search(const float* rows, size_t n, uint32_t k, uint32_t groups,
                             const ParallelForFn& parallel_for, std::vector<CentroidHit>* hits,
                             std::vector<uint32_t>* counts) {
  const uint32_t dim = ci_.dim();
  const auto& start = ci_.member_start();
  const uint32_t ng = static_cast<uint32_t>(start.size() - 1);
  const uint32_t gp = std::max<uint32_t>(1, std::min(groups, ng));
  const uint32_t stride = std::max<uint32_t>(1, k);    // of hits, as the caller asked
  k = std::max<uint32_t>(1, std::min(k, ci_.size()));  // lists kept (fewer centroids than k)
  hits->resize(n * stride);
  counts->assign(n, 0);
  if (n == 0) return;
  norms_.resize(n);
  probe_.resize(n * gp);
  cand_.resize(n * gp * k);
  cand_n_.assign(n * gp, 0);

  // (1) Row norms and the gp nearest groups of every row.
  parallel_for((n + kRowBlock - 1) / kRowBlock, [&](size_t b) {
    const size_t lo = b * kRowBlock, nb = std::min(kRowBlock, n - lo);
    thread_local std::vector<float> d;
    thread_local std::vector<CentroidHit> gh;
    SquaredNorms(rows + lo * dim, nb, dim, norms_.data() + lo);
    const size_t ld = group_panels_.padded();
    d.resize(nb * ld);
    L2SqrBlock(rows + lo * dim, norms_.data() + lo, nb, group_panels_, 0, group_panels_.panels(),
               d.data(), ld);
    thread_local std::vector<CentroidHit> buf;
    gh.resize(gp);
    for (size_t i = 0; i < nb; ++i) {
      SelectTopK(d.data() + i * ld, ng, 0, gp, INFINITY, &buf, gh.data());
      for (uint32_t s = 0; s < gp; ++s) probe_[(lo + i) * gp + s] = gh[s].id;
    }
  });

  // (2) Probe entries by group (counting sort; ascending rows within a group).
  group_start_.assign(ng + 1, 0);
  for (size_t e = 0; e < n * gp; ++e) group_start_[probe_[e] + 1]++;
  for (uint32_t g = 0; g < ng; ++g) group_start_[g + 1] += group_start_[g];
  by_group_.resize(n * gp);
  {
    std::vector<uint32_t> fill(group_start_.begin(), group_start_.end() - 1);
    for (size_t e = 0; e < n * gp; ++e) by_group_[fill[probe_[e]]++] = static_cast<uint32_t>(e);
  }

  // (3) Per group: its rows against its members, the best k of the group per probe entry. First
  // the rows' nearest groups (slot 0): their k-th distance bounds the row's final k-th, so in the
  // other groups (second pass) only the few candidates under it need selecting.
  limit_.assign(n, INFINITY);
  for (int pass = 0; pass < 2; ++pass) {
    parallel_for(ng, [&](size_t g) {
      const uint32_t e0 = group_start_[g], e1 = group_start_[g + 1];
      const CentroidPanels& mp = member_panels_[g];
      if (e0 == e1 || mp.k() == 0) return;
      thread_local std::vector<float> x, xn, d;
      thread_local std::vector<uint32_t> ent;
      thread_local std::vector<CentroidHit> buf;
      const size_t ld = mp.padded();
      x.resize(kEntryBlock * dim);
      xn.resize(kEntryBlock);
      d.resize(kEntryBlock * ld);
      ent.clear();
      for (uint32_t i = e0; i < e1; ++i) {
        if ((by_group_[i] % gp == 0) == (pass == 0)) ent.push_back(by_group_[i]);
      }
      for (size_t b = 0; b < ent.size(); b += kEntryBlock) {
        const size_t nb = std::min(kEntryBlock, ent.size() - b);
        for (size_t i = 0; i < nb; ++i) {
          const size_t row = ent[b + i] / gp;
          std::copy(rows + row * dim, rows + (row + 1) * dim, x.data() + i * dim);
          xn[i] = norms_[row];
        }
        L2SqrBlock(x.data(), xn.data(), nb, mp, 0, mp.panels(), d.data(), ld);
        for (size_t i = 0; i < nb; ++i) {
          const uint32_t e = ent[b + i];
          CentroidHit* top = cand_.data() + size_t{e} * k;
          const uint32_t m =
              SelectTopK(d.data() + i * ld, mp.k(), start[g], k, limit_[e / gp], &buf, top);
          cand_n_[e] = m;
          if (pass == 0 && m == k) limit_[e / gp] = top[k - 1].dist;
        }
      }
    });
  }

  // (4) Per row: the best k of its groups' lists, re-measured exactly and re-sorted.
  parallel_for((n + kMergeBlock - 1) / kMergeBlock, [&](size_t b) {
    thread_local std::vector<CentroidHit> all;
    const size_t lo = b * kMergeBlock, hi = std::min(n, lo + kMergeBlock);
    for (size_t i = lo; i < hi; ++i) {
      all.clear();
      for (uint32_t s = 0; s < gp; ++s) {
        const size_t e = i * gp + s;
        all.insert(all.end(), cand_.begin() + e * k, cand_.begin() + e * k + cand_n_[e]);
      }
      const size_t m = std::min<size_t>(k, all.size());
      if (m > 0) std::nth_element(all.begin(), all.begin() + (m - 1), all.end(), ByDist);
      CentroidHit* out = hits->data() + i * stride;
      for (size_t j = 0; j < m; ++j) {
        out[j] = {L2SqrF32(rows + i * dim, ci_.centroid(all[j].id), dim), all[j].id};
      }
      std::sort(out, out + m, ByDist);
      (*counts)[i] = static_cast<uint32_t>(m);
    }
  });
}

}  // namespace vectord::index
