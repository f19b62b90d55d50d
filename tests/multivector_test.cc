// Multi-vector collections (src/collection_multi.cc): token sets stored durably and returned by
// with_vector, exact Chamfer search against a brute-force model, MUVERA candidate search with a
// recall floor (exact FDE scan and SPANN over the FDEs), filters, deletes, restart, a torn token
// tail, a corrupted token record, and bad input that changes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include "src/search/query_planner.h"
#include "tests/test_db.h"
#include "vectord/database.h"

namespace vectord {
namespace {

constexpr uint32_t kDim = 16;

struct Doc {
  std::vector<float> tokens;  // n x kDim, unit rows
  uint32_t n = 0;
};

void Normalize(float* v) {
  double s = 0;
  for (uint32_t d = 0; d < kDim; ++d) s += double{v[d]} * v[d];
  const float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (uint32_t d = 0; d < kDim; ++d) v[d] *= inv;
}

// Documents are mixtures of a few "topics"; queries are noisy subsets of one document.
class Corpus {
 public:
  explicit Corpus(uint32_t seed) : rng_(seed) {
    std::normal_distribution<float> g(0, 1);
    topics_.resize(40 * kDim);
    for (auto& x : topics_) x = g(rng_);
  }
  Doc MakeDoc() {
    std::uniform_int_distribution<uint32_t> nt(4, 20), topic(0, 39);
    std::normal_distribution<float> g(0, 0.35f);
    Doc d;
    d.n = nt(rng_);
    const uint32_t t[3] = {topic(rng_), topic(rng_), topic(rng_)};
    d.tokens.resize(d.n * kDim);
    for (uint32_t j = 0; j < d.n; ++j) {
      const uint32_t tj = t[j % 3];
      for (uint32_t k = 0; k < kDim; ++k) d.tokens[j * kDim + k] = topics_[tj * kDim + k] + g(rng_);
      Normalize(&d.tokens[j * kDim]);
    }
    return d;
  }
  Doc MakeQuery(const Doc& src) {
    std::normal_distribution<float> g(0, 0.2f);
    Doc q;
    q.n = std::max<uint32_t>(1, src.n / 2);
    q.tokens.resize(q.n * kDim);
    for (uint32_t j = 0; j < q.n; ++j) {
      for (uint32_t k = 0; k < kDim; ++k)
        q.tokens[j * kDim + k] = src.tokens[j * kDim + k] + g(rng_);
      Normalize(&q.tokens[j * kDim]);
    }
    return q;
  }
  std::mt19937& rng() { return rng_; }

 private:
  std::mt19937 rng_;
  std::vector<float> topics_;
};

float ChamferModel(const Doc& q, const Doc& d) {
  float sum = 0;
  for (uint32_t i = 0; i < q.n; ++i) {
    float best = -1e30f;
    for (uint32_t j = 0; j < d.n; ++j) {
      float ip = 0;
      for (uint32_t k = 0; k < kDim; ++k) ip += q.tokens[i * kDim + k] * d.tokens[j * kDim + k];
      best = std::max(best, ip);
    }
    sum += best;
  }
  return sum;
}

CollectionConfig MultiConfig(std::optional<uint64_t> spann_threshold = std::nullopt,
                             bool on_disk = false) {
  CollectionConfig cfg;
  cfg.on_disk = on_disk;  // token sets read from SSD per query instead of kept in RAM
  cfg.dim = kDim;
  cfg.distance = Distance::kCosine;
  cfg.datatype = DataType::kFloat32;
  cfg.fsync = false;
  MultivectorConfig mv;
  mv.muvera.k_sim = 4;
  mv.muvera.d_proj = 8;
  mv.muvera.r_reps = 10;
  mv.muvera.candidates = 60;
  cfg.multivector = mv;
  if (spann_threshold) {
    SpannConfig sc;
    sc.indexing_threshold = *spann_threshold;
    sc.nprobe = 32;
    cfg.spann = sc;
  }
  return cfg;
}

PointStruct ToPoint(uint64_t id, const Doc& d, Json payload = Json()) {
  PointStruct p;
  p.id = PointId::Num(id);
  p.vector = d.tokens;
  p.vector_count = d.n;
  p.payload = std::move(payload);
  return p;
}

Doc ToDocQuery(const SearchRequest& r) {
  Doc d;
  d.tokens = r.vector;
  d.n = r.vector_count;
  return d;
}

SearchRequest ToRequest(const Doc& q, size_t limit) {
  SearchRequest r;
  r.vector = q.tokens;
  r.vector_count = q.n;
  r.limit = limit;
  return r;
}

class MultivectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TestDataDir("vectord_multivector_test");
    Reopen();
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    db_.reset();
    auto db = testing::OpenTestDatabase(dir_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
  }
  std::shared_ptr<Collection> Coll(const std::string& name = "mv") {
    auto c = db_->GetCollection(name);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : nullptr;
  }
  // Inserts `n` documents with ids first_id.. and payload {"g": id % 4} in batches; returns them
  // in id order.
  std::vector<Doc> Fill(Collection& c, Corpus& corpus, size_t n, size_t first_id = 0) {
    std::vector<Doc> docs;
    for (size_t i = 0; i < n; i += 50) {
      std::vector<PointStruct> batch;
      for (size_t j = i; j < std::min(n, i + 50); ++j) {
        docs.push_back(corpus.MakeDoc());
        batch.push_back(ToPoint(first_id + j, docs.back(), Json{{"g", int((first_id + j) % 4)}}));
      }
      auto r = c.Upsert(std::move(batch), true);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
    }
    return docs;
  }
  // Exact top-k ids by the model over docs with ids in `allowed` (all when empty).
  static std::vector<uint64_t> ModelTopK(const Doc& q, const std::vector<Doc>& docs, size_t k,
                                         const std::set<uint64_t>& skip = {}, int only_group = -1) {
    std::vector<std::pair<float, uint64_t>> s;
    for (uint64_t i = 0; i < docs.size(); ++i) {
      if (skip.count(i) || (only_group >= 0 && int(i % 4) != only_group)) continue;
      s.emplace_back(-ChamferModel(q, docs[i]), i);
    }
    std::sort(s.begin(), s.end());
    std::vector<uint64_t> out;
    for (size_t i = 0; i < std::min(k, s.size()); ++i) out.push_back(s[i].second);
    return out;
  }
  // Mean recall@10 of `queries` on `col` against the model (deleted ids skipped, only payload
  // group `group` when >= 0) with `cand` MUVERA candidates; checks on the way that no deleted id
  // and no other group comes back and that every score is the exact Chamfer. The result lists go
  // to *out when given.
  static double CheckedRecall(Collection& col, const std::vector<Doc>& queries,
                              const std::vector<Doc>& docs, const std::set<uint64_t>& deleted,
                              int group, uint32_t cand,
                              std::vector<std::vector<ScoredPoint>>* out = nullptr) {
    double recall = 0;
    for (const Doc& q : queries) {
      SearchRequest req = ToRequest(q, 10);
      req.muvera_candidates = cand;
      if (group >= 0) {
        auto f = ParseFilter(Json{{"must", {{{"key", "g"}, {"match", {{"value", group}}}}}}}, "");
        EXPECT_TRUE(f.ok());
        req.filter = *f;
      }
      req.with_payload = true;
      auto res = col.Search(req);
      EXPECT_TRUE(res.ok()) << res.status().ToString();
      if (!res.ok()) return 0.0;
      for (const auto& p : *res) {
        EXPECT_EQ(deleted.count(p.id.num()), 0u);
        if (group >= 0) {
          EXPECT_EQ(p.payload->at("g"), group);
        }
        // Scores are exact Chamfer whatever the candidate source.
        EXPECT_NEAR(p.score, ChamferModel(q, docs[p.id.num()]), 1e-4);
      }
      recall += Recall(*res, ModelTopK(q, docs, 10, deleted, group));
      if (out) out->push_back(*res);
    }
    return recall / double(queries.size());
  }
  // Upserts one more document (id = docs->size()) and checks that a query made from it finds the
  // model's exact top-1 when every document is a candidate.
  static void ExpectNewDocFound(Collection& col, Corpus& corpus, std::vector<Doc>* docs,
                                const std::set<uint64_t>& deleted, Json payload) {
    const Doc extra = corpus.MakeDoc();
    const uint64_t id = docs->size();
    docs->push_back(extra);
    ASSERT_TRUE(col.Upsert({ToPoint(id, extra, std::move(payload))}, true).ok());
    const Doc eq = corpus.MakeQuery(extra);
    SearchRequest req = ToRequest(eq, 1);
    req.muvera_candidates = static_cast<uint32_t>(docs->size() + 1000);
    auto res = col.Search(req);
    ASSERT_TRUE(res.ok());
    ASSERT_EQ(res->size(), 1u);
    EXPECT_EQ((*res)[0].id.num(), ModelTopK(eq, *docs, 1, deleted)[0]);
  }
  // The same ids with the same scores, list by list.
  static void ExpectSameResults(const std::vector<std::vector<ScoredPoint>>& a,
                                const std::vector<std::vector<ScoredPoint>>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].size(), b[i].size());
      for (size_t j = 0; j < a[i].size(); ++j) {
        EXPECT_EQ(a[i][j].id, b[i][j].id);
        EXPECT_EQ(a[i][j].score, b[i][j].score);
      }
    }
  }
  static double Recall(const std::vector<ScoredPoint>& got, const std::vector<uint64_t>& want) {
    std::set<uint64_t> w(want.begin(), want.end());
    size_t hit = 0;
    for (const auto& p : got) hit += w.count(p.id.num());
    return want.empty() ? 1.0 : double(hit) / double(want.size());
  }

  std::string dir_;
  std::unique_ptr<Database> db_;
};

