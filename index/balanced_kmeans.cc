// Hierarchical balanced k-means with our own Lloyd iterations (see balanced_kmeans.h).
#include "index/balanced_kmeans.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <string>
#include <thread>

#include "index/l2_block.h"

namespace vectord::index {
namespace {

constexpr size_t kRowBlock = 48;      // rows per distance block (a multiple of the 6-row tile)
constexpr uint32_t kPanelBlock = 64;  // panels (1,024 centroids, 512 KiB at d 128) per block

// Runs fn(t) for t in [0, threads) on threads (the caller's thread takes t = 0).
template <typename Fn>
void OnThreads(unsigned threads, const Fn& fn) {
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back([&fn, t] { fn(t); });
  fn(0);
  for (auto& th : pool) th.join();
}

// Nearest packed centroid of rows [lo, hi) (ties to the lower id).
void NearestRange(const float* x, const float* xn, size_t lo, size_t hi, const CentroidPanels& cp,
                  uint32_t* label, float* dist) {
  const uint32_t np = cp.panels();
  // Per-thread scratch, reused across calls (the group k-means call this thousands of times).
  thread_local std::vector<float> d, best;
  thread_local std::vector<uint32_t> arg;
  d.resize(kRowBlock * size_t{kPanelBlock} * CentroidPanels::kWidth);
  best.resize(kRowBlock);
  arg.resize(kRowBlock);
  const uint32_t dim = cp.dim();
  for (size_t b = lo; b < hi; b += kRowBlock) {
    const size_t nb = std::min(kRowBlock, hi - b);
    std::fill(best.begin(), best.end(), INFINITY);
    std::fill(arg.begin(), arg.end(), 0);
    for (uint32_t p0 = 0; p0 < np; p0 += kPanelBlock) {
      const uint32_t p1 = std::min(np, p0 + kPanelBlock);
      const size_t ld = size_t{p1 - p0} * CentroidPanels::kWidth;
      L2SqrBlock(x + b * dim, xn + b, nb, cp, p0, p1, d.data(), ld);
      const uint32_t c0 = p0 * CentroidPanels::kWidth;
      const uint32_t nc = std::min<uint32_t>(cp.k(), p1 * CentroidPanels::kWidth) - c0;
      for (size_t i = 0; i < nb; ++i) {
        const float* di = d.data() + i * ld;
        for (uint32_t j = 0; j < nc; ++j) {
          if (di[j] < best[i]) {
            best[i] = di[j];
            arg[i] = c0 + j;
          }
        }
      }
    }
    for (size_t i = 0; i < nb; ++i) {
      if (label != nullptr) label[b + i] = arg[i];
      if (dist != nullptr) dist[b + i] = best[i];
    }
  }
}

// Nearest centroid of all n rows, row blocks split statically over the threads.
void Nearest(const float* x, const float* xn, size_t n, const CentroidPanels& cp, uint32_t* label,
             float* dist, unsigned threads) {
  const size_t blocks = (n + kRowBlock - 1) / kRowBlock;
  threads = static_cast<unsigned>(std::clamp<size_t>(threads, 1, std::max<size_t>(1, blocks)));
  OnThreads(threads, [&](unsigned t) {
    const size_t lo = std::min(n, blocks * t / threads * kRowBlock);
    const size_t hi = std::min(n, blocks * (t + 1) / threads * kRowBlock);
    NearestRange(x, xn, lo, hi, cp, label, dist);
  });
}

// Lloyd k-means of n points to k centroids (k <= n) appended to `out`: k distinct random points
// to start, `niter` rounds of nearest-centroid assignment and mean update; an emptied centroid
// takes over half of a cluster chosen with probability ~ its size (Faiss's rule). Deterministic.
// max_points_per_centroid: trains on a random subset of k times this many points (0 = all).
Status RunKMeans(const float* x, size_t n, uint32_t dim, uint32_t k, const KMeansParams& p,
                 uint64_t salt, std::vector<float>* out, size_t max_points_per_centroid = 0,
                 unsigned threads = 1) {
  if (k == 0 || n == 0) return Status::OK();
  if (k >= n) {  // every point its own centroid
    out->insert(out->end(), x, x + n * dim);
    return Status::OK();
  }
  std::mt19937_64 rng(p.seed * 0x9E3779B97F4A7C15ull + salt);
  std::vector<float> sub;
  // Per-thread scratch, reused across calls (see NearestRange); a few MB at most per thread.
  thread_local std::vector<float> xn, cent;
  thread_local std::vector<uint32_t> idx, label;
  thread_local std::vector<double> sum;
  thread_local std::vector<size_t> cnt;
  thread_local CentroidPanels cp;
  if (max_points_per_centroid > 0 && n > max_points_per_centroid * k) {
    const size_t m = max_points_per_centroid * k;
    std::vector<uint32_t> pick(n);  // the first level only (large n, once): not kept
    for (size_t i = 0; i < n; ++i) pick[i] = static_cast<uint32_t>(i);
    for (size_t i = 0; i < m; ++i) {
      std::swap(pick[i], pick[i + std::uniform_int_distribution<size_t>(0, n - 1 - i)(rng)]);
    }
    pick.resize(m);
    std::sort(pick.begin(), pick.end());
    sub.resize(m * dim);
    for (size_t i = 0; i < m; ++i) {
      std::copy(x + size_t{pick[i]} * dim, x + (size_t{pick[i]} + 1) * dim, sub.data() + i * dim);
    }
    x = sub.data();
    n = m;
  }
  xn.resize(n);
  SquaredNorms(x, n, dim, xn.data());
  // Initial centroids: k distinct points (partial Fisher-Yates).
  cent.resize(size_t{k} * dim);
  {
    idx.resize(n);
    for (size_t i = 0; i < n; ++i) idx[i] = static_cast<uint32_t>(i);
    for (uint32_t i = 0; i < k; ++i) {
      std::swap(idx[i], idx[i + std::uniform_int_distribution<size_t>(0, n - 1 - i)(rng)]);
      std::copy(x + size_t{idx[i]} * dim, x + (size_t{idx[i]} + 1) * dim,
                cent.data() + size_t{i} * dim);
    }
  }
  label.resize(n);
  sum.resize(size_t{k} * dim);
  cnt.resize(k);
  for (int it = 0; it < std::max(1, p.niter); ++it) {
    cp.Pack(cent.data(), k, dim);
    Nearest(x, xn.data(), n, cp, label.data(), nullptr, threads);
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(cnt.begin(), cnt.end(), 0);
    for (size_t i = 0; i < n; ++i) {
      double* s = sum.data() + size_t{label[i]} * dim;
      const float* xi = x + i * dim;
      for (uint32_t j = 0; j < dim; ++j) s[j] += xi[j];
      cnt[label[i]]++;
    }
    for (uint32_t c = 0; c < k; ++c) {
      if (cnt[c] == 0) continue;
      const double inv = 1.0 / static_cast<double>(cnt[c]);
      for (uint32_t j = 0; j < dim; ++j) {
        cent[size_t{c} * dim + j] = static_cast<float>(sum[size_t{c} * dim + j] * inv);
      }
    }
    // Empty clusters: split a big one (probability ~ size - 1), nudging both copies apart.
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (uint32_t c = 0; c < k; ++c) {
      if (cnt[c] != 0) continue;
      uint32_t from = 0;
      for (;; from = (from + 1) % k) {
        const double pr = (static_cast<double>(cnt[from]) - 1.0) / static_cast<double>(n - k);
        if (u(rng) < pr) break;
      }
      float* a = cent.data() + size_t{c} * dim;
      float* b = cent.data() + size_t{from} * dim;
      constexpr float kEps = 1.0f / 1024;
      for (uint32_t j = 0; j < dim; ++j) {
        const float v = b[j];
        a[j] = v * (j % 2 == 0 ? 1 + kEps : 1 - kEps);
        b[j] = v * (j % 2 == 0 ? 1 - kEps : 1 + kEps);
      }
      cnt[c] = cnt[from] / 2;
      cnt[from] -= cnt[c];
    }
  }
  out->insert(out->end(), cent.begin(), cent.end());
  return Status::OK();
}

// Gathers the rows of `members` into a contiguous buffer.
void Gather(const float* x, uint32_t dim, const std::vector<uint32_t>& members,
            std::vector<float>* out) {
  out->resize(members.size() * dim);
  for (size_t i = 0; i < members.size(); ++i) {
    std::copy(x + size_t{members[i]} * dim, x + (size_t{members[i]} + 1) * dim,
              out->data() + i * dim);
  }
}

}  // namespace

Status AssignNearest(const float* x, size_t n, const float* centroids, uint32_t k, uint32_t dim,
                     uint32_t* labels, float* dists, unsigned threads) {
  if (n == 0) return Status::OK();
  if (k == 0 || dim == 0) {
    return Status::InvalidArgument("nearest-centroid search of " + std::to_string(n) +
                                   " points needs centroids (k=" + std::to_string(k) +
                                   ", dim=" + std::to_string(dim) + ")");
  }
  const CentroidPanels cp(centroids, k, dim);
  std::vector<float> xn(n);
  SquaredNorms(x, n, dim, xn.data());
  Nearest(x, xn.data(), n, cp, labels, dists, threads);
  return Status::OK();
}

uint32_t TopLevelGroups(uint32_t num_centroids) {
  return std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(std::sqrt(num_centroids))));
}

