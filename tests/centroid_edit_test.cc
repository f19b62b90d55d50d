// CentroidIndex::WithEdits (index/centroid_edit.cc) against a model of the alive centroids:
// thousands of random list splits, merges and reused ids keep search results right (brute force
// exactly, the tree within a small margin of a tree rebuilt over the alive set), old snapshots
// keep their answers, round trips and replays give the same index, bad edits change nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "index/balanced_kmeans.h"
#include "index/centroid_graph.h"
#include "index/centroid_store.h"
#include "index/distance.h"

namespace vectord::index {
namespace {

// n rows of dim floats around `clusters` Gaussian centres.
std::vector<float> Clustered(size_t n, uint32_t dim, uint32_t clusters, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> centres(size_t{clusters} * dim);
  for (auto& c : centres) c = g(rng) * 4;
  std::vector<float> x(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t c = static_cast<uint32_t>(rng() % clusters);
    for (uint32_t j = 0; j < dim; ++j) x[i * dim + j] = centres[size_t{c} * dim + j] + g(rng);
  }
  return x;
}

constexpr uint32_t kDim = 24;
// Clusters of the data the centroids summarize: many, so that the tree has work to do.
constexpr uint32_t kClusters = 1000;

// A navigation index over `c` k-means centroids of clustered points.
std::unique_ptr<CentroidIndex> MakeIndex(CentroidIndexKind kind, uint32_t c, CentroidPrecision p,
                                         uint64_t seed) {
  const auto pts = Clustered(size_t{c} * 12, kDim, kClusters, seed);
  KMeansParams kp;
  kp.num_centroids = c;
  kp.niter = 4;
  auto km = HierarchicalKMeans(pts.data(), size_t{c} * 12, kDim, kp);
  EXPECT_TRUE(km.ok());
  auto ci = CentroidIndex::Build(kind, km->centroids.data(), km->k(), kDim, km->group,
                                 km->group_centroids);
  EXPECT_TRUE(ci.ok());
  if (kind != CentroidIndexKind::kHnsw) {
    EXPECT_TRUE((*ci)->SetPrecision(p).ok());
  }
  return std::move(ci).value();
}

// The expected state: alive id -> centroid as stored (half: rounded).
struct Model {
  uint32_t size = 0;
  std::map<uint32_t, std::vector<float>> alive;
  std::vector<uint32_t> dead;
};

Model ModelOf(const CentroidIndex& ci) {
  Model m;
  m.size = ci.size();
  for (uint32_t i = 0; i < ci.size(); ++i) {
    if (!ci.alive(i)) {
      m.dead.push_back(i);
      continue;
    }
    std::vector<float> v(ci.dim());
    ci.Decode(i, v.data());
    m.alive[i] = v;
  }
  return m;
}

std::vector<float> Stored(const std::vector<float>& v, CentroidPrecision p) {
  std::vector<float> out = v;
  if (p == CentroidPrecision::kF16) {
    for (float& x : out) x = HalfToFloat(FloatToHalf(x));
  }
  return out;
}

// A random batch of LIRE edits, applied to the model too: splits (remove a centroid, add two
// around it), merges (remove one), new centroids near a random one. New ids reuse dead ones half
// of the time. `split_share` of the operations are splits.
CentroidEdits RandomBatch(Model* m, std::mt19937_64* rng, uint32_t ops, double split_share,
                          CentroidPrecision p) {
  CentroidEdits e;
  std::normal_distribution<float> g(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::set<uint32_t> removed;
  std::vector<std::vector<float>> to_add;
  auto pick_alive = [&]() -> uint32_t {
    for (int t = 0; t < 100; ++t) {
      auto it = m->alive.begin();
      std::advance(it, (*rng)() % m->alive.size());
      if (!removed.count(it->first)) return it->first;
    }
    return UINT32_MAX;
  };
  for (uint32_t o = 0; o < ops && m->alive.size() > removed.size() + 2; ++o) {
    const double r = u(*rng);
    const uint32_t id = pick_alive();
    if (id == UINT32_MAX) break;
    const std::vector<float>& x = m->alive.at(id);
    if (r < split_share) {
      removed.insert(id);
      e.removed.push_back(id);
      std::vector<float> a(kDim), b(kDim);
      for (uint32_t j = 0; j < kDim; ++j) {
        const float d = 0.3f * g(*rng);
        a[j] = x[j] + d;
        b[j] = x[j] - d;
      }
      to_add.push_back(a);
      to_add.push_back(b);
    } else if (r < split_share + (1 - split_share) * 0.8) {
      removed.insert(id);
      e.removed.push_back(id);
    } else {
      std::vector<float> a(kDim);
      for (uint32_t j = 0; j < kDim; ++j) a[j] = x[j] + 0.5f * g(*rng);
      to_add.push_back(a);
    }
  }
  // Ids for the additions: dead ones (also those removed just now) or the next new one.
  std::vector<uint32_t> free_ids = m->dead;
  free_ids.insert(free_ids.end(), removed.begin(), removed.end());
  std::shuffle(free_ids.begin(), free_ids.end(), *rng);
  for (uint32_t id : removed) m->alive.erase(id);
  std::set<uint32_t> reused;
  for (const auto& v : to_add) {
    uint32_t id;
    if (!free_ids.empty() && u(*rng) < 0.5) {
      id = free_ids.back();
      free_ids.pop_back();
      reused.insert(id);
    } else {
      id = m->size++;
    }
    e.added_ids.push_back(id);
    e.added.insert(e.added.end(), v.begin(), v.end());
    m->alive[id] = Stored(v, p);
  }
  m->dead.clear();
  for (uint32_t i = 0; i < m->size; ++i) {
    if (!m->alive.count(i)) m->dead.push_back(i);
  }
  return e;
}

// The model's k nearest to q, distances from the index under test (exact, the index's kernel).
std::vector<CentroidHit> Exact(const Model& m, const CentroidIndex& ci, const float* q,
                               uint32_t k) {
  std::vector<CentroidHit> all;
  for (const auto& [id, v] : m.alive) all.push_back({ci.L2(q, id), id});
  std::sort(all.begin(), all.end(), [](const CentroidHit& a, const CentroidHit& b) {
    return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
  });
  if (all.size() > k) all.resize(k);
  return all;
}

// Share of the exact k nearest that Search finds, and the distances it computed per query (the
// navigation's work); fails on any dead id returned.
struct Measured {
  double recall = 0;
  double work = 0;
};
Measured Measure(const Model& m, const CentroidIndex& ci, const std::vector<float>& queries,
                 uint32_t k, CentroidSearchParams sp = {}) {
  const size_t nq = queries.size() / kDim;
  size_t found = 0, want = 0;
  uint64_t work = 0;
  sp.distances = &work;
  std::vector<CentroidHit> hits;
  for (size_t i = 0; i < nq; ++i) {
    const float* q = &queries[i * kDim];
    const auto truth = Exact(m, ci, q, k);
    ci.Search(q, k, sp, &hits);
    EXPECT_LE(hits.size(), truth.size());  // the probed groups may hold fewer than k
    for (const auto& h : hits) {
      EXPECT_TRUE(m.alive.count(h.id)) << "removed id " << h.id << " returned";
      for (const auto& t : truth) found += h.id == t.id;
    }
    want += truth.size();
  }
  return {want == 0 ? 1.0 : static_cast<double>(found) / want, static_cast<double>(work) / nq};
}

// Trees built from scratch over the model's alive centroids, as the SPANN build makes one
// (sqrt(C) top-level groups by k-means, members by nearest group): recall and work at `sp`, the
// mean over three k-means seeds (one seed's recall varies by +-0.015 here).
Measured Rebuilt(const Model& m, CentroidPrecision p, const std::vector<float>& queries, uint32_t k,
                 const CentroidSearchParams& sp = {}) {
  std::vector<float> x;
  for (const auto& [id, v] : m.alive) x.insert(x.end(), v.begin(), v.end());
  const uint32_t n = static_cast<uint32_t>(m.alive.size());
  Model rm;  // the same centroids under the rebuilt index's ids
  rm.size = n;
  Measured mean;
  const uint64_t seeds[] = {1234, 1, 2};
  for (uint64_t seed : seeds) {
    KMeansParams kp;
    kp.seed = seed;
    std::vector<float> gc;
    EXPECT_TRUE(TrainTopLevel(x.data(), n, kDim, TopLevelGroups(n), kp, &gc).ok());
    const uint32_t groups = static_cast<uint32_t>(gc.size() / kDim);
    std::vector<uint32_t> label(n);
    EXPECT_TRUE(AssignNearest(x.data(), n, gc.data(), groups, kDim, label.data(), nullptr).ok());
    std::vector<uint32_t> order(n);
    for (uint32_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return label[a] < label[b]; });
    std::vector<float> sorted;
    std::vector<uint32_t> sorted_label;
    for (uint32_t r = 0; r < n; ++r) {
      const float* v = &x[size_t{order[r]} * kDim];
      sorted.insert(sorted.end(), v, v + kDim);
      sorted_label.push_back(label[order[r]]);
      rm.alive[r] = std::vector<float>(v, v + kDim);
    }
    auto ci =
        CentroidIndex::Build(CentroidIndexKind::kTree, sorted.data(), n, kDim, sorted_label, gc);
    EXPECT_TRUE(ci.ok());
    EXPECT_TRUE((*ci)->SetPrecision(p).ok());
    const Measured one = Measure(rm, **ci, queries, k, sp);
    mean.recall += one.recall / std::size(seeds);
    mean.work += one.work / std::size(seeds);
  }
  return mean;
}

// The edited tree against rebuilt ones: at the default tree_groups, recall within
// `default_margin`; at equal work (the most groups whose distances stay within the rebuilt
// trees'), within 0.02. Prints both.
void CompareWithRebuilt(const Model& m, const CentroidIndex& tree, CentroidPrecision p,
                        const std::vector<float>& queries, uint32_t k, double default_margin,
                        const char* what) {
  const Measured edited = Measure(m, tree, queries, k);
  const Measured rebuilt = Rebuilt(m, p, queries, k);
  Measured same_work = edited;
  uint32_t groups = std::max<uint32_t>(8, k / 2);
  for (uint32_t g = groups + 1;; ++g) {
    CentroidSearchParams sp;
    sp.tree_groups = g;
    const Measured more = Measure(m, tree, queries, k, sp);
    if (more.work > rebuilt.work || more.work == same_work.work) break;
    same_work = more;
    groups = g;
  }
  std::printf(
      "%s, %zu centroids in %zu groups, recall@%u: default tree_groups: edited %.4f "
      "(%.0f distances/query), rebuilt %.4f (%.0f); edited at %u groups %.4f (%.0f)\n",
      what, m.alive.size(), tree.GroupSizes().size(), k, edited.recall, edited.work, rebuilt.recall,
      rebuilt.work, groups, same_work.recall, same_work.work);
  EXPECT_GE(edited.recall, rebuilt.recall - default_margin) << what << " k " << k;
  EXPECT_GE(same_work.recall, rebuilt.recall - 0.02) << what << " k " << k;
}

void ExpectMatchesModel(const Model& m, const CentroidIndex& ci) {
  ASSERT_EQ(ci.size(), m.size);
  ASSERT_EQ(ci.alive_count(), m.alive.size());
  std::vector<float> v(kDim);
  const std::vector<float> q(kDim, 0.5f);
  for (uint32_t i = 0; i < m.size; ++i) {
    const auto it = m.alive.find(i);
    ASSERT_EQ(ci.alive(i), it != m.alive.end()) << "id " << i;
    ci.Decode(i, v.data());
    if (it == m.alive.end()) {
      EXPECT_TRUE(std::isnan(v[0]));
      EXPECT_EQ(ci.L2(q.data(), i), INFINITY);
      continue;
    }
    ASSERT_EQ(v, it->second) << "id " << i;
    EXPECT_NEAR(ci.L2(q.data(), i), L2SqrF32(q.data(), v.data(), kDim), 1e-3);
  }
  uint32_t members = 0;
  for (uint32_t s : ci.GroupSizes()) members += s;
  EXPECT_EQ(members, m.alive.size());
}

class CentroidEditTest : public ::testing::TestWithParam<CentroidPrecision> {};

// The collection grows (mostly splits) from 400 to about 3,000 lists in batches: groups split,
// the state always matches the model, brute force answers exactly, and the edited tree's recall
// stays within 0.03 of a tree rebuilt over the same centroids.
TEST_P(CentroidEditTest, GrowingTreeKeepsRecallOfRebuiltTree) {
  const CentroidPrecision p = GetParam();
  std::shared_ptr<const CentroidIndex> tree = MakeIndex(CentroidIndexKind::kTree, 400, p, 1);
  std::shared_ptr<const CentroidIndex> brute = MakeIndex(CentroidIndexKind::kBruteForce, 400, p, 1);
  const uint32_t groups0 = static_cast<uint32_t>(tree->GroupSizes().size());
  Model m = ModelOf(*tree);
  std::mt19937_64 rng(7);
  const auto queries = Clustered(200, kDim, kClusters, 1);
  uint32_t edits = 0;
  for (int batch = 0; batch < 120; ++batch) {
    const uint32_t ops = 1 + static_cast<uint32_t>(rng() % 40);
    const CentroidEdits e = RandomBatch(&m, &rng, ops, 0.85, p);
    edits += static_cast<uint32_t>(e.removed.size() + e.added_ids.size());
    auto t = tree->WithEdits(e);
    auto b = brute->WithEdits(e);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    tree = *t;
    brute = *b;
    if (batch % 20 == 19) {
      ExpectMatchesModel(m, *tree);
      ExpectMatchesModel(m, *brute);
      // Brute force: exactly the model's nearest.
      std::vector<CentroidHit> hits;
      for (size_t i = 0; i < 20; ++i) {
        const float* q = &queries[i * kDim];
        brute->Search(q, 10, {}, &hits);
        const auto truth = Exact(m, *brute, q, 10);
        ASSERT_EQ(hits.size(), truth.size());
        for (size_t j = 0; j < hits.size(); ++j) {
          EXPECT_EQ(hits[j].id, truth[j].id);
          EXPECT_EQ(hits[j].dist, truth[j].dist);
        }
      }
    }
  }
  EXPECT_GT(edits, 3000u);
  EXPECT_GT(m.alive.size(), 2000u);
  // Groups split as the tree grew, and none is past the split bound.
  const auto sizes = tree->GroupSizes();
  EXPECT_GT(sizes.size(), groups0 * 3 / 2);
  const uint32_t bound =
      2 * std::max<uint32_t>(static_cast<uint32_t>(std::sqrt(double(m.alive.size()))), 20);
  uint32_t biggest = 0;
  for (uint32_t s : sizes) biggest = std::max(biggest, s);
  EXPECT_LE(biggest, bound);
  for (uint32_t k : {10u, 32u}) {
    CompareWithRebuilt(m, *tree, p, queries, k, 0.03, "growth");
    EXPECT_GE(Measure(m, *tree, queries, k).recall, 0.9);
  }
}

// A steady state: as many merges as splits, so that ids are reused over and over and groups
// empty out; thousands of edits.
TEST_P(CentroidEditTest, ChurnKeepsStateAndRecall) {
  const CentroidPrecision p = GetParam();
  std::shared_ptr<const CentroidIndex> tree = MakeIndex(CentroidIndexKind::kTree, 1500, p, 2);
  Model m = ModelOf(*tree);
  std::mt19937_64 rng(8);
  uint32_t edits = 0, additions = 0;
  for (int batch = 0; batch < 100; ++batch) {
    const CentroidEdits e = RandomBatch(&m, &rng, 1 + rng() % 30, 0.35, p);
    edits += static_cast<uint32_t>(e.removed.size() + e.added_ids.size());
    additions += static_cast<uint32_t>(e.added_ids.size());
    auto t = tree->WithEdits(e);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tree = *t;
  }
  EXPECT_GT(edits, 2000u);
  ExpectMatchesModel(m, *tree);
  EXPECT_LT(tree->size(), 1500u + additions * 3 / 4);  // about half of the ids were reused
  const auto queries = Clustered(200, kDim, kClusters, 2);
  // Churn makes the centroids clump (pairs from splits): trees rebuilt by k-means put bigger
  // groups where they clump and so scan more members at the same number of groups; the edited
  // tree keeps the build's balance (docs/spann.md "Living navigation").
  CompareWithRebuilt(m, *tree, p, queries, 10, 0.06, "churn");
}

// Readers of an old snapshot see it as it was, however many snapshots follow.
TEST_P(CentroidEditTest, OldSnapshotKeepsItsAnswers) {
  const CentroidPrecision p = GetParam();
  std::shared_ptr<const CentroidIndex> first = MakeIndex(CentroidIndexKind::kTree, 800, p, 3);
  Model m = ModelOf(*first);
  std::mt19937_64 rng(9);
  std::shared_ptr<const CentroidIndex> mid = first;
  for (int batch = 0; batch < 10; ++batch) {
    mid = mid->WithEdits(RandomBatch(&m, &rng, 20, 0.6, p)).value();
  }
  const Model mid_model = m;
  const std::string first_blob = first->Serialize();
  const std::string mid_blob = mid->Serialize();
  const auto queries = Clustered(50, kDim, kClusters, 3);
  auto answers = [&](const CentroidIndex& ci) {
    std::vector<std::vector<CentroidHit>> out(50);
    for (size_t i = 0; i < 50; ++i) ci.Search(&queries[i * kDim], 16, {}, &out[i]);
    return out;
  };
  const auto first_answers = answers(*first);
  const auto mid_answers = answers(*mid);
  std::shared_ptr<const CentroidIndex> last = mid;
  for (int batch = 0; batch < 40; ++batch) {
    last = last->WithEdits(RandomBatch(&m, &rng, 30, 0.6, p)).value();
  }
  EXPECT_EQ(first->Serialize(), first_blob);
  EXPECT_EQ(mid->Serialize(), mid_blob);
  ExpectMatchesModel(mid_model, *mid);
  auto same_answers = [&](const std::vector<std::vector<CentroidHit>>& want,
                          const CentroidIndex& ci) {
    const auto again = answers(ci);
    for (size_t i = 0; i < 50; ++i) {
      ASSERT_EQ(again[i].size(), want[i].size());
      for (size_t j = 0; j < again[i].size(); ++j) {
        EXPECT_EQ(again[i][j].id, want[i][j].id);
        EXPECT_EQ(again[i][j].dist, want[i][j].dist);
      }
    }
  };
  same_answers(first_answers, *first);
  same_answers(mid_answers, *mid);
}

// Serialize / Deserialize of an edited index, and Compacted: the same answers, the same bytes,
// and the same index after the same further edits (a journal replayed on a reopened index).
TEST_P(CentroidEditTest, RoundTripAfterEditsIsTheSameIndex) {
  const CentroidPrecision p = GetParam();
  for (auto kind : {CentroidIndexKind::kTree, CentroidIndexKind::kBruteForce}) {
    std::shared_ptr<const CentroidIndex> ci = MakeIndex(kind, 600, p, 4);
    Model m = ModelOf(*ci);
    std::mt19937_64 rng(10);
    for (int batch = 0; batch < 30; ++batch) {
      ci = ci->WithEdits(RandomBatch(&m, &rng, 25, 0.7, p)).value();
    }
    const std::string blob = ci->Serialize();
    ASSERT_EQ(blob.substr(0, 4), "VDCE");
    auto rt = CentroidIndex::Deserialize(blob);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    std::shared_ptr<const CentroidIndex> back = std::move(rt).value();
    EXPECT_EQ(back->Serialize(), blob);
    // Compacted: the same index laid out as loaded, without a round trip.
    std::shared_ptr<const CentroidIndex> compact = ci->Compacted();
    EXPECT_EQ(compact->Serialize(), blob);
    EXPECT_LE(compact->MemoryBytes(), ci->MemoryBytes());
    ExpectMatchesModel(m, *compact);
    EXPECT_EQ(back->precision(), p);
    EXPECT_EQ(back->kind(), kind);
    ExpectMatchesModel(m, *back);
    EXPECT_EQ(back->GroupSizes(), ci->GroupSizes());
    const auto queries = Clustered(50, kDim, kClusters, 4);
    std::vector<CentroidHit> a, b;
    for (uint32_t groups : {1u, 4u, 0u, 64u}) {
      CentroidSearchParams sp;
      sp.tree_groups = groups;
      for (size_t i = 0; i < 50; ++i) {
        ci->Search(&queries[i * kDim], 12, sp, &a);
        for (const CentroidIndex* other : {back.get(), compact.get()}) {
          other->Search(&queries[i * kDim], 12, sp, &b);
          ASSERT_EQ(a.size(), b.size());
          for (size_t j = 0; j < a.size(); ++j) {
            EXPECT_EQ(a[j].id, b[j].id);
            EXPECT_EQ(a[j].dist, b[j].dist);
          }
        }
      }
    }
    for (int batch = 0; batch < 10; ++batch) {
      const CentroidEdits e = RandomBatch(&m, &rng, 25, 0.7, p);
      ci = ci->WithEdits(e).value();
      back = back->WithEdits(e).value();
      compact = compact->WithEdits(e).value();
      ASSERT_EQ(ci->Serialize(), back->Serialize()) << "batch " << batch;
      ASSERT_EQ(ci->Serialize(), compact->Serialize()) << "batch " << batch;
    }
  }
}

// The same edits on the same index give the same index, byte for byte, batch after batch.
TEST_P(CentroidEditTest, SameEditsGiveSameIndex) {
  const CentroidPrecision p = GetParam();
  std::shared_ptr<const CentroidIndex> a = MakeIndex(CentroidIndexKind::kTree, 300, p, 5);
  std::shared_ptr<const CentroidIndex> b = MakeIndex(CentroidIndexKind::kTree, 300, p, 5);
  ASSERT_EQ(a->Serialize(), b->Serialize());
  Model m = ModelOf(*a);
  std::mt19937_64 rng(11);
  for (int batch = 0; batch < 60; ++batch) {
    const CentroidEdits e = RandomBatch(&m, &rng, 1 + rng() % 50, 0.8, p);
    a = a->WithEdits(e).value();
    b = b->WithEdits(e).value();
    ASSERT_EQ(a->Serialize(), b->Serialize()) << "batch " << batch;
  }
  EXPECT_GT(a->GroupSizes().size(), 20u);  // splits happened on the way
}

INSTANTIATE_TEST_SUITE_P(Precisions, CentroidEditTest,
                         ::testing::Values(CentroidPrecision::kF32, CentroidPrecision::kF16),
                         [](const auto& info) { return CentroidPrecisionName(info.param); });

// Added centroids are stored in the index's precision; an id removed and added in one batch
// takes its new centroid; an emptied index takes centroids again.
TEST(CentroidEditRulesTest, PrecisionReuseAndEmptyIndex) {
  for (auto p : {CentroidPrecision::kF32, CentroidPrecision::kF16}) {
    for (auto kind : {CentroidIndexKind::kTree, CentroidIndexKind::kBruteForce}) {
      std::shared_ptr<const CentroidIndex> ci = MakeIndex(kind, 200, p, 6);
      CentroidEdits e;
      e.removed = {5};
      e.added_ids = {5, ci->size()};
      std::vector<float> v(2 * kDim);
      for (uint32_t j = 0; j < 2 * kDim; ++j) v[j] = 0.1f * j + 1.0f / 3;
      e.added = v;
      auto next = ci->WithEdits(e);
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      std::vector<float> got(kDim);
      for (uint32_t a = 0; a < 2; ++a) {
        (*next)->Decode(e.added_ids[a], got.data());
        const std::vector<float> want =
            Stored(std::vector<float>(v.begin() + a * kDim, v.begin() + (a + 1) * kDim), p);
        EXPECT_EQ(got, want);
        std::vector<CentroidHit> hits;
        (*next)->Search(want.data(), 1, {}, &hits);
        ASSERT_EQ(hits.size(), 1u);
        EXPECT_EQ(hits[0].id, e.added_ids[a]);
        EXPECT_EQ(hits[0].dist, 0.0f);
      }
      EXPECT_EQ((*next)->size(), ci->size() + 1);
      EXPECT_EQ((*next)->alive_count(), ci->size() + 1);
      // Remove everything: no answers; then one centroid again.
      CentroidEdits all;
      for (uint32_t i = 0; i < (*next)->size(); ++i) all.removed.push_back(i);
      auto empty = (*next)->WithEdits(all);
      ASSERT_TRUE(empty.ok());
      EXPECT_EQ((*empty)->alive_count(), 0u);
      std::vector<CentroidHit> hits;
      (*empty)->Search(v.data(), 5, {}, &hits);
      EXPECT_TRUE(hits.empty());
      for (uint32_t s : (*empty)->GroupSizes()) EXPECT_EQ(s, 0u);
      auto rt = CentroidIndex::Deserialize((*empty)->Serialize());
      ASSERT_TRUE(rt.ok()) << rt.status().ToString();
      EXPECT_EQ((*rt)->alive_count(), 0u);
      CentroidEdits one;
      one.added_ids = {17};
      one.added.assign(v.begin(), v.begin() + kDim);
      auto again = (*empty)->WithEdits(one);
      ASSERT_TRUE(again.ok());
      (*again)->Search(v.data(), 5, {}, &hits);
      ASSERT_EQ(hits.size(), 1u);
      EXPECT_EQ(hits[0].id, 17u);
    }
  }
}

// A group that grows past the bound splits in two around its two halves; a group whose members
// all go disappears, and its slot is taken by the next split.
TEST(CentroidEditRulesTest, GroupsSplitAndEmptyGroupsDisappear) {
  std::shared_ptr<const CentroidIndex> ci =
      MakeIndex(CentroidIndexKind::kTree, 400, CentroidPrecision::kF32, 7);
  const auto sizes0 = ci->GroupSizes();
  uint32_t g0 = 0;  // a non-empty group
  while (sizes0[g0] == 0) ++g0;
  // Empty group g0: remove its members (found by searching each alive centroid's own vector).
  std::vector<uint32_t> members;
  const auto& start = ci->member_start();
  ASSERT_FALSE(start.empty());
  for (uint32_t id = start[g0]; id < start[g0 + 1]; ++id) members.push_back(id);
  CentroidEdits rm;
  rm.removed = members;
  auto emptied = ci->WithEdits(rm);
  ASSERT_TRUE(emptied.ok());
  EXPECT_EQ((*emptied)->GroupSizes()[g0], 0u);
  EXPECT_TRUE((*emptied)->member_start().empty());  // no longer the tree as built
  // Now 300 centroids around two points near one existing centroid: they join its group, which
  // splits (more than once) into groups no larger than the bound.
  std::vector<float> base(kDim);
  (*emptied)->Decode(start[g0 + 1] < ci->size() ? start[g0 + 1] : 0, base.data());
  std::mt19937_64 rng(12);
  std::normal_distribution<float> g(0, 0.05f);
  CentroidEdits grow;
  for (uint32_t i = 0; i < 300; ++i) {
    grow.added_ids.push_back(ci->size() + i);
    for (uint32_t j = 0; j < kDim; ++j) {
      grow.added.push_back(base[j] + (j == 0 ? (i % 2 ? 1.0f : -1.0f) : 0.0f) + g(rng));
    }
  }
  auto grown = (*emptied)->WithEdits(grow);
  ASSERT_TRUE(grown.ok());
  const auto sizes = (*grown)->GroupSizes();
  EXPECT_GT(sizes.size(), sizes0.size());
  EXPECT_GT(sizes[g0], 0u);  // the emptied slot was reused by a split
  const uint32_t mean0 = (ci->size() + static_cast<uint32_t>(sizes0.size())) /
                         static_cast<uint32_t>(sizes0.size());  // rounded up
  const uint32_t bound =
      2 * std::max<uint32_t>(mean0, static_cast<uint32_t>(std::sqrt((*grown)->alive_count())));
  for (uint32_t s : sizes) EXPECT_LE(s, bound);
  // The new centroids are found where they are.
  std::vector<CentroidHit> hits;
  std::vector<float> v(kDim);
  size_t found = 0;
  for (uint32_t i = 0; i < 300; ++i) {
    (*grown)->Decode(ci->size() + i, v.data());
    (*grown)->Search(v.data(), 1, {}, &hits);
    found += hits.size() == 1 && hits[0].id == ci->size() + i;
  }
  EXPECT_GE(found, 297u);  // of 300 (a member may sit nearer another group's centroid)
}

// Bad edits are refused with InvalidArgument naming the id, and nothing changes; HNSW refuses
// every edit with FailedPrecondition.
TEST(CentroidEditRulesTest, BadEditsAreRefusedAndChangeNothing) {
  std::shared_ptr<const CentroidIndex> ci =
      MakeIndex(CentroidIndexKind::kTree, 200, CentroidPrecision::kF16, 8);
  CentroidEdits rm;
  rm.removed = {3};
  ci = ci->WithEdits(rm).value();  // 3 is dead now
  const std::string before = ci->Serialize();
  const uint32_t n = ci->size();
  const std::vector<float> v(kDim, 1.0f);
  struct Case {
    CentroidEdits e;
    std::string needle;
  };
  const std::string ns = std::to_string(n);
  std::vector<float> two = v;
  two.insert(two.end(), v.begin(), v.end());
  std::vector<float> nan = v;
  nan[5] = NAN;
  const std::vector<Case> cases = {
      {{{3}, {}, {}}, "remove centroid 3: it is not alive"},
      {{{n}, {}, {}}, "remove centroid " + ns + ": it is not alive"},
      {{{7, 7}, {}, {}}, "centroid 7 removed twice"},
      {{{}, {9}, v}, "add centroid 9: it is in use"},
      {{{}, {n + 1}, v}, "the next is " + ns},
      {{{}, {3, 3}, two}, "centroid 3 added twice"},
      {{{}, {n}, std::vector<float>(kDim - 1, 1.0f)}, "(dim 24 needs 24)"},
      {{{}, {n}, nan}, "non-finite value at dimension 5"},
      // A valid removal before an invalid addition: still nothing happens.
      {{{10}, {11}, v}, "add centroid 11: it is in use"},
  };
  for (const auto& c : cases) {
    auto r = ci->WithEdits(c.e);
    ASSERT_FALSE(r.ok()) << c.needle;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().ToString();
  }
  EXPECT_EQ(ci->Serialize(), before);
  EXPECT_EQ(ci->alive_count(), n - 1);
  // Re-adding the dead id with the next new one is fine.
  CentroidEdits ok;
  ok.added_ids = {3, n};
  ok.added = two;
  EXPECT_TRUE(ci->WithEdits(ok).ok());

  auto hnsw = MakeIndex(CentroidIndexKind::kHnsw, 200, CentroidPrecision::kF32, 8);
  const std::string hb = hnsw->Serialize();
  auto r = hnsw->WithEdits(rm);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("HNSW"), std::string::npos);
  EXPECT_EQ(hnsw->Serialize(), hb);
}

// A small batch copies a small share of the index (what it changes), the rest is shared: half
// centroids of dim 128 (256-byte rows, 64 to a 16 KiB chunk), 20,000 in 141 groups as the build
// makes them.
TEST(CentroidEditRulesTest, EditsShareUnchangedStorage) {
  const uint32_t n = 20000, dim = 128, groups = 141;
  std::mt19937_64 rng(14);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> x(size_t{n} * dim);
  for (float& v : x) v = g(rng);
  std::vector<uint32_t> label(n);
  for (uint32_t i = 0; i < n; ++i) label[i] = i * groups / n;
  std::vector<float> gc(size_t{groups} * dim, 0.0f);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t j = 0; j < dim; ++j) gc[size_t{label[i]} * dim + j] += x[size_t{i} * dim + j];
  }
  for (float& c : gc) c /= static_cast<float>(n) / groups;
  auto built = CentroidIndex::Build(CentroidIndexKind::kTree, x.data(), n, dim, label, gc);
  ASSERT_TRUE(built.ok());
  ASSERT_TRUE((*built)->SetPrecision(CentroidPrecision::kF16).ok());
  std::shared_ptr<const CentroidIndex> ci = std::move(built).value();
  const size_t total = ci->MemoryBytes();
  EXPECT_LT(total, size_t{n} * dim * 2 * 21 / 20);  // rows + 5 %
  // An edit copies at most two member chunks (16 KiB each; the first edit of a group as built
  // copies its 36 KiB), two id-map chunks (2 KiB), a block of 8 group centroids (4 KiB).
  const size_t per_edit = 40 << 10, tables = 4 << 10;
  std::vector<uint32_t> alive(n);
  for (uint32_t i = 0; i < n; ++i) alive[i] = i;
  std::vector<float> v(dim);
  size_t copied_all = 0;
  for (int batch = 0; batch < 40; ++batch) {
    CentroidEdits e;  // 3 splits and 2 merges: 11 edits
    for (int op = 0; op < 5; ++op) {
      const size_t at = rng() % alive.size();
      e.removed.push_back(alive[at]);
      alive[at] = alive.back();
      alive.pop_back();
      if (op >= 3) continue;
      ci->Decode(e.removed.back(), v.data());
      for (int side = 0; side < 2; ++side) {
        e.added_ids.push_back(ci->size() + static_cast<uint32_t>(e.added_ids.size()));
        for (uint32_t j = 0; j < dim; ++j) e.added.push_back(v[j] + 0.1f * g(rng));
      }
    }
    alive.insert(alive.end(), e.added_ids.begin(), e.added_ids.end());
    auto next = ci->WithEdits(e).value();
    const size_t copied = next->UnsharedBytes(*ci);
    EXPECT_LE(copied, tables + per_edit * 11) << "batch " << batch;
    copied_all += copied;
    ci = next;
  }
  std::printf("40 batches of 11 edits on %zu bytes: %zu bytes copied per batch\n", total,
              copied_all / 40);
  EXPECT_LT(copied_all / 40, total / 20);         // under 5 % a batch
  EXPECT_LT(ci->MemoryBytes(), total * 21 / 20);  // and no growth beyond the id map
  EXPECT_LT(ci->UnsharedBytes(*ci), tables);      // only the top-level tables are its own
}