TEST_F(MultivectorTest, ExactChamferMatchesModelAndTokensRoundTrip) {
  ASSERT_TRUE(db_->CreateCollection("mv", MultiConfig()).ok());
  Corpus corpus(1);
  auto c = Coll();
  std::vector<Doc> docs = Fill(*c, corpus, 300);
  EXPECT_EQ(c->Info().points_count, 300u);

  // with_vector returns the stored (unit-normalised) set, vector by vector.
  auto rec = c->Retrieve({PointId::Num(7)}, true, true);
  ASSERT_TRUE(rec.ok());
  ASSERT_EQ(rec->size(), 1u);
  ASSERT_TRUE((*rec)[0].vector.has_value());
  EXPECT_EQ((*rec)[0].vector_count, docs[7].n);
  ASSERT_EQ((*rec)[0].vector->size(), docs[7].tokens.size());
  for (size_t i = 0; i < docs[7].tokens.size(); ++i) {
    EXPECT_NEAR((*rec)[0].vector->at(i), docs[7].tokens[i], 1e-6);
  }
  EXPECT_EQ((*rec)[0].payload->at("g"), 7 % 4);

  for (int t = 0; t < 20; ++t) {
    const Doc q = corpus.MakeQuery(docs[t * 13 % docs.size()]);
    SearchRequest req = ToRequest(q, 10);
    req.exact = true;
    auto res = c->Search(req);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    auto want = ModelTopK(q, docs, 10);
    ASSERT_EQ(res->size(), 10u);
    for (size_t i = 0; i < 10; ++i) {
      EXPECT_NEAR((*res)[i].score, ChamferModel(q, docs[(*res)[i].id.num()]), 1e-4);
      // Same order as the model up to score ties.
      EXPECT_NEAR((*res)[i].score, ChamferModel(q, docs[want[i]]), 1e-4);
    }
  }
}

TEST_F(MultivectorTest, MuveraRecallFloorFiltersDeletesAndRestart) {
  ASSERT_TRUE(db_->CreateCollection("mv", MultiConfig()).ok());
  Corpus corpus(2);
  auto c = Coll();
  std::vector<Doc> docs = Fill(*c, corpus, 600);
  std::vector<Doc> queries;
  for (int t = 0; t < 40; ++t) queries.push_back(corpus.MakeQuery(docs[(t * 37) % docs.size()]));

  auto run = [&](Collection& col, const std::set<uint64_t>& deleted, int group, uint32_t cand) {
    return CheckedRecall(col, queries, docs, deleted, group, cand);
  };
  const double r_small = run(*c, {}, -1, 30);
  const double r_large = run(*c, {}, -1, 150);
  std::cout << "MUVERA recall@10 (600 docs): 30 candidates " << r_small << ", 150 candidates "
            << r_large << "\n";
  EXPECT_GE(r_large, 0.9);
  EXPECT_GE(r_large + 1e-9, r_small);
  // All 600 candidates: exactly the Chamfer top-10.
  EXPECT_GE(run(*c, {}, -1, 600), 0.999);
  EXPECT_GE(run(*c, {}, 2, 150), 0.9);

  std::set<uint64_t> deleted;
  PointSelector sel;
  for (uint64_t i = 0; i < 600; i += 3) {
    sel.ids.push_back(PointId::Num(i));
    deleted.insert(i);
  }
  ASSERT_TRUE(c->Delete(sel, true).ok());
  const double before = run(*c, deleted, -1, 150);
  EXPECT_GE(before, 0.9);

  c.reset();
  Reopen();
  auto c2 = Coll();
  EXPECT_EQ(c2->Info().points_count, 400u);
  EXPECT_DOUBLE_EQ(run(*c2, deleted, -1, 150), before);  // same centre, same encodings
  // Writes after the restart use the same encoder.
  ExpectNewDocFound(*c2, corpus, &docs, deleted, Json());
}