uint32_t GroupShare(uint32_t num_centroids, size_t group_points, size_t points) {
  return std::max<uint32_t>(1, static_cast<uint32_t>(std::llround(
                                   static_cast<double>(num_centroids) * group_points / points)));
}

Status TrainTopLevel(const float* x, size_t n, uint32_t dim, uint32_t k1, const KMeansParams& p,
                     std::vector<float>* group_centroids) {
  group_centroids->clear();
  // No more than 256 points per group (Faiss's default subsampling): at 10M rows the full sample
  // made this step most of the build. Its passes run on all threads.
  return RunKMeans(x, n, dim, k1, p, 1, group_centroids, 256, std::max(1u, p.threads));
}

Status ClusterGroup(const float* x, size_t gn, uint32_t dim, uint32_t kg, uint32_t g,
                    const KMeansParams& p, std::vector<float>* out) {
  out->clear();
  if (gn == 0) return Status::OK();
  std::vector<float> sub;
  VECTORD_RETURN_IF_ERROR(
      RunKMeans(x, gn, dim, std::min<size_t>(std::max<uint32_t>(1, kg), gn), p, 1000 + g, &sub));
  std::vector<uint32_t> sub_label;
  for (int round = 0; round < 3 && p.max_cluster_points > 0; ++round) {
    const uint32_t ks = static_cast<uint32_t>(sub.size() / dim);
    sub_label.resize(gn);
    VECTORD_RETURN_IF_ERROR(AssignNearest(x, gn, sub.data(), ks, dim, sub_label.data(), nullptr));
    std::vector<std::vector<uint32_t>> cl(ks);
    for (size_t i = 0; i < gn; ++i) cl[sub_label[i]].push_back(static_cast<uint32_t>(i));
    bool split = false;
    std::vector<float> next;
    std::vector<float> part;
    for (uint32_t c = 0; c < ks; ++c) {
      if (cl[c].size() <= p.max_cluster_points) {
        if (!cl[c].empty()) {
          next.insert(next.end(), sub.data() + size_t{c} * dim, sub.data() + (c + 1) * size_t{dim});
        }
        continue;
      }
      split = true;
      const uint32_t kc =
          static_cast<uint32_t>((cl[c].size() + p.max_cluster_points - 1) / p.max_cluster_points) +
          1;
      Gather(x, dim, cl[c], &part);
      VECTORD_RETURN_IF_ERROR(RunKMeans(part.data(), cl[c].size(), dim, kc, p,
                                        (uint64_t{g} << 20) + (uint64_t(round) << 16) + c, &next));
    }
    sub.swap(next);
    if (!split) break;
  }
  out->swap(sub);
  return Status::OK();
}

