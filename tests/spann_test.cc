// SPANN build + search against brute force (index/flat_search.h) on small clustered data and a
// slice of real SIFT: recall floors per layout, io_uring vs pread equality, filters, determinism,
// corruption detection, reopening; plus the pure pieces (k-means, navigation, replica rules,
// posting payloads).
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>

#include "index/balanced_kmeans.h"
#include "index/centroid_graph.h"
#include "index/flat_search.h"
#include "index/posting_codec.h"
#include "index/spann_assign.h"
#include "src/spann/spann_builder.h"
#include "src/spann/spann_index.h"
#include "src/vectors/vector_source.h"
#include "storage/crc32c.h"
#include "storage/dataset_io.h"
#include "storage/vector_file.h"

namespace vectord {
namespace {

namespace fs = std::filesystem;

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

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("spann_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

struct Fixture {
  TempDir dir;
  std::string vfile;
  std::unique_ptr<SpannIndex> index;
};

// Writes `data` to a vector file in a fresh directory and builds an index there.
std::unique_ptr<Fixture> BuildIndex(const void* data, size_t n, uint32_t dim, DataType dtype,
                                    SpannBuildParams bp, SpannOpenOptions oo = {}) {
  auto f = std::make_unique<Fixture>();
  f->vfile = f->dir.str() + "/vectors.vdv";
  {
    auto vf = storage::VectorFile::Open(f->vfile, dim, dtype);
    EXPECT_TRUE(vf.ok());
    EXPECT_TRUE((*vf)->Append(data, n).ok());
  }
  auto src = MakeMemorySource(data, n, dim, dtype);
  bp.threads = 2;
  uint64_t last_progress = 0;
  auto st = BuildSpannIndex(*src, f->dir.str() + "/idx", bp, [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last_progress);
    EXPECT_EQ(total, n);
    last_progress = done;
  });
  EXPECT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(last_progress, n);
  if (!st.ok()) return f;
  EXPECT_EQ(st->rows, n);
  EXPECT_GE(st->avg_replicas, 1.0);
  EXPECT_LE(st->avg_replicas, 8.0);
  EXPECT_GT(st->ram_formula_bytes, 0u);
  oo.vector_file = f->vfile;
  auto idx = SpannIndex::Open(f->dir.str() + "/idx", oo);
  EXPECT_TRUE(idx.ok()) << idx.status().ToString();
  if (idx.ok()) f->index = std::move(idx).value();
  return f;
}

double Recall(const SpannIndex& idx, const index::FlatView& view, const float* queries, size_t nq,
              const SpannSearchParams& sp, const index::RowFilter& rf = {}) {
  size_t hit = 0, total = 0;
  for (size_t i = 0; i < nq; ++i) {
    const float* q = queries + i * view.dim;
    auto truth = index::FlatSearch(view, q, 10, rf);
    auto got = idx.Search(q, 10, sp);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) continue;
    std::set<uint32_t> t;
    for (const auto& nb : truth) t.insert(nb.row);
    std::set<uint32_t> seen;
    for (const auto& nb : *got) {
      EXPECT_TRUE(seen.insert(nb.row).second) << "duplicate row " << nb.row;
      hit += t.count(nb.row);
    }
    const float sign = LowerIsBetter(view.distance) ? 1.0f : -1.0f;  // best first
    for (size_t j = 1; j < got->size(); ++j) {
      EXPECT_LE(sign * (*got)[j - 1].score, sign * (*got)[j].score + 1e-4f);
    }
    total += truth.size();
  }
  return total == 0 ? 1.0 : static_cast<double>(hit) / total;
}

constexpr uint32_t kDim = 32;
constexpr size_t kRows = 20000;

class SpannLayoutTest : public ::testing::TestWithParam<index::PostingLayout> {};

TEST_P(SpannLayoutTest, RecallAndStatsOnClusteredData) {
  const auto data = Clustered(kRows, kDim, 50, 7);
  const auto queries = Clustered(100, kDim, 50, 8);
  SpannBuildParams bp;
  bp.layout = GetParam();
  auto f = BuildIndex(data.data(), kRows, kDim, DataType::kFloat32, bp);
  ASSERT_TRUE(f->index);
  index::FlatView view{data.data(), kRows, kDim, DataType::kFloat32, Distance::kEuclid};
  SpannSearchParams sp;
  EXPECT_GE(Recall(*f->index, view, queries.data(), 100, sp), 0.9);
  // Scores are exact distances (re-ranked or scanned exactly).
  auto got = f->index->Search(queries.data(), 10, sp);
  ASSERT_TRUE(got.ok());
  for (const auto& nb : *got) {
    float d2 = 0;
    for (uint32_t j = 0; j < kDim; ++j) {
      const float t = queries[j] - data[size_t{nb.row} * kDim + j];
      d2 += t * t;
    }
    EXPECT_NEAR(nb.score, std::sqrt(d2), 1e-3f * (1 + std::sqrt(d2)));
  }
  SpannSearchStats st;
  sp.nprobe = 4;
  ASSERT_TRUE(f->index->Search(queries.data(), 10, sp, &st).ok());
  EXPECT_GE(st.lists_probed, 1u);
  EXPECT_LE(st.lists_probed, 4u);
  EXPECT_GT(st.pages_read, 0u);
  EXPECT_GT(st.candidates, 0u);
  if (GetParam() == index::PostingLayout::kFull) {
    EXPECT_EQ(st.rerank_pages, 0u);
  } else {
    EXPECT_GT(st.rerank_pages, 0u);
  }
  EXPECT_GT(f->index->ResidentBytes(), 0u);
  EXPECT_LT(f->index->ResidentBytes(), kRows * kDim * 4 / 4);  // far below the raw vectors
}

INSTANTIATE_TEST_SUITE_P(Layouts, SpannLayoutTest,
                         ::testing::Values(index::PostingLayout::kPq4, index::PostingLayout::kPq8,
                                           index::PostingLayout::kFull),
                         [](const auto& info) { return index::PostingLayoutName(info.param); });

TEST(SpannTest, SiftSliceRecall) {
  const std::string base_path = VECTORD_SHARED_DATA "/mate/sift/base.bvecs";
  if (!std::filesystem::exists(base_path)) GTEST_SKIP() << base_path << " not present";
  auto reader = storage::DatasetReader::Open(base_path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  const size_t n = 20000;
  const uint32_t dim = (*reader)->info().dim;
  std::vector<uint8_t> base(n * dim);
  ASSERT_TRUE((*reader)->ReadRaw(0, n, base.data()).ok());
  auto qreader = storage::DatasetReader::Open(VECTORD_SHARED_DATA "/mate/sift/query.bvecs");
  ASSERT_TRUE(qreader.ok());
  std::vector<float> queries(100 * dim);
  ASSERT_TRUE((*qreader)->ReadFloat(0, 100, queries.data()).ok());
  for (auto layout : {index::PostingLayout::kPq4, index::PostingLayout::kFull}) {
    SpannBuildParams bp;
    bp.layout = layout;
    auto f = BuildIndex(base.data(), n, dim, DataType::kUint8, bp);
    ASSERT_TRUE(f->index);
    index::FlatView view{base.data(), n, dim, DataType::kUint8, Distance::kEuclid};
    EXPECT_GE(Recall(*f->index, view, queries.data(), 100, SpannSearchParams()), 0.9)
        << index::PostingLayoutName(layout);
  }
}

TEST(SpannTest, InnerProductOnNormalizedData) {
  auto data = Clustered(kRows, kDim, 50, 11);
  auto queries = Clustered(50, kDim, 50, 12);
  for (auto* v : {&data, &queries}) {
    for (size_t i = 0; i < v->size() / kDim; ++i) {
      float nrm = 0;
      for (uint32_t j = 0; j < kDim; ++j) nrm += (*v)[i * kDim + j] * (*v)[i * kDim + j];
      for (uint32_t j = 0; j < kDim; ++j) (*v)[i * kDim + j] /= std::sqrt(nrm);
    }
  }
  SpannBuildParams bp;
  bp.metric = Distance::kCosine;
  auto f = BuildIndex(data.data(), kRows, kDim, DataType::kFloat32, bp);
  ASSERT_TRUE(f->index);
  index::FlatView view{data.data(), kRows, kDim, DataType::kFloat32, Distance::kCosine};
  EXPECT_GE(Recall(*f->index, view, queries.data(), 50, SpannSearchParams()), 0.85);
  auto got = f->index->Search(queries.data(), 3, SpannSearchParams());
  ASSERT_TRUE(got.ok());
  ASSERT_FALSE(got->empty());
  EXPECT_GE((*got)[0].score, (*got).back().score);  // larger inner product first
}

TEST(SpannTest, PreadFallbackGivesIdenticalResults) {
  const auto data = Clustered(kRows, kDim, 40, 21);
  const auto queries = Clustered(30, kDim, 40, 22);
  auto f = BuildIndex(data.data(), kRows, kDim, DataType::kFloat32, SpannBuildParams());
  ASSERT_TRUE(f->index);
  SpannOpenOptions oo;
  oo.vector_file = f->vfile;
  oo.force_pread = true;
  auto pread_idx = SpannIndex::Open(f->dir.str() + "/idx", oo);
  ASSERT_TRUE(pread_idx.ok());
  for (size_t i = 0; i < 30; ++i) {
    auto a = f->index->Search(&queries[i * kDim], 10, SpannSearchParams());
    auto b = (*pread_idx)->Search(&queries[i * kDim], 10, SpannSearchParams());
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), b->size());
    for (size_t j = 0; j < a->size(); ++j) {
      EXPECT_EQ((*a)[j].row, (*b)[j].row);
      EXPECT_EQ((*a)[j].score, (*b)[j].score);
    }
  }
}