// From FdePq::kMinRows documents on, the candidates come from the 4-bit PQ of the FDEs (optionally
// re-scored with the float16 FDEs): recall floors against the model and near the exact FDE scan,
// filters and deletes respected, scores exact, a restart rebuilds the same codes (identical
// results), later upserts are encoded with the same quantizer.
TEST_F(MultivectorTest, PqCandidateStage) {
  // Config checks for the new fields.
  EXPECT_FALSE(ParseMuveraConfig(Json{{"fde_index", "ivf"}}, kDim).ok());
  EXPECT_FALSE(ParseMuveraConfig(Json{{"fde_pq_rescore", 0}}, kDim).ok());
  {
    auto bad =
        ParseMuveraConfig(Json{{"k_sim", 4}, {"d_proj", 8}, {"r_reps", 10}, {"fde_pq_m", 7}}, kDim);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().ToString().find("fde_pq_m 7"), std::string::npos);
  }
  // 80 subspaces of 16 floats (auto: 160 of 8): Faiss k-means per subspace is slow under ASan.
  CollectionConfig cfg = MultiConfig();
  cfg.multivector->muvera.fde_pq_m = 80;
  ASSERT_TRUE(db_->CreateCollection("mv", cfg).ok());
  CollectionConfig rcfg = cfg;
  rcfg.multivector->muvera.fde_pq_rescore = 3;  // PQ pool of 3x the candidates, re-scored
  ASSERT_TRUE(db_->CreateCollection("r3", rcfg).ok());
  CollectionConfig ecfg = MultiConfig();
  ecfg.multivector->muvera.fde_index = "exact";
  ASSERT_TRUE(db_->CreateCollection("ex", ecfg).ok());
  Corpus corpus(5);
  auto c = Coll();
  std::vector<Doc> docs = Fill(*c, corpus, 950);
  std::vector<Doc> queries;
  for (int t = 0; t < 30; ++t) queries.push_back(corpus.MakeQuery(docs[(t * 61) % docs.size()]));
  auto mode = [&](Collection& col) {
    QueryExplain ex;
    auto r = SearchExplained(col, ToRequest(queries[0], 10), &ex);
    EXPECT_TRUE(r.ok());
    return ex.multivector;
  };
  EXPECT_EQ(mode(*c), "fde");                  // below the training threshold: exact FDE scan
  for (uint64_t i = 950; i < 2300; i += 30) {  // crosses 1,000 within a batch
    std::vector<PointStruct> batch;
    for (uint64_t j = i; j < std::min<uint64_t>(2300, i + 30); ++j) {
      docs.push_back(corpus.MakeDoc());
      batch.push_back(ToPoint(j, docs.back(), Json{{"g", int(j % 4)}}));
    }
    ASSERT_TRUE(c->Upsert(std::move(batch), false).ok());
  }
  // The PQ is trained in the background: the exact FDE scan serves until it is installed.
  vectord::testing::WaitForFdePq(*c);
  EXPECT_EQ(mode(*c), "fde_pq4");

  auto run = [&](Collection& col, const std::set<uint64_t>& deleted, int group, uint32_t cand,
                 std::vector<std::vector<ScoredPoint>>* out) {
    return CheckedRecall(col, queries, docs, deleted, group, cand, out);
  };
  // The exact FDE scan, and the PQ with exact re-scoring, on the same documents.
  auto e = Coll("ex");
  auto r3 = Coll("r3");
  for (size_t i = 0; i < docs.size(); i += 100) {
    std::vector<PointStruct> batch;
    for (size_t j = i; j < std::min(docs.size(), i + 100); ++j) {
      batch.push_back(ToPoint(j, docs[j], Json{{"g", int(j % 4)}}));
    }
    ASSERT_TRUE(e->Upsert(batch, false).ok());
    ASSERT_TRUE(r3->Upsert(std::move(batch), false).ok());
  }
  vectord::testing::WaitForFdePq(*e);
  vectord::testing::WaitForFdePq(*r3);
  EXPECT_EQ(mode(*e), "fde");
  EXPECT_EQ(mode(*r3), "fde_pq4");
  const double r_pq = run(*c, {}, -1, 150, nullptr);
  const double r_exact = run(*e, {}, -1, 150, nullptr);
  const double r_rescored = run(*r3, {}, -1, 150, nullptr);
  std::cout << "MUVERA recall@10 (2,300 docs, 150 candidates): PQ stage " << r_pq
            << ", PQ + 3x re-scored " << r_rescored << ", exact FDE scan " << r_exact << "\n";
  EXPECT_GE(r_pq, 0.85);
  EXPECT_GE(r_pq, r_exact - 0.05);
  EXPECT_GE(r_rescored, r_exact - 0.03);
  EXPECT_GE(run(*r3, {}, 2, 150, nullptr), 0.85);
  EXPECT_GE(run(*r3, {}, -1, 2300, nullptr), 0.999);
  EXPECT_GE(run(*c, {}, -1, 2300, nullptr), 0.999);  // every document: the exact top-10
  EXPECT_GE(run(*c, {}, 1, 150, nullptr), 0.85);

  std::set<uint64_t> deleted;
  PointSelector sel;
  for (uint64_t i = 0; i < 2300; i += 5) {
    sel.ids.push_back(PointId::Num(i));
    deleted.insert(i);
  }
  ASSERT_TRUE(c->Delete(sel, true).ok());
  std::vector<std::vector<ScoredPoint>> before, before_f, after, after_f;
  EXPECT_GE(run(*c, deleted, -1, 150, &before), 0.85);
  EXPECT_GE(run(*c, deleted, 3, 150, &before_f), 0.85);

  c.reset();
  e.reset();
  r3.reset();
  Reopen();
  auto c2 = Coll();
  vectord::testing::WaitForFdePq(*c2);
  EXPECT_EQ(mode(*c2), "fde_pq4");  // rebuilt after open, in the background
  run(*c2, deleted, -1, 150, &after);
  run(*c2, deleted, 3, 150, &after_f);
  ExpectSameResults(before, after);
  ExpectSameResults(before_f, after_f);
  // A write after the restart is encoded with the same quantizer and found.
  ExpectNewDocFound(*c2, corpus, &docs, deleted, Json{{"g", 0}});
  EXPECT_EQ(mode(*c2), "fde_pq4");
}