Result<KMeansResult> HierarchicalKMeans(const float* x, size_t n, uint32_t dim,
                                        const KMeansParams& p) {
  if (dim == 0 || n == 0 || p.num_centroids == 0) {
    return Status::InvalidArgument(
        "k-means needs points, a dimension and num_centroids > 0 (got n=" + std::to_string(n) +
        ", dim=" + std::to_string(dim) + ", k=" + std::to_string(p.num_centroids) + ")");
  }
  const uint32_t want = static_cast<uint32_t>(std::min<size_t>(p.num_centroids, n));
  KMeansResult res;
  res.dim = dim;
  // Level 1: about sqrt(k) groups.
  const unsigned threads_all = std::max(1u, p.threads);
  VECTORD_RETURN_IF_ERROR(TrainTopLevel(x, n, dim, TopLevelGroups(want), p, &res.group_centroids));
  const uint32_t groups = res.num_groups();
  std::vector<uint32_t> label(n);
  VECTORD_RETURN_IF_ERROR(AssignNearest(x, n, res.group_centroids.data(), groups, dim, label.data(),
                                        nullptr, threads_all));
  std::vector<std::vector<uint32_t>> members(groups);
  for (size_t i = 0; i < n; ++i) members[label[i]].push_back(static_cast<uint32_t>(i));

  // Level 2: each group gets centroids in proportion to its size; oversize clusters split again.
  // Groups are independent: clustered in parallel, results concatenated in group order.
  std::vector<std::vector<float>> group_out(groups);
  std::vector<Status> group_status(groups);
  std::atomic<uint32_t> next_group{0};
  auto worker = [&] {
    std::vector<float> buf;
    for (uint32_t g; (g = next_group.fetch_add(1)) < groups;) {
      const size_t gn = members[g].size();
      Gather(x, dim, members[g], &buf);
      group_status[g] =
          ClusterGroup(buf.data(), gn, dim, GroupShare(want, gn, n), g, p, &group_out[g]);
    }
  };
  const unsigned threads = std::max(1u, std::min<unsigned>(p.threads, groups));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (uint32_t g = 0; g < groups; ++g) {
    VECTORD_RETURN_IF_ERROR(group_status[g]);
    const uint32_t ks = static_cast<uint32_t>(group_out[g].size() / dim);
    res.centroids.insert(res.centroids.end(), group_out[g].begin(), group_out[g].end());
    res.group.insert(res.group.end(), ks, g);
  }
  return res;
}

}  // namespace vectord::index