TEST(SpannTest, FilterIsRespected) {
  const auto data = Clustered(kRows, kDim, 40, 31);
  const auto queries = Clustered(50, kDim, 40, 32);
  auto f = BuildIndex(data.data(), kRows, kDim, DataType::kFloat32, SpannBuildParams());
  ASSERT_TRUE(f->index);
  std::vector<uint64_t> live((kRows + 63) / 64, 0);
  for (size_t r = 0; r < kRows; r += 3) live[r / 64] |= uint64_t{1} << (r % 64);
  index::RowFilter rf;
  rf.live_bits = live.data();
  SpannSearchParams sp;
  sp.filter = &rf;
  sp.accept = [](InternalId row) { return row % 2 == 0; };  // and even: rows % 6 == 0
  std::vector<uint64_t> both((kRows + 63) / 64, 0);
  for (size_t r = 0; r < kRows; r += 6) both[r / 64] |= uint64_t{1} << (r % 64);
  index::RowFilter truth_filter;
  truth_filter.live_bits = both.data();
  for (size_t i = 0; i < 50; ++i) {
    auto got = f->index->Search(&queries[i * kDim], 10, sp);
    ASSERT_TRUE(got.ok());
    for (const auto& nb : *got) EXPECT_EQ(nb.row % 6, 0u);
  }
  sp.nprobe = 64;
  index::FlatView view{data.data(), kRows, kDim, DataType::kFloat32, Distance::kEuclid};
  EXPECT_GE(Recall(*f->index, view, queries.data(), 50, sp, truth_filter), 0.85);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(SpannTest, DeterministicBuildAndReopen) {
  const auto data = Clustered(kRows, kDim, 40, 41);
  const auto queries = Clustered(20, kDim, 40, 42);
  auto a = BuildIndex(data.data(), kRows, kDim, DataType::kFloat32, SpannBuildParams());
  // The same index from one thread and a 64 KiB sort buffer: the clustering sample's group sort
  // and the assignment's runs both spill to files and are merged back.
  SpannBuildParams small;
  small.threads = 1;
  small.sort_buffer_bytes = 64 << 10;
  auto b = BuildIndex(data.data(), kRows, kDim, DataType::kFloat32, small);
  ASSERT_TRUE(a->index && b->index);
  EXPECT_EQ(Slurp(a->dir.str() + "/idx/" + kSpannPostingFile),
            Slurp(b->dir.str() + "/idx/" + kSpannPostingFile));
  EXPECT_EQ(a->index->navigation().Serialize(), b->index->navigation().Serialize());
  for (const auto& e : fs::directory_iterator(b->dir.str() + "/idx")) {
    EXPECT_EQ(e.path().extension(), e.path().extension() == ".tmp" ? "" : e.path().extension())
        << "spill file left behind: " << e.path();
  }
  // Reopen (with a hot-list cache this time): same answers.
  SpannOpenOptions oo;
  oo.vector_file = a->vfile;
  oo.cache_bytes = 64 << 10;
  auto re = SpannIndex::Open(a->dir.str() + "/idx", oo);
  ASSERT_TRUE(re.ok()) << re.status().ToString();
  EXPECT_GT((*re)->CacheBytes(), 0u);
  EXPECT_LE((*re)->CacheBytes(), size_t{64} << 10);
  uint32_t cached = 0;
  for (size_t i = 0; i < 20; ++i) {
    SpannSearchStats st;
    auto x = a->index->Search(&queries[i * kDim], 10, SpannSearchParams());
    auto y = (*re)->Search(&queries[i * kDim], 10, SpannSearchParams(), &st);
    ASSERT_TRUE(x.ok() && y.ok());
    cached += st.lists_cached;
    ASSERT_EQ(x->size(), y->size());
    for (size_t j = 0; j < x->size(); ++j) EXPECT_EQ((*x)[j].row, (*y)[j].row);
  }
  EXPECT_GT(cached, 0u);
}

// spann.vdc version 1 (float32 centroids only, before half centroids) is still read; a version
// from the future is refused by name.
TEST(SpannTest, CentroidFileVersionOneStillOpens) {
  const auto data = Clustered(kRows, kDim, 40, 61);
  SpannBuildParams bp;
  bp.centroid_precision = index::CentroidPrecision::kF32;  // what a version 1 file holds
  auto f = BuildIndex(data.data(), kRows, kDim, DataType::kFloat32, bp);
  ASSERT_TRUE(f->index);
  const std::string path = f->dir.str() + "/idx/" + kSpannCentroidFile;
  const std::string original = Slurp(path);
  auto with_version = [&](uint32_t v) {
    std::string b = original;
    std::memcpy(&b[8], &v, 4);  // after the 8-byte magic
    const uint32_t crc = storage::Crc32c(0, b.data(), b.size() - 4);
    std::memcpy(&b[b.size() - 4], &crc, 4);
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(b.data(), b.size());
  };
  SpannOpenOptions oo;
  oo.vector_file = f->vfile;
  with_version(1);
  auto v1 = SpannIndex::Open(f->dir.str() + "/idx", oo);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  const auto queries = Clustered(5, kDim, 40, 62);
  for (size_t i = 0; i < 5; ++i) {
    auto x = f->index->Search(&queries[i * kDim], 10, SpannSearchParams());
    auto y = (*v1)->Search(&queries[i * kDim], 10, SpannSearchParams());
    ASSERT_TRUE(x.ok() && y.ok());
    ASSERT_EQ(x->size(), y->size());
    for (size_t j = 0; j < x->size(); ++j) EXPECT_EQ((*x)[j].row, (*y)[j].row);
  }
  with_version(3);
  auto v3 = SpannIndex::Open(f->dir.str() + "/idx", oo);
  EXPECT_EQ(v3.status().code(), Status::Code::kCorruption);
  EXPECT_NE(v3.status().message().find("unsupported version 3"), std::string::npos)
      << v3.status().ToString();
}

TEST(SpannTest, FlippedPostingByteIsCorruption) {
  const auto data = Clustered(kRows, kDim, 40, 51);
  auto f = BuildIndex(data.data(), kRows, kDim, DataType::kFloat32, SpannBuildParams());
  ASSERT_TRUE(f->index);
  const std::string idx_dir = f->dir.str() + "/idx";
  f->index.reset();
  {
    // Page 1 is the first list page (page 0 is the header).
    std::fstream io(idx_dir + "/" + kSpannPostingFile,
                    std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(4096 + 100);
    char c;
    io.read(&c, 1);
    c ^= 0x20;
    io.seekp(4096 + 100);
    io.write(&c, 1);
  }
  SpannOpenOptions oo;
  oo.vector_file = f->vfile;
  auto idx = SpannIndex::Open(idx_dir, oo);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  SpannSearchParams sp;
  sp.nprobe = (*idx)->num_lists();
  sp.eps = 0;  // probe every list: the damaged one is read
  auto got = (*idx)->Search(data.data(), 10, sp);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kCorruption) << got.status().ToString();
}

TEST(SpannTest, FlippedVectorRecordIsCorruption) {
  const auto data = Clustered(kRows, kDim, 40, 61);
  auto f = BuildIndex(data.data(), kRows, kDim, DataType::kFloat32, SpannBuildParams());
  ASSERT_TRUE(f->index);
  // Damage row 0's record; query row 0 itself, so it is re-ranked.
  {
    std::fstream io(f->vfile, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(io.is_open()) << f->vfile;
    char before = 0, after = 0;
    io.seekg(4096 + 3);
    ASSERT_TRUE(io.read(&before, 1));
    const char flipped = static_cast<char>(before ^ 0x55);  // differs from before in 4 bits
    io.seekp(4096 + 3);
    ASSERT_TRUE(io.write(&flipped, 1));
    io.flush();
    io.seekg(4096 + 3);
    ASSERT_TRUE(io.read(&after, 1));
    ASSERT_NE(after, before) << "the record byte did not change";
  }
  auto got = f->index->Search(data.data(), 10, SpannSearchParams());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kCorruption);
}

// --- the pure pieces ---

TEST(SpannPartsTest, HierarchicalKMeansHonoursTheLimit) {
  const auto x = Clustered(10000, 16, 5, 71);  // few natural clusters: the limit must split them
  index::KMeansParams kp;
  kp.num_centroids = 50;
  kp.max_cluster_points = 400;
  auto km = index::HierarchicalKMeans(x.data(), 10000, 16, kp);
  ASSERT_TRUE(km.ok());
  EXPECT_GE(km->k(), 25u);
  EXPECT_LE(km->k(), 200u);
  std::vector<uint32_t> label(10000);
  ASSERT_TRUE(index::AssignNearest(x.data(), 10000, km->centroids.data(), km->k(), 16, label.data(),
                                   nullptr)
                  .ok());
  std::vector<uint32_t> size(km->k());
  for (auto l : label) size[l]++;
  EXPECT_LE(*std::max_element(size.begin(), size.end()), 800u);  // nearest-centroid drift: 2x
  for (size_t i = 1; i < km->group.size(); ++i) EXPECT_LE(km->group[i - 1], km->group[i]);
}

// k centroids of n clustered 16-dimensional points (`clusters` clusters, `seed`).
Result<index::KMeansResult> CentroidsOf(size_t n, uint32_t k, uint32_t clusters, uint64_t seed) {
  const auto c = Clustered(n, 16, clusters, seed);
  index::KMeansParams kp;
  kp.num_centroids = k;
  return index::HierarchicalKMeans(c.data(), n, 16, kp);
}

TEST(SpannPartsTest, NavigationKindsFindTheNearestCentroids) {
  // Faiss builds its HNSW graph with OpenMP: with several threads the graph depends on their
  // schedule (and a loaded CI machine once built one below the floor). One thread: deterministic.
  const int omp_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto q = Clustered(50, 16, 300, 82);
  auto km = CentroidsOf(3000, 3000, 300, 81);
  ASSERT_TRUE(km.ok());
  std::vector<std::unique_ptr<index::CentroidIndex>> kinds;
  for (auto kind : {index::CentroidIndexKind::kBruteForce, index::CentroidIndexKind::kTree,
                    index::CentroidIndexKind::kHnsw}) {
    auto ci = index::CentroidIndex::Build(kind, km->centroids.data(), km->k(), 16, km->group,
                                          km->group_centroids);
    ASSERT_TRUE(ci.ok());
    auto rt = index::CentroidIndex::Deserialize((*ci)->Serialize());  // format round trip
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    kinds.push_back(std::move(rt).value());
  }
  // Per approximate kind: share of the true 10 nearest found, and of the true nearest ranked first.
  const double floors[] = {0, 0.85, 0.85};
  std::vector<index::CentroidHit> truth, hits;
  for (size_t k = 1; k < kinds.size(); ++k) {
    size_t found = 0, first = 0;
    for (size_t i = 0; i < 50; ++i) {
      kinds[0]->Search(&q[i * 16], 10, {}, &truth);
      ASSERT_EQ(truth.size(), 10u);
      kinds[k]->Search(&q[i * 16], 10, {}, &hits);
      ASSERT_FALSE(hits.empty());
      first += hits[0].id == truth[0].id;
      for (const auto& h : hits) {
        for (const auto& t : truth) found += h.id == t.id;
      }
    }
    EXPECT_GE(found / 500.0, floors[k]) << "navigation kind " << k;
    EXPECT_GE(first, 45u) << "navigation kind " << k;  // of 50 queries
  }
  EXPECT_FALSE(index::CentroidIndex::Deserialize("garbage").ok());
  omp_set_num_threads(omp_threads);
}

// Half centroids: distances within half precision of the float32 ones, the same nearest lists,
// half the bytes, a format round trip that keeps them half, and refusals (back to float32, HNSW).
TEST(SpannPartsTest, HalfPrecisionCentroids) {
  const auto q = Clustered(50, 16, 200, 92);
  auto km = CentroidsOf(2000, 500, 200, 91);
  ASSERT_TRUE(km.ok());
  for (auto kind : {index::CentroidIndexKind::kBruteForce, index::CentroidIndexKind::kTree}) {
    auto f32 = index::CentroidIndex::Build(kind, km->centroids.data(), km->k(), 16, km->group,
                                           km->group_centroids);
    auto f16 = index::CentroidIndex::Build(kind, km->centroids.data(), km->k(), 16, km->group,
                                           km->group_centroids);
    ASSERT_TRUE(f32.ok() && f16.ok());
    ASSERT_TRUE((*f16)->SetPrecision(index::CentroidPrecision::kF16).ok());
    EXPECT_EQ((*f16)->precision(), index::CentroidPrecision::kF16);
    EXPECT_FALSE((*f16)->SetPrecision(index::CentroidPrecision::kF32).ok());
    EXPECT_LT((*f16)->MemoryBytes(), (*f32)->MemoryBytes() * 6 / 10);
    auto rt = index::CentroidIndex::Deserialize((*f16)->Serialize());
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    EXPECT_EQ((*rt)->precision(), index::CentroidPrecision::kF16);
    EXPECT_EQ((*rt)->Serialize(), (*f16)->Serialize());
    std::vector<float> dec(16);
    size_t same_first = 0;
    std::vector<index::CentroidHit> a, b;
    for (size_t i = 0; i < 50; ++i) {
      const float* qi = &q[i * 16];
      for (uint32_t l = 0; l < km->k(); l += 37) {
        const float want = (*f32)->L2(qi, l);
        EXPECT_NEAR((*rt)->L2(qi, l), want, 2e-3f * (1 + want));
        EXPECT_NEAR((*rt)->Ip(qi, l), (*f32)->Ip(qi, l), 2e-3f * (1 + std::fabs(want)));
        (*rt)->Decode(l, dec.data());
        for (uint32_t j = 0; j < 16; ++j) {
          const float x = km->centroids[size_t{l} * 16 + j];
          EXPECT_NEAR(dec[j], x, 1e-3f * (1 + std::fabs(x)));
        }
      }
      (*f32)->Search(qi, 8, {}, &a);
      (*rt)->Search(qi, 8, {}, &b);
      ASSERT_EQ(a.size(), b.size());
      same_first += a[0].id == b[0].id;
    }
    EXPECT_GE(same_first, 48u);  // of 50: only near ties may swap
  }
  auto hnsw = index::CentroidIndex::Build(index::CentroidIndexKind::kHnsw, km->centroids.data(),
                                          km->k(), 16, km->group, km->group_centroids);
  ASSERT_TRUE(hnsw.ok());
  EXPECT_EQ((*hnsw)->SetPrecision(index::CentroidPrecision::kF16).code(),
            Status::Code::kInvalidArgument);
}

// A whole index with half centroids (the default) against one with float32 centroids: both
// reach the recall floor, the half one with about half the resident bytes.
TEST(SpannTest, HalfCentroidsKeepRecall) {
  const auto data = Clustered(kRows, kDim, 50, 17);
  const auto queries = Clustered(100, kDim, 50, 18);
  index::FlatView view{data.data(), kRows, kDim, DataType::kFloat32, Distance::kEuclid};
  SpannBuildParams bp;
  bp.layout = index::PostingLayout::kFull;
  bp.target_list_entries = 24;  // many lists, so the centroids dominate the resident bytes
  auto half = BuildIndex(data.data(), kRows, kDim, DataType::kFloat32, bp);
  bp.centroid_precision = index::CentroidPrecision::kF32;
  auto full = BuildIndex(data.data(), kRows, kDim, DataType::kFloat32, bp);
  ASSERT_TRUE(half->index && full->index);
  SpannSearchParams sp;
  const double rh = Recall(*half->index, view, queries.data(), 100, sp);
  const double rf = Recall(*full->index, view, queries.data(), 100, sp);
  EXPECT_GE(rh, 0.9);
  EXPECT_GE(rh, rf - 0.02);
  EXPECT_LT(half->index->ResidentBytes(), full->index->ResidentBytes() * 7 / 10);
}

TEST(SpannPartsTest, ReplicaRules) {
  // Centroids on a line: c0 at 0, c1 at 1, c2 at 2 (dim 1... padded to 4 dims).
  std::vector<float> cents = {0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, -1, 0, 0, 0};
  auto ci = index::CentroidIndex::Build(index::CentroidIndexKind::kBruteForce, cents.data(), 4, 4,
                                        {}, {});
  ASSERT_TRUE(ci.ok());
  // x at 0.5: c0 and c1 at 0.25 (squared), c3 at 2.25, c2 at 2.25.
  const float x[4] = {0.5f, 0, 0, 0};
  std::vector<index::CentroidHit> hits;
  (*ci)->Search(x, 4, {}, &hits);
  uint32_t out[8];
  index::AssignParams ap;
  ap.closure_eps = 0.1f;
  ASSERT_EQ(index::SelectReplicas(hits.data(), 4, **ci, ap, out), 2u);  // c0, c1 only: closure
  ap.closure_eps = 3.0f;  // now all pass closure, but c2 is behind c1 and c3 behind c0 (RNG)
  EXPECT_EQ(index::SelectReplicas(hits.data(), 4, **ci, ap, out), 2u);
  ap.rng_factor = 0;  // RNG off: all four
  EXPECT_EQ(index::SelectReplicas(hits.data(), 4, **ci, ap, out), 4u);
  ap.max_replicas = 3;
  EXPECT_EQ(index::SelectReplicas(hits.data(), 4, **ci, ap, out), 3u);
}

TEST(SpannPartsTest, PostingPayloadRoundTrip) {
  std::mt19937 rng(5);
  for (auto layout :
       {index::PostingLayout::kFull, index::PostingLayout::kPq4, index::PostingLayout::kPq8}) {
    const uint32_t m = 8;
    const uint32_t eb =
        layout == index::PostingLayout::kPq4 ? 4 : (layout == index::PostingLayout::kPq8 ? 8 : 16);
    index::PostingCodec codec(layout, eb, m);
    for (uint32_t count : {0u, 1u, 31u, 32u, 33u, 100u}) {
      std::vector<uint32_t> ids(count);
      std::vector<uint8_t> codes(size_t{count} * eb);
      for (auto& i : ids) i = rng();
      for (auto& c : codes) c = rng();
      std::vector<uint8_t> payload;
      codec.Encode(ids.data(), codes.data(), count, &payload);
      EXPECT_EQ(payload.size(), codec.EncodedBytes(count));
      index::PostingView v;
      ASSERT_TRUE(codec.View(payload.data(), payload.size(), 0, &v).ok());
      ASSERT_EQ(v.count, count);
      for (uint32_t i = 0; i < count; ++i) EXPECT_EQ(v.id(i), ids[i]);
      if (layout == index::PostingLayout::kPq4) {
        std::vector<uint8_t> code(eb);
        for (uint32_t i = 0; i < count; ++i) {
          index::UnpackFastScanCode(v.data, i, m, code.data());
          EXPECT_EQ(0, std::memcmp(code.data(), &codes[size_t{i} * eb], eb));
        }
      } else if (count > 0) {
        EXPECT_EQ(0, std::memcmp(v.data, codes.data(), codes.size()));
      }
      EXPECT_FALSE(codec.View(payload.data(), payload.size() + 1, 0, &v).ok());
    }
  }
}

}  // namespace
}  // namespace vectord