TEST_F(MultivectorTest, SpannOverFdes) {
  ASSERT_TRUE(db_->CreateCollection("mv", MultiConfig(400)).ok());
  Corpus corpus(3);
  auto c = Coll();
  std::vector<Doc> docs = Fill(*c, corpus, 800);
  ASSERT_TRUE(testing::WaitForIndex(*c, 60));
  std::vector<Doc> queries;
  for (int t = 0; t < 30; ++t) queries.push_back(corpus.MakeQuery(docs[(t * 29) % docs.size()]));
  // Runs the queries through MUVERA with `cand` candidates; every one must be served by the SPANN
  // index over the FDEs and get exactly the candidates it asked for (explain: MUVERA candidates
  // from the unfiltered SPANN plan, lists probed, pages read).
  auto run = [&](Collection& col, uint32_t cand, std::vector<std::vector<ScoredPoint>>* out) {
    double recall = 0;
    for (size_t t = 0; t < queries.size(); ++t) {
      SearchRequest req = ToRequest(queries[t], 10);
      req.muvera_candidates = cand;
      QueryExplain ex;
      auto res = SearchExplained(col, req, &ex);
      EXPECT_TRUE(res.ok()) << res.status().ToString();
      if (!res.ok()) return 0.0;
      EXPECT_EQ(ex.multivector, "fde") << t;
      EXPECT_EQ(ex.plan, SearchPlan::kUnfiltered) << t;
      EXPECT_EQ(ex.muvera_candidates, cand) << t;
      EXPECT_EQ(ex.candidates_delivered, cand) << t;
      EXPECT_GT(ex.lists_probed, 0u) << t;
      EXPECT_GT(ex.pages_read, 0u) << t;
      EXPECT_GT(ex.chamfer_docs, 0u) << t;
      recall += Recall(*res, ModelTopK(queries[t], docs, 10));
      if (out != nullptr) out->push_back(std::move(res).value());
    }
    return recall / double(queries.size());
  };
  std::vector<std::vector<ScoredPoint>> before, after;
  const double r50 = run(*c, 50, nullptr);
  const double recall = run(*c, 200, &before);
  const double r400 = run(*c, 400, nullptr);
  std::cout << "SPANN over FDEs recall@10 (800 docs): 50 candidates " << r50 << ", 200 " << recall
            << ", 400 " << r400 << "\n";
  // Every document is in the living index once it is green (the 400 written after the build
  // too), and more candidates asked are more delivered: recall grows with them.
  EXPECT_GE(recall, 0.9);
  EXPECT_GE(r400, 0.97);
  EXPECT_GE(r400 + 1e-9, recall);
  EXPECT_GE(recall + 1e-9, r50);
  // Candidates = the collection's size, each re-ranked exactly: the exact Chamfer answer, ids and
  // scores (every document is a candidate, so no FDE search is needed: mode "all").
  for (size_t t = 0; t < 10; ++t) {
    SearchRequest req = ToRequest(queries[t], 10);
    req.muvera_candidates = static_cast<uint32_t>(docs.size());
    req.muvera_rerank = static_cast<uint32_t>(docs.size());
    QueryExplain ex;
    auto all = SearchExplained(*c, req, &ex);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    EXPECT_EQ(ex.multivector, "all");
    EXPECT_EQ(ex.candidates_delivered, docs.size());
    req.muvera_candidates.reset();
    req.muvera_rerank.reset();
    req.exact = true;
    auto exact = c->Search(req);
    ASSERT_TRUE(exact.ok());
    ExpectSameResults({*all}, {*exact});
  }
  // Reopened: the index and the token store come back and serve the same queries through the
  // index at the same recall floor (the navigation over the centroids is rebuilt at open, so the
  // lists probed, and the answers, may differ slightly from before); exact Chamfer is exact.
  c.reset();
  Reopen();
  auto c2 = Coll();
  ASSERT_TRUE(testing::WaitForIndex(*c2, 60));
  const double reopened = run(*c2, 200, &after);
  std::cout << "after reopening: " << reopened << "\n";
  EXPECT_GE(reopened, 0.9);
  const Doc q = corpus.MakeQuery(docs[5]);
  SearchRequest req = ToRequest(q, 10);
  req.exact = true;
  auto res = c2->Search(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(Recall(*res, ModelTopK(q, docs, 10)), 1.0);
}

// With filters the planner picks how the matching FDEs are searched; the candidates asked are
// still delivered, and a filter that leaves no more documents than the candidates makes every
// matching document a candidate (mode "all", the answer exact when all are re-ranked exactly).
TEST_F(MultivectorTest, SpannOverFdesFiltered) {
  ASSERT_TRUE(db_->CreateCollection("mv", MultiConfig(400)).ok());
  Corpus corpus(5);
  auto c = Coll();
  std::vector<Doc> docs = Fill(*c, corpus, 800);  // payload g = id % 4: 200 documents a group
  ASSERT_TRUE(testing::WaitForIndex(*c, 60));
  double recall = 0;
  for (int t = 0; t < 20; ++t) {
    const Doc q = corpus.MakeQuery(docs[(t * 31) % docs.size()]);
    SearchRequest req = ToRequest(q, 10);
    auto f = ParseFilter(Json{{"must", {{{"key", "g"}, {"match", {{"value", 1}}}}}}}, "");
    ASSERT_TRUE(f.ok());
    req.filter = *f;
    req.muvera_candidates = 100;
    QueryExplain ex;
    auto res = SearchExplained(*c, req, &ex);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(ex.multivector, "fde");
    EXPECT_EQ(ex.matches, 200u);
    EXPECT_EQ(ex.candidates_delivered, 100u) << SearchPlanName(ex.plan);
    for (const auto& p : *res) EXPECT_EQ(p.id.num() % 4, 1u);
    recall += Recall(*res, ModelTopK(q, docs, 10, {}, 1));
    // 200 candidates for 200 matching documents: all of them, ranked exactly.
    req.muvera_candidates = 200;
    req.muvera_rerank = 200;
    auto all = SearchExplained(*c, req, &ex);
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(ex.multivector, "all");
    EXPECT_EQ(ex.candidates_delivered, 200u);
    EXPECT_EQ(Recall(*all, ModelTopK(q, docs, 10, {}, 1)), 1.0);
  }
  recall /= 20;
  std::cout << "filtered (1 in 4) recall@10, 100 candidates: " << recall << "\n";
  EXPECT_GE(recall, 0.9);
}

// No candidates configured (muvera_config.candidates 0): the default scales with the collection
// and the limit and holds recall@10 >= 0.9 at both sizes, below and above the SPANN threshold;
// the cost model picks between scoring every document and the FDE search (both estimates in
// explain), and the default candidates through the FDE search hold the same floor.
TEST_F(MultivectorTest, DefaultCandidatesHoldAtTwoSizes) {
  CollectionConfig cfg = MultiConfig(1500);
  cfg.multivector->muvera.candidates = 0;
  cfg.multivector->muvera.fde_pq_max_rows = 0;  // the SPANN index serves once built
  // The SPANN settings the HTTP API gives an index over FDEs (pq4 lists of 256 documents).
  ApplyFdeSpannDefaults(Json::object(), MuveraFdeDim(cfg.multivector->muvera), &*cfg.spann);
  EXPECT_EQ(cfg.spann->layout, "pq4");
  EXPECT_EQ(cfg.spann->pq_m, MuveraFdeDim(cfg.multivector->muvera) / 8);
  ASSERT_TRUE(db_->CreateCollection("mv", cfg).ok());
  Corpus corpus(7);
  auto c = Coll();
  // Mean recall@10 over 30 queries at the defaults, and with the default candidate count asked
  // explicitly (which always takes the FDE search, `fde_mode`).
  auto measure = [&](const std::vector<Doc>& docs, const char* fde_mode, uint32_t want_cand,
                     double* forced) {
    double recall = 0;
    *forced = 0;
    for (int t = 0; t < 30; ++t) {
      const Doc q = corpus.MakeQuery(docs[(t * 41) % docs.size()]);
      QueryExplain ex;
      auto res = SearchExplained(*c, ToRequest(q, 10), &ex);
      EXPECT_TRUE(res.ok()) << res.status().ToString();
      if (!res.ok()) return 0.0;
      EXPECT_EQ(ex.muvera_candidates, want_cand);
      EXPECT_GT(ex.est_all_us, 0);
      EXPECT_GT(ex.est_fde_us, 0);
      EXPECT_EQ(ex.multivector, ex.est_all_us <= ex.est_fde_us ? "all" : fde_mode)
          << ex.est_all_us << " " << ex.est_fde_us;
      recall += Recall(*res, ModelTopK(q, docs, 10));
      SearchRequest req = ToRequest(q, 10);
      req.muvera_candidates = want_cand;
      auto via_fde = SearchExplained(*c, req, &ex);
      EXPECT_TRUE(via_fde.ok());
      if (!via_fde.ok()) return 0.0;
      EXPECT_EQ(ex.multivector, fde_mode);
      EXPECT_EQ(ex.candidates_delivered, want_cand);
      *forced += Recall(*via_fde, ModelTopK(q, docs, 10)) / 30;
    }
    return recall / 30;
  };
  std::vector<Doc> docs = Fill(*c, corpus, 1000);
  ASSERT_TRUE(c->WaitIdle(60000));
  EXPECT_EQ(MuveraDefaultCandidates(1000, 10, false), 200u);    // 20 x limit > 0.75 x 1000^0.8
  EXPECT_EQ(MuveraDefaultCandidates(22659, 10, false), 2287u);  // 0.75 x 22659^0.8
  double small_fde = 0, large_fde = 0;
  const double small = measure(docs, "fde_pq4", 200, &small_fde);
  const std::vector<Doc> more = Fill(*c, corpus, 3000, 1000);
  docs.insert(docs.end(), more.begin(), more.end());
  ASSERT_TRUE(testing::WaitForIndex(*c, 120));
  EXPECT_EQ(MuveraDefaultCandidates(4000, 10, true), 686u);  // 0.9 x 4000^0.8
  const double large = measure(docs, "fde", 686, &large_fde);
  std::cout << "default candidates recall@10: 1,000 documents " << small << " (FDE PQ " << small_fde
            << "), 4,000 " << large << " (SPANN " << large_fde << ")\n";
  EXPECT_GE(small, 0.9);
  EXPECT_GE(small_fde, 0.9);
  EXPECT_GE(large, 0.9);
  EXPECT_GE(large_fde, 0.9);
  // A limit of 100 asks for 20 x 100 candidates at least.
  EXPECT_EQ(MuveraDefaultCandidates(4000, 100, true), 2000u);
}

// Up to muvera_config.fde_pq_max_rows documents the FDE PQ keeps serving the candidates beside
// the SPANN index (rows the index holds are read from the vector file to train and encode it),
// after a reopen too, with the same answers; past the limit the index serves.
TEST_F(MultivectorTest, FdePqServesBesideTheSpannIndex) {
  CollectionConfig cfg = MultiConfig(1500);
  cfg.multivector->muvera.fde_pq_max_rows = 3000;
  ASSERT_TRUE(db_->CreateCollection("mv", cfg).ok());
  Corpus corpus(11);
  auto c = Coll();
  std::vector<Doc> docs = Fill(*c, corpus, 2500);
  ASSERT_TRUE(testing::WaitForIndex(*c, 120));
  ASSERT_TRUE(c->WaitIdle(60000));
  EXPECT_EQ(c->Info().indexed_vectors_count, 2500u);
  std::vector<Doc> queries;
  for (int t = 0; t < 30; ++t) queries.push_back(corpus.MakeQuery(docs[(t * 43) % docs.size()]));
  auto run = [&](Collection& col, const char* want_mode,
                 std::vector<std::vector<ScoredPoint>>* out) {
    double recall = 0;
    for (const Doc& q : queries) {
      SearchRequest req = ToRequest(q, 10);
      req.muvera_candidates = 150;
      QueryExplain ex;
      auto res = SearchExplained(col, req, &ex);
      EXPECT_TRUE(res.ok()) << res.status().ToString();
      if (!res.ok()) return 0.0;
      EXPECT_EQ(ex.multivector, want_mode);
      EXPECT_EQ(ex.candidates_delivered, 150u);
      recall += Recall(*res, ModelTopK(q, docs, 10));
      if (out != nullptr) out->push_back(std::move(res).value());
    }
    return recall / double(queries.size());
  };
  std::vector<std::vector<ScoredPoint>> before, after;
  const double r_pq = run(*c, "fde_pq4", &before);
  std::cout << "FDE PQ beside the SPANN index (2,500 docs, 150 candidates): " << r_pq << "\n";
  EXPECT_GE(r_pq, 0.9);
  // Reopened: the PQ is rebuilt in the background from the FDE rows on disk; the same rows give
  // the same codes, so the same answers.
  c.reset();
  Reopen();
  auto c2 = Coll();
  ASSERT_TRUE(testing::WaitForIndex(*c2, 120));
  ASSERT_TRUE(c2->WaitIdle(60000));
  EXPECT_DOUBLE_EQ(run(*c2, "fde_pq4", &after), r_pq);
  ExpectSameResults(before, after);
  // Past fde_pq_max_rows the SPANN index serves the candidates.
  const std::vector<Doc> more = Fill(*c2, corpus, 600, 2500);
  docs.insert(docs.end(), more.begin(), more.end());
  const double r_spann = run(*c2, "fde", nullptr);
  std::cout << "past fde_pq_max_rows (3,100 docs), through the index: " << r_spann << "\n";
  EXPECT_GE(r_spann, 0.75);
}

TEST_F(MultivectorTest, BadInputChangesNothing) {
  ASSERT_TRUE(db_->CreateCollection("mv", MultiConfig()).ok());
  Corpus corpus(4);
  auto c = Coll();
  Fill(*c, corpus, 10);
  const Doc good = corpus.MakeDoc();
  auto expect_bad = [&](PointStruct bad, const std::string& needle) {
    auto r = c->Upsert({ToPoint(100, good), std::move(bad)}, true);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    EXPECT_EQ(c->Info().points_count, 10u);
  };
  PointStruct single;
  single.id = PointId::Num(101);
  single.vector.assign(kDim, 0.5f);
  expect_bad(single, "list of vectors");
  PointStruct wrong_dim = ToPoint(101, good);
  wrong_dim.vector.resize(good.n * (kDim - 1));
  expect_bad(wrong_dim, "dimensions");
  PointStruct nan = ToPoint(101, good);
  nan.vector[3] = std::nanf("");
  expect_bad(nan, "not a finite number");
  PointStruct empty;
  empty.id = PointId::Num(101);
  expect_bad(empty, "list of vectors");
  PointStruct too_many;
  too_many.id = PointId::Num(101);
  too_many.vector_count = 1025;
  too_many.vector.assign(size_t{1025} * kDim, 0.1f);
  expect_bad(too_many, "max_vectors");

  SearchRequest q;
  q.vector.assign(kDim, 1.0f);
  q.limit = 3;
  auto r = c->Search(q);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("list of vectors"), std::string::npos);
  q.vector_count = 2;
  q.vector.assign(2 * kDim + 2, 1.0f);
  r = c->Search(q);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("dimensions"), std::string::npos);

  // A single-vector collection refuses lists.
  CollectionConfig plain;
  plain.dim = kDim;
  plain.distance = Distance::kDot;
  ASSERT_TRUE(db_->CreateCollection("plain", plain).ok());
  auto p = Coll("plain");
  auto u = p->Upsert({ToPoint(1, good)}, true);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("single vectors"), std::string::npos);

  // Config validation.
  CollectionConfig cfg = MultiConfig();
  auto bad_cfg = ParseMuveraConfig(Json{{"k_sim", 11}}, kDim);
  EXPECT_FALSE(bad_cfg.ok());
  EXPECT_FALSE(ParseMuveraConfig(Json{{"d_proj", kDim + 1}}, kDim).ok());
  EXPECT_FALSE(ParseMuveraConfig(Json{{"bogus", 1}}, kDim).ok());
  EXPECT_FALSE(ParseMuveraConfig(Json{{"k_sim", 10}, {"d_proj", 16}, {"r_reps", 20}}, kDim).ok());
  EXPECT_TRUE(ParseMuveraConfig(
                  Json{{"k_sim", 10}, {"d_proj", 16}, {"r_reps", 20}, {"final_dim", 4096}}, kDim)
                  .ok());
}