// The edits decode half rows with their own branch-free conversion: it must give exactly
// HalfToFloat's values (the group means and splits of an index in half precision depend on it).
TEST(CentroidEditRulesTest, HalfRowDecodingIsExact) {
  std::vector<uint16_t> all(65536);
  for (uint32_t h = 0; h < 65536; ++h) all[h] = static_cast<uint16_t>(h);
  std::vector<float> got(all.size());
  centroid_store::HalfRowToFloat(all.data(), got.data(), all.size());
  for (uint32_t h = 0; h < 65536; ++h) {
    const float want = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got[h])) << h;
    } else {
      ASSERT_EQ(std::memcmp(&got[h], &want, 4), 0)
          << "half " << h << ": " << got[h] << " vs " << want;
    }
  }
}

// NeighboursOf: the nearest alive centroids to a centroid, itself left out.
TEST(CentroidEditRulesTest, NeighboursOfACentroid) {
  std::shared_ptr<const CentroidIndex> brute =
      MakeIndex(CentroidIndexKind::kBruteForce, 500, CentroidPrecision::kF16, 15);
  std::shared_ptr<const CentroidIndex> tree =
      MakeIndex(CentroidIndexKind::kTree, 500, CentroidPrecision::kF16, 15);
  Model m = ModelOf(*brute);
  std::mt19937_64 rng(16);
  for (int batch = 0; batch < 10; ++batch) {
    const CentroidEdits e = RandomBatch(&m, &rng, 20, 0.7, CentroidPrecision::kF16);
    brute = brute->WithEdits(e).value();
    tree = tree->WithEdits(e).value();
  }
  std::vector<CentroidHit> nb, nt;
  size_t same = 0, total = 0;
  std::vector<float> v(kDim);
  for (const auto& [id, vec] : m.alive) {
    if (id % 7 != 0) continue;
    ASSERT_TRUE(brute->NeighboursOf(id, 8, {}, &nb).ok());
    ASSERT_TRUE(tree->NeighboursOf(id, 8, {}, &nt).ok());
    std::vector<CentroidHit> want = Exact(m, *brute, vec.data(), 9);
    want.erase(std::remove_if(want.begin(), want.end(),
                              [id = id](const CentroidHit& h) { return h.id == id; }),
               want.end());
    want.resize(8);
    ASSERT_EQ(nb.size(), 8u);
    for (size_t j = 0; j < 8; ++j) EXPECT_EQ(nb[j].id, want[j].id);
    for (const auto& h : nt) {
      EXPECT_NE(h.id, id);
      for (const auto& w : want) same += h.id == w.id;
    }
    total += 8;
  }
  EXPECT_GE(static_cast<double>(same) / total, 0.9);
  EXPECT_EQ(brute->NeighboursOf(m.dead.empty() ? brute->size() : m.dead[0], 8, {}, &nb).code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace vectord::index
