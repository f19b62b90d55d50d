// Hierarchical balanced k-means over Faiss's k-means (see balanced_kmeans.h).
#include "index/balanced_kmeans.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <string>
#include <thread>

namespace vectord::index {
namespace {

// Faiss runs its loops under OpenMP. On a machine shared with other work, OpenMP's spinning
// barriers made the many small k-means calls of the hierarchy 20x slower (42 s instead of 2 s for
// 100k x 128 -> 2.9k centroids on 2 loaded cores), so they run single-threaded.
class OneOmpThread {
 public:
  OneOmpThread() : prev_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneOmpThread() { omp_set_num_threads(prev_); }

 private:
  int prev_;
};

// Plain k-means of n points to k centroids (k <= n) appended to `out`.
// max_points_per_centroid: Faiss subsamples to k times this many points (its default is 256).
Status RunKMeans(const float* x, size_t n, uint32_t dim, uint32_t k, const KMeansParams& p,
                 uint64_t salt, std::vector<float>* out, int max_points_per_centroid = 1 << 20) {
  if (k == 0 || n == 0) return Status::OK();
  if (k >= n) {  // every point its own centroid
    out->insert(out->end(), x, x + n * dim);
    return Status::OK();
  }
  try {
    faiss::ClusteringParameters cp;
    cp.niter = p.niter;
    cp.seed = static_cast<int>((p.seed * 0x9E3779B97F4A7C15ull + salt) >> 33);
    cp.verbose = false;
    cp.min_points_per_centroid = 1;  // small sub-clusters are normal here: no warnings
    cp.max_points_per_centroid = max_points_per_centroid;
    faiss::Clustering clus(static_cast<int>(dim), static_cast<int>(k), cp);
    faiss::IndexFlatL2 index(static_cast<int>(dim));
    clus.train(static_cast<faiss::Index::idx_t>(n), x, index);
    out->insert(out->end(), clus.centroids.begin(), clus.centroids.end());
  } catch (const std::exception& e) {
    return Status::Internal("k-means of " + std::to_string(n) + " points to " + std::to_string(k) +
                            " centroids failed: " + e.what());
  }
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
                     uint32_t* labels, float* dists) {
  if (n == 0) return Status::OK();
  OneOmpThread one_thread;
  try {
    faiss::IndexFlatL2 index(static_cast<int>(dim));
    index.add(k, centroids);
    std::vector<faiss::Index::idx_t> lab(n);
    std::vector<float> dis(n);
    index.search(static_cast<faiss::Index::idx_t>(n), x, 1, dis.data(), lab.data());
    for (size_t i = 0; i < n; ++i) {
      if (labels != nullptr) labels[i] = static_cast<uint32_t>(lab[i]);
      if (dists != nullptr) dists[i] = dis[i];
    }
  } catch (const std::exception& e) {
    return Status::Internal("nearest-centroid search of " + std::to_string(n) + " points over " +
                            std::to_string(k) + " centroids failed: " + e.what());
  }
  return Status::OK();
}

// Second level for top-level group g: k-means to its share of `want`, then up to three rounds of
// splitting clusters over the size limit. Writes the group's centroids to *sub.
static Status ClusterGroup(const float* x, size_t n, uint32_t dim, const KMeansParams& p,
                           uint32_t want, uint32_t g, const std::vector<uint32_t>& members,
                           std::vector<float>* buf, std::vector<float>* sub,
                           std::vector<uint32_t>* sub_label) {
  sub->clear();
  if (members.empty()) return Status::OK();
  const size_t gn = members.size();
  const uint32_t kg = std::max<uint32_t>(
      1, static_cast<uint32_t>(std::llround(static_cast<double>(want) * gn / n)));
  Gather(x, dim, members, buf);
  VECTORD_RETURN_IF_ERROR(
      RunKMeans(buf->data(), gn, dim, std::min<size_t>(kg, gn), p, 1000 + g, sub));
  for (int round = 0; round < 3 && p.max_cluster_points > 0; ++round) {
    const uint32_t ks = static_cast<uint32_t>(sub->size() / dim);
    sub_label->resize(gn);
    VECTORD_RETURN_IF_ERROR(
        AssignNearest(buf->data(), gn, sub->data(), ks, dim, sub_label->data(), nullptr));
    std::vector<std::vector<uint32_t>> cl(ks);
    for (size_t i = 0; i < gn; ++i) cl[(*sub_label)[i]].push_back(static_cast<uint32_t>(i));
    bool split = false;
    std::vector<float> next;
    std::vector<float> part;
    for (uint32_t c = 0; c < ks; ++c) {
      if (cl[c].size() <= p.max_cluster_points) {
        if (!cl[c].empty()) {
          next.insert(next.end(), sub->data() + size_t{c} * dim,
                      sub->data() + (c + 1) * size_t{dim});
        }
        continue;
      }
      split = true;
      const uint32_t kc =
          static_cast<uint32_t>((cl[c].size() + p.max_cluster_points - 1) / p.max_cluster_points) +
          1;
      Gather(buf->data(), dim, cl[c], &part);
      VECTORD_RETURN_IF_ERROR(RunKMeans(part.data(), cl[c].size(), dim, kc, p,
                                        (uint64_t{g} << 20) + (uint64_t(round) << 16) + c, &next));
    }
    sub->swap(next);
    if (!split) break;
  }
  return Status::OK();
}

Result<KMeansResult> HierarchicalKMeans(const float* x, size_t n, uint32_t dim,
                                        const KMeansParams& p) {
  OneOmpThread one_thread;
  if (dim == 0 || n == 0 || p.num_centroids == 0) {
    return Status::InvalidArgument(
        "k-means needs points, a dimension and num_centroids > 0 (got n=" + std::to_string(n) +
        ", dim=" + std::to_string(dim) + ", k=" + std::to_string(p.num_centroids) + ")");
  }
  const uint32_t want = static_cast<uint32_t>(std::min<size_t>(p.num_centroids, n));
  KMeansResult res;
  res.dim = dim;
  // Level 1: about sqrt(k) groups.
  const uint32_t k1 = std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(std::sqrt(want))));
  // The top level needs no more than 256 points per group (Faiss's own default subsampling): at
  // 10M rows the full sample made this single-threaded step most of the build.
  VECTORD_RETURN_IF_ERROR(RunKMeans(x, n, dim, k1, p, 1, &res.group_centroids, 256));
  const uint32_t groups = res.num_groups();
  std::vector<uint32_t> label(n);
  {
    // Nearest group of every sample point, in slices on the build threads.
    const unsigned threads = std::max(1u, p.threads);
    const size_t slice = (n + threads - 1) / threads;
    std::vector<Status> st(threads);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
      const size_t lo = std::min(n, t * slice), hi = std::min(n, lo + slice);
      pool.emplace_back([&, t, lo, hi] {
        OneOmpThread one;
        st[t] = AssignNearest(x + lo * dim, hi - lo, res.group_centroids.data(), groups, dim,
                              label.data() + lo, nullptr);
      });
    }
    for (auto& th : pool) th.join();
    for (const auto& s : st) VECTORD_RETURN_IF_ERROR(s);
  }
  std::vector<std::vector<uint32_t>> members(groups);
  for (size_t i = 0; i < n; ++i) members[label[i]].push_back(static_cast<uint32_t>(i));

  // Level 2: each group gets centroids in proportion to its size; oversize clusters split again.
  // Groups are independent: clustered in parallel, results concatenated in group order.
  std::vector<std::vector<float>> group_out(groups);
  std::vector<Status> group_status(groups);
  std::atomic<uint32_t> next_group{0};
  auto worker = [&] {
    OneOmpThread one;  // OpenMP settings are per thread
    std::vector<float> buf, sub;
    std::vector<uint32_t> sub_label;
    for (uint32_t g; (g = next_group.fetch_add(1)) < groups;) {
      group_status[g] = ClusterGroup(x, n, dim, p, want, g, members[g], &buf, &sub, &sub_label);
      group_out[g].swap(sub);
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