TEST_F(MultivectorTest, TornTailAndCorruptRecord) {
  // on_disk: the sets are read (and checked) per query, so the flipped byte below shows up as a
  // Corruption status of the read; the RAM mode checks every set when it loads them (below).
  ASSERT_TRUE(db_->CreateCollection("mv", MultiConfig(std::nullopt, true)).ok());
  Corpus corpus(5);
  std::vector<Doc> docs = Fill(*Coll(), corpus, 50);
  db_.reset();
  // Find the collection directory (the one holding tokens.vdt).
  std::string tok;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_)) {
    if (e.path().filename() == "tokens.vdt") tok = e.path().string();
  }
  ASSERT_FALSE(tok.empty());
  const std::string idx = tok.substr(0, tok.size() - 4) + ".vdo";
  // A torn append: garbage after the last record and half an offsets entry.
  {
    std::ofstream(tok, std::ios::app | std::ios::binary) << std::string(100, 'x');
    std::ofstream(idx, std::ios::app | std::ios::binary) << std::string(9, 'y');
  }
  Reopen();
  auto c = Coll();
  EXPECT_EQ(c->Info().points_count, 50u);
  SearchRequest req = ToRequest(corpus.MakeQuery(docs[3]), 5);
  req.exact = true;
  ASSERT_TRUE(c->Search(req).ok());
  // The next write goes where the torn bytes were.
  ASSERT_TRUE(c->Upsert({ToPoint(50, corpus.MakeDoc())}, true).ok());
  EXPECT_EQ(c->Info().points_count, 51u);
  c.reset();
  db_.reset();

  // A flipped byte inside a record's vectors: reading it is Corruption, never a wrong answer.
  {
    std::fstream f(tok, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 + 12 + 5);
    char b = 0;
    f.read(&b, 1);
    f.seekp(4096 + 12 + 5);
    b ^= 0x40;
    f.write(&b, 1);
  }
  Reopen();
  c = Coll();
  auto rec = c->Retrieve({PointId::Num(0)}, false, true);
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().code(), Status::Code::kCorruption);
  req.exact = true;
  auto res = c->Search(req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kCorruption);
  // The open could not encode the damaged set for the 8-bit stage: it goes on to exact Chamfer,
  // whose read reports the corruption (never a silently missing document).
  req.exact = false;
  req.muvera_rerank = 5;
  QueryExplain ex;
  res = SearchExplained(*c, req, &ex);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ex.int8_docs, 51u);
}

TEST_F(MultivectorTest, RamAndDiskModesAgree) {
  ASSERT_TRUE(db_->CreateCollection("ram", MultiConfig()).ok());
  ASSERT_TRUE(db_->CreateCollection("disk", MultiConfig(std::nullopt, true)).ok());
  Corpus corpus(6);
  std::vector<Doc> docs = Fill(*Coll("ram"), corpus, 200);
  // Same batches: the first batch fixes the SimHash centre ("auto").
  for (size_t i = 0; i < docs.size(); i += 50) {
    std::vector<PointStruct> batch;
    for (size_t j = i; j < i + 50; ++j) batch.push_back(ToPoint(j, docs[j], Json{{"g", 0}}));
    ASSERT_TRUE(Coll("disk")->Upsert(std::move(batch), true).ok());
  }
  for (int t = 0; t < 10; ++t) {
    SearchRequest req = ToRequest(corpus.MakeQuery(docs[t * 7]), 10);
    req.muvera_candidates = 50;
    auto a = Coll("ram")->Search(req);
    auto b = Coll("disk")->Search(req);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->size(), b->size());
    for (size_t i = 0; i < a->size(); ++i) {
      EXPECT_EQ((*a)[i].id, (*b)[i].id);
      EXPECT_FLOAT_EQ((*a)[i].score, (*b)[i].score);
    }
  }
}

TEST_F(MultivectorTest, RamModeChecksEverySetAtLoad) {
  ASSERT_TRUE(db_->CreateCollection("ram", MultiConfig()).ok());
  Corpus corpus(7);
  Fill(*Coll("ram"), corpus, 20);
  db_.reset();
  std::string tok;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_)) {
    if (e.path().filename() == "tokens.vdt") tok = e.path().string();
  }
  ASSERT_FALSE(tok.empty());
  {
    std::fstream f(tok, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 + 100);
    f.put('\x5a');
  }
  // Opening reports Corruption naming the file: a damaged set is never served.
  auto db = testing::OpenTestDatabase(dir_);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Status::Code::kCorruption) << db.status().ToString();
  EXPECT_NE(db.status().message().find("tokens.vdt"), std::string::npos);
}

// Two-pass re-rank (muvera_config.prefilter_vectors): queries with more vectors than the prefilter
// are first ranked by Chamfer over a strided subset of their vectors; the best quarter gets the
// exact score. Recall stays near the one-pass re-rank, scores stay exact, explain reports it.
TEST_F(MultivectorTest, TwoPassRerankKeepsRecall) {
  CollectionConfig one = MultiConfig();
  one.multivector->muvera.prefilter_vectors = 0;
  one.multivector->muvera.rerank = 0;  // the 8-bit stage off: the passes see all 200 candidates
  CollectionConfig two = MultiConfig();
  two.multivector->muvera.prefilter_vectors = 8;
  two.multivector->muvera.rerank = 0;
  ASSERT_TRUE(db_->CreateCollection("one", one).ok());
  ASSERT_TRUE(db_->CreateCollection("two", two).ok());
  Corpus corpus(9);
  std::vector<Doc> docs;
  for (int i = 0; i < 600; ++i) {
    Doc d = corpus.MakeDoc();
    Doc e = corpus.MakeDoc();  // longer sets: queries of 8-20 vectors
    d.tokens.insert(d.tokens.end(), e.tokens.begin(), e.tokens.end());
    d.n += e.n;
    docs.push_back(d);
  }
  for (const char* name : {"one", "two"}) {
    for (size_t i = 0; i < docs.size(); i += 100) {
      std::vector<PointStruct> batch;
      for (size_t j = i; j < i + 100; ++j) batch.push_back(ToPoint(j, docs[j]));
      ASSERT_TRUE(Coll(name)->Upsert(std::move(batch), true).ok());
    }
  }
  double r_one = 0, r_two = 0;
  size_t prefiltered = 0;
  for (int t = 0; t < 30; ++t) {
    const Doc q = corpus.MakeQuery(docs[(t * 19) % docs.size()]);
    SearchRequest req = ToRequest(q, 10);
    req.muvera_candidates = 200;
    const auto want = ModelTopK(q, docs, 10);
    auto a = Coll("one")->Search(req);
    QueryExplain ex;
    auto b = SearchExplained(*Coll("two"), req, &ex);
    ASSERT_TRUE(a.ok() && b.ok());
    r_one += Recall(*a, want);
    r_two += Recall(*b, want);
    if (q.n > 8) {
      EXPECT_EQ(ex.prefilter_docs, 200u);
      EXPECT_EQ(ex.chamfer_docs, 50u);  // the best quarter of 200 (>= 4 x limit)
      ++prefiltered;
    }
    for (const auto& p : *b) EXPECT_NEAR(p.score, ChamferModel(q, docs[p.id.num()]), 1e-4);
  }
  ASSERT_GT(prefiltered, 20u);
  std::cout << "two-pass re-rank recall@10 " << r_two / 30 << " vs one pass " << r_one / 30 << "\n";
  EXPECT_GE(r_two / 30, r_one / 30 - 0.05);
  EXPECT_GE(r_two / 30, 0.85);
}

// Two-stage re-rank (muvera_config.rerank): every candidate is scored by the 8-bit Chamfer on
// the in-RAM copy, the best `rerank` by exact Chamfer. Recall floor against the model and close to
// the one-stage re-rank, exact scores, filters, explain counts, the per-query override and its
// errors, on_disk = RAM, and the copy kept consistent through deletes, a restart (derived again at
// open: identical results), new points and overwritten points.
TEST_F(MultivectorTest, TwoStageRerank) {
  EXPECT_FALSE(ParseMuveraConfig(Json{{"rerank", -1}}, kDim).ok());
  EXPECT_FALSE(ParseMuveraConfig(Json{{"rerank", 100001}}, kDim).ok());
  CollectionConfig two = MultiConfig();
  two.multivector->muvera.rerank = 20;
  CollectionConfig one = MultiConfig();
  one.multivector->muvera.rerank = 0;  // no 8-bit copy: every candidate exact
  CollectionConfig disk = MultiConfig(std::nullopt, true);
  disk.multivector->muvera.rerank = 20;
  ASSERT_TRUE(db_->CreateCollection("two", two).ok());
  ASSERT_TRUE(db_->CreateCollection("one", one).ok());
  ASSERT_TRUE(db_->CreateCollection("disk", disk).ok());
  Corpus corpus(11);
  std::vector<Doc> docs = Fill(*Coll("two"), corpus, 600);
  for (const char* name : {"one", "disk"}) {  // the same batches: the same SimHash centre
    for (size_t i = 0; i < docs.size(); i += 50) {
      std::vector<PointStruct> batch;
      for (size_t j = i; j < i + 50; ++j)
        batch.push_back(ToPoint(j, docs[j], Json{{"g", int(j % 4)}}));
      ASSERT_TRUE(Coll(name)->Upsert(std::move(batch), true).ok());
    }
  }
  std::vector<Doc> queries;
  for (int t = 0; t < 40; ++t) queries.push_back(corpus.MakeQuery(docs[(t * 37) % docs.size()]));

  const double r_two = CheckedRecall(*Coll("two"), queries, docs, {}, -1, 150);
  const double r_one = CheckedRecall(*Coll("one"), queries, docs, {}, -1, 150);
  std::cout << "recall@10 at 150 candidates: two-stage (best 20 exact) " << r_two
            << ", every candidate exact " << r_one << "\n";
  EXPECT_GE(r_two, 0.9);
  EXPECT_GE(r_two, r_one - 0.02);
  EXPECT_GE(CheckedRecall(*Coll("two"), queries, docs, {}, 2, 150), 0.9);

  SearchRequest req = ToRequest(queries[0], 10);
  req.muvera_candidates = 150;
  QueryExplain ex;
  ASSERT_TRUE(SearchExplained(*Coll("two"), req, &ex).ok());
  EXPECT_EQ(ex.int8_docs, 150u);
  EXPECT_EQ(ex.chamfer_docs, 20u);
  EXPECT_GT(ex.int8_us, 0.0);
  EXPECT_GT(ex.chamfer_us, 0.0);
  req.muvera_rerank = 40;  // per query
  ex = QueryExplain();
  ASSERT_TRUE(SearchExplained(*Coll("two"), req, &ex).ok());
  EXPECT_EQ(ex.chamfer_docs, 40u);
  req.muvera_rerank = 3;  // never below twice the limit
  ex = QueryExplain();
  ASSERT_TRUE(SearchExplained(*Coll("two"), req, &ex).ok());
  EXPECT_EQ(ex.chamfer_docs, 20u);
  req.offset = 5;  // limit + offset
  ex = QueryExplain();
  ASSERT_TRUE(SearchExplained(*Coll("two"), req, &ex).ok());
  EXPECT_EQ(ex.chamfer_docs, 30u);
  req.offset = 0;
  req.muvera_rerank = 200;  // at least the candidates: the 8-bit stage is skipped
  ex = QueryExplain();
  ASSERT_TRUE(SearchExplained(*Coll("two"), req, &ex).ok());
  EXPECT_EQ(ex.int8_docs, 0u);
  EXPECT_EQ(ex.chamfer_docs, 150u);
  req.muvera_rerank = 20;
  auto no_copy = Coll("one")->Search(req);
  ASSERT_FALSE(no_copy.ok());
  EXPECT_EQ(no_copy.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(no_copy.status().message().find("muvera_config.rerank is 0"), std::string::npos);
  req.exact = true;  // params.exact stays exact: no 8-bit stage
  ex = QueryExplain();
  ASSERT_TRUE(SearchExplained(*Coll("two"), req, &ex).ok());
  EXPECT_EQ(ex.multivector, "exact");
  EXPECT_EQ(ex.int8_docs, 0u);
  EXPECT_EQ(ex.chamfer_docs, 600u);

  // on_disk reads the sets for its 8-bit copy at open and per query for the exact stage: the
  // same results as the RAM mode.
  std::set<uint64_t> deleted;
  PointSelector sel;
  for (uint64_t i = 0; i < 600; i += 3) {
    sel.ids.push_back(PointId::Num(i));
    deleted.insert(i);
  }
  std::vector<std::vector<ScoredPoint>> ram_before, disk_before;
  for (const char* name : {"two", "disk"}) {
    ASSERT_TRUE(Coll(name)->Delete(sel, true).ok());
  }
  const double r_del = CheckedRecall(*Coll("two"), queries, docs, deleted, -1, 150, &ram_before);
  EXPECT_GE(r_del, 0.9);
  CheckedRecall(*Coll("disk"), queries, docs, deleted, -1, 150, &disk_before);
  ExpectSameResults(ram_before, disk_before);

  Reopen();
  for (const char* name : {"two", "disk"}) {
    std::vector<std::vector<ScoredPoint>> after;
    EXPECT_DOUBLE_EQ(CheckedRecall(*Coll(name), queries, docs, deleted, -1, 150, &after), r_del);
    ExpectSameResults(ram_before, after);
  }
  // After the restart: a new point is found through the 8-bit stage, and an overwritten point
  // is scored by its new vectors (the old row's codes are never used again).
  ExpectNewDocFound(*Coll("two"), corpus, &docs, deleted, Json());
  const Doc fresh = corpus.MakeDoc();
  docs[4] = fresh;
  ASSERT_TRUE(Coll("two")->Upsert({ToPoint(4, fresh, Json{{"g", 0}})}, true).ok());
  SearchRequest fq = ToRequest(corpus.MakeQuery(fresh), 10);
  fq.muvera_candidates = 150;
  QueryExplain fex;
  auto res = SearchExplained(*Coll("two"), fq, &fex);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(fex.int8_docs, 150u);
  ASSERT_FALSE(res->empty());
  EXPECT_EQ((*res)[0].id.num(), ModelTopK(ToDocQuery(fq), docs, 1, deleted)[0]);
  for (const auto& p : *res) {
    EXPECT_NEAR(p.score, ChamferModel(ToDocQuery(fq), docs[p.id.num()]), 1e-4);
  }
}

}  // namespace
}  // namespace vectord
