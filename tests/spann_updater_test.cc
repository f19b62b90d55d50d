// The living SPANN index (src/spann/spann_updater.h): randomized interleavings of inserts,
// deletes, updater cycles, searches and reopens checked against an exact model (brute force over
// the live rows), splits and merges on crafted data, the journal and checkpoints across reopens
// and torn journal tails, and the offline check (src/spann/spann_check.h) after every phase.
#include "src/spann/spann_updater.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>

#include "index/distance.h"
#include "index/flat_search.h"
#include "src/spann/spann_builder.h"
#include "src/spann/spann_check.h"
#include "src/spann/spann_index.h"
#include "src/vectors/vector_source.h"
#include "storage/vector_file.h"
#include "vectord/collection.h"

namespace vectord {
namespace {

namespace fs = std::filesystem;
constexpr uint32_t kDim = 16;

// A living index over a float32 vector file, with the model it is checked against: every row's
// vector and the live set. Rows are ids.
class Harness {
 public:
  Harness(index::PostingLayout layout, uint64_t seed, uint32_t clusters = 24)
      : rng_(seed), layout_(layout) {
    dir_ = (fs::temp_directory_path() /
            ("spann_updater_" + std::to_string(::getpid()) + "_" + std::to_string(seed) + "_" +
             std::to_string(static_cast<int>(layout))))
               .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::normal_distribution<float> g(0, 1);
    centres_.resize(size_t{clusters} * kDim);
    for (auto& c : centres_) c = g(rng_) * 6;
  }
  ~Harness() {
    updater_.reset();
    index_.reset();
    fs::remove_all(dir_);
  }

  std::vector<float> Point(uint32_t cluster) {
    std::normal_distribution<float> g(0, 1);
    std::vector<float> v(kDim);
    for (uint32_t j = 0; j < kDim; ++j) v[j] = centres_[size_t{cluster} * kDim + j] + g(rng_);
    return v;
  }
  uint32_t clusters() const { return static_cast<uint32_t>(centres_.size() / kDim); }

  // Appends rows to the vector file and the model (live, not yet in the index).
  void Add(const std::vector<std::vector<float>>& rows) {
    auto vf = storage::VectorFile::Open(vfile(), kDim, DataType::kFloat32);
    ASSERT_TRUE(vf.ok());
    for (const auto& r : rows) {
      ASSERT_TRUE((*vf)->Append(r.data(), 1).ok());
      live_.add(static_cast<uint32_t>(model_.size()));
      model_.push_back(r);
    }
  }
  // Builds the index over every row so far.
  void Build(uint32_t target) {
    std::vector<float> all;
    for (const auto& r : model_) all.insert(all.end(), r.begin(), r.end());
    auto src = MakeMemorySource(all.data(), model_.size(), kDim, DataType::kFloat32);
    SpannBuildParams bp;
    bp.layout = layout_;
    bp.target_list_entries = target;
    bp.threads = 1;
    if (layout_ != index::PostingLayout::kFull) bp.pq_m = 8;
    ASSERT_TRUE(BuildSpannIndex(*src, idx_dir(), bp).ok());
    Open();
  }
  void Open(uint64_t checkpoint_bytes = uint64_t{32} << 20, double cycle_share = 0.25) {
    updater_.reset();
    index_.reset();
    SpannOpenOptions oo;
    oo.vector_file = vfile();
    auto idx = SpannIndex::Open(idx_dir(), oo);
    ASSERT_TRUE(idx.ok()) << idx.status().ToString();
    index_ = std::move(idx).value();
    SpannUpdateParams p;
    p.assign.rng_factor = SpannConfig().update_rng_factor;
    p.checkpoint_bytes = checkpoint_bytes;
    p.cycle_share = cycle_share;
    updater_ = std::make_unique<SpannUpdater>(index_.get(), p);
  }
  // The updater's assign step over every row past the index's end.
  void Assign() {
    while (index_->assigned_rows() < model_.size()) {
      const uint64_t first = index_->assigned_rows();
      const uint64_t n = std::min<uint64_t>(97, model_.size() - first);
      std::vector<float> bytes;
      for (uint64_t r = first; r < first + n; ++r) {
        bytes.insert(bytes.end(), model_[r].begin(), model_[r].end());
      }
      auto a = updater_->Assign(first, n, reinterpret_cast<const uint8_t*>(bytes.data()),
                                updater_->Navigation());
      std::unique_lock l(mu_);
      ASSERT_TRUE(updater_->ApplyAssignment(std::move(a)).ok());
    }
  }
  // One updater cycle.
  void Cycle() {
    auto r = updater_->RunCycle(Locks());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  SpannUpdater::Locks Locks() {
    SpannUpdater::Locks locks;
    locks.shared = [this] { return std::make_shared<std::shared_lock<std::shared_mutex>>(mu_); };
    locks.exclusive = [this] { return std::make_shared<std::unique_lock<std::shared_mutex>>(mu_); };
    locks.live = [this] { return live_; };
    return locks;
  }
  // Cycles until the updater has nothing left to do.
  void Settle() {
    SpannUpdater::Locks locks;
    locks.shared = [this] { return std::make_shared<std::shared_lock<std::shared_mutex>>(mu_); };
    locks.exclusive = [this] { return std::make_shared<std::unique_lock<std::shared_mutex>>(mu_); };
    locks.live = [this] { return live_; };
    for (int i = 0; i < 200; ++i) {
      {
        std::shared_lock l(mu_);
        if (!updater_->CycleDue()) return;
      }
      auto r = updater_->RunCycle(locks);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
    FAIL() << "the updater did not settle";
  }
  void Delete(const std::vector<uint32_t>& rows) {
    uint64_t indexed = 0;
    for (uint32_t r : rows) {
      live_.remove(r);
      indexed += r < index_->durable_rows();
    }
    updater_->NoteDeleted(indexed);
  }

  // Top-k of the index (rows past its end are the caller's) with deleted rows filtered.
  std::vector<uint32_t> Search(const std::vector<float>& q, uint32_t k, uint32_t nprobe) {
    std::vector<uint64_t> bits((model_.size() + 63) / 64, 0);
    for (uint32_t r : live_) bits[r >> 6] |= uint64_t{1} << (r & 63);
    index::RowFilter rf;
    rf.live_bits = bits.data();
    SpannSearchParams p;
    p.nprobe = nprobe;
    p.eps = 0;
    p.rerank = 200;
    p.filter = &rf;
    std::shared_lock l(mu_);
    auto res = index_->Search(q.data(), k, p);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    std::vector<uint32_t> rows;
    if (res.ok()) {
      for (const auto& h : *res) rows.push_back(h.row);
    }
    return rows;
  }
  // Exact top-k over the live rows the index serves.
  std::vector<uint32_t> Exact(const std::vector<float>& q, uint32_t k) const {
    std::vector<std::pair<float, uint32_t>> d;
    for (uint32_t r : live_) {
      if (r >= index_->assigned_rows()) break;
      d.emplace_back(index::L2SqrF32(q.data(), model_[r].data(), kDim), r);
    }
    std::sort(d.begin(), d.end());
    std::vector<uint32_t> out;
    for (size_t i = 0; i < std::min<size_t>(k, d.size()); ++i) out.push_back(d[i].second);
    return out;
  }
  double Recall(int queries, uint32_t nprobe) {
    double hit = 0, total = 0;
    for (int i = 0; i < queries; ++i) {
      const auto q = Point(static_cast<uint32_t>(rng_() % clusters()));
      const auto truth = Exact(q, 10);
      const auto got = Search(q, 10, nprobe);
      for (uint32_t r : got) {
        EXPECT_TRUE(live_.contains(r)) << "deleted row " << r << " returned";
        hit += std::find(truth.begin(), truth.end(), r) != truth.end();
      }
      total += static_cast<double>(truth.size());
    }
    return total > 0 ? hit / total : 1.0;
  }
  // Every live indexed row is found by a search for its own vector.
  void ExpectSelfFound(int samples) {
    std::vector<uint32_t> rows;
    for (uint32_t r : live_) {
      if (r < index_->assigned_rows()) rows.push_back(r);
    }
    if (rows.empty()) return;
    for (int i = 0; i < samples; ++i) {
      const uint32_t r = rows[rng_() % rows.size()];
      const auto got = Search(model_[r], 1, 8);
      ASSERT_FALSE(got.empty());
      EXPECT_EQ(index::L2SqrF32(model_[got[0]].data(), model_[r].data(), kDim), 0.0f)
          << "row " << r << " not found by its own vector";
    }
  }
  SpannCheckReport Check() {
    std::shared_lock l(mu_);
    auto r = CheckSpannIndex(*index_, live_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : SpannCheckReport();
  }

  std::string vfile() const { return dir_ + "/vectors.vdv"; }
  std::string idx_dir() const { return dir_ + "/spann"; }
  SpannIndex& index() { return *index_; }
  SpannUpdater& updater() { return *updater_; }
  const Roaring& live() const { return live_; }
  size_t rows() const { return model_.size(); }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
  index::PostingLayout layout_;
  std::string dir_;
  std::vector<float> centres_;
  std::vector<std::vector<float>> model_;
  Roaring live_;
  std::shared_mutex mu_;  // the collection's lock: searches shared, Apply steps exclusive
  std::unique_ptr<SpannIndex> index_;
  std::unique_ptr<SpannUpdater> updater_;
};

void AddRandom(Harness* h, int n) {
  std::vector<std::vector<float>> rows;
  for (int i = 0; i < n; ++i) rows.push_back(h->Point(h->rng()() % h->clusters()));
  h->Add(rows);
}

void ExpectHealthy(Harness* h) {
  const SpannCheckReport r = h->Check();
  EXPECT_TRUE(r.ok()) << r.ToString();
  EXPECT_EQ(r.live_rows, h->live().rank(h->index().durable_rows() - 1));
}

class LivingIndexTest : public ::testing::TestWithParam<index::PostingLayout> {};

TEST_P(LivingIndexTest, RandomInterleavingsMatchTheExactModel) {
  Harness h(GetParam(), 1);
  AddRandom(&h, 1500);
  h.Build(16);
  std::bernoulli_distribution coin(0.5);
  for (int step = 0; step < 40; ++step) {
    const int op = static_cast<int>(h.rng()() % 6);
    if (op <= 1) {
      AddRandom(&h, 50 + static_cast<int>(h.rng()() % 300));
    } else if (op == 2) {
      std::vector<uint32_t> gone;
      for (uint32_t r : h.live()) {
        if (h.rng()() % 10 == 0) gone.push_back(r);
      }
      h.Delete(gone);
    } else if (op == 3) {
      h.Assign();
    } else if (op == 4) {
      h.Assign();
      h.Settle();
    } else if (coin(h.rng())) {
      h.Assign();
      h.Settle();
      h.Open();  // restart: checkpoint + journal
    }
    // Searches never return a deleted row and find what the exact model finds.
    EXPECT_GE(h.Recall(10, 32), 0.85) << "step " << step;
  }
  h.Assign();
  h.Settle();
  ExpectHealthy(&h);
  h.ExpectSelfFound(200);
  EXPECT_GE(h.Recall(100, 32), 0.9);
  EXPECT_GT(h.index().LiveStats().splits, 0u);
  // Reopened: the same answers.
  std::vector<std::vector<uint32_t>> before;
  std::vector<std::vector<float>> qs;
  for (int i = 0; i < 20; ++i) {
    qs.push_back(h.Point(static_cast<uint32_t>(i % h.clusters())));
    before.push_back(h.Search(qs.back(), 10, 16));
  }
  h.Open();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(h.Search(qs[i], 10, 16), before[i]);
  ExpectHealthy(&h);
}

TEST_P(LivingIndexTest, SkewedArrivalsAreSplitIntoBoundedLists) {
  // New clusters that did not exist at build time: one region receives 10x the build's points.
  Harness h(GetParam(), 2, 8);
  AddRandom(&h, 800);
  h.Build(16);
  const uint32_t split = h.updater().params().split_entries;
  std::vector<std::vector<float>> rows;
  std::normal_distribution<float> g(0, 1);
  std::vector<float> far(kDim, 40.0f);  // a region far from every build cluster
  for (int i = 0; i < 8000; ++i) {
    std::vector<float> v(kDim);
    for (uint32_t j = 0; j < kDim; ++j) v[j] = far[j] + g(h.rng()) * 2;
    rows.push_back(v);
  }
  h.Add(rows);
  h.Assign();
  h.Settle();
  const SpannCheckReport r = h.Check();
  EXPECT_TRUE(r.ok()) << r.ToString();
  EXPECT_LE(r.max_list_entries, split) << r.ToString();
  EXPECT_GT(h.index().LiveStats().splits, 100u);
  EXPECT_GE(h.Recall(50, 32), 0.9);
  h.ExpectSelfFound(100);
}

TEST_P(LivingIndexTest, ListsEmptiedByDeletesAreMergedAway) {
  Harness h(GetParam(), 3);
  AddRandom(&h, 3000);
  h.Build(16);
  const uint32_t lists = h.index().alive_lists();
  // Delete 90% of the rows: most lists fall below the merge bound.
  std::vector<uint32_t> gone;
  for (uint32_t r : h.live()) {
    if (r % 10 != 0) gone.push_back(r);
  }
  h.Delete(gone);
  h.Settle();
  h.Settle();  // merges found by the sweep happen in the cycle after it
  EXPECT_GT(h.index().LiveStats().merges, 0u);
  EXPECT_LT(h.index().alive_lists(), lists);
  ExpectHealthy(&h);
  h.ExpectSelfFound(100);
  EXPECT_GE(h.Recall(50, 32), 0.9);
  // The sweep dropped the deleted rows' entries.
  EXPECT_LT(h.Check().dead_entries, h.Check().valid_entries);
}

TEST_P(LivingIndexTest, CheckpointsAndJournalReopenToTheSameIndex) {
  Harness h(GetParam(), 4);
  AddRandom(&h, 1000);
  h.Build(16);
  h.Open(/*checkpoint_bytes=*/4096);  // a checkpoint every few cycles
  for (int round = 0; round < 6; ++round) {
    AddRandom(&h, 400);
    h.Assign();
    h.Settle();
    std::vector<std::vector<uint32_t>> before;
    std::vector<std::vector<float>> qs;
    for (int i = 0; i < 10; ++i) {
      qs.push_back(h.Point(static_cast<uint32_t>(i)));
      before.push_back(h.Search(qs.back(), 10, 16));
    }
    h.Open(4096);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(h.Search(qs[i], 10, 16), before[i]) << round;
    ExpectHealthy(&h);
  }
  EXPECT_TRUE(fs::exists(h.idx_dir() + "/" + kSpannCheckpointFile));
}

TEST_P(LivingIndexTest, ACrashMidCycleReopensToTheLastCommittedCycle) {
  // A crash in the middle of a cycle leaves lists written to new pages that no record names, and
  // part of the cycle's record at the end of the journal: the index reopens as the committed
  // cycles made it (those pages free again, the torn record cut off), every row they made
  // durable reachable; the rows after that are assigned again.
  Harness h(GetParam(), 5);
  AddRandom(&h, 1000);
  h.Build(16);
  const std::string log = h.idx_dir() + "/" + kSpannJournalFile;
  const std::string postings = h.idx_dir() + "/" + kSpannPostingFile;
  std::mt19937_64 rng(9);
  for (int round = 0; round < 5; ++round) {
    AddRandom(&h, 500);
    h.Assign();
    h.Settle();
    const uint64_t rows = h.index().durable_rows();
    AddRandom(&h, 300);  // the cycle the crash interrupts
    h.Assign();
    {
      // Its lists: pages past the committed ones, never named by a record.
      std::ofstream f(postings, std::ios::binary | std::ios::app);
      std::vector<char> junk(4096 * (1 + rng() % 6), static_cast<char>(rng()));
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
      // Its record, torn: a few bytes of a frame.
      std::ofstream j(log, std::ios::binary | std::ios::app);
      std::vector<char> part(1 + rng() % 40, static_cast<char>(rng()));
      j.write(part.data(), static_cast<std::streamsize>(part.size()));
    }
    h.Open();
    EXPECT_EQ(h.index().durable_rows(), rows) << round;
    ExpectHealthy(&h);
    h.Assign();
    h.Settle();
    ExpectHealthy(&h);
    h.ExpectSelfFound(50);
  }
}

TEST_P(LivingIndexTest, PartialCyclesAndARestartBetweenThem) {
  // A cycle writes at most 256 lists of ~1,100: rows whose other lists wait stay in the delta
  // with some entries on SSD already. A restart then assigns them again, with a new version that
  // makes those entries stale: no row is lost, none is served twice.
  Harness h(GetParam(), 6);
  AddRandom(&h, 6000);
  h.Build(16);
  h.Open(uint64_t{32} << 20, /*cycle_share=*/0.01);
  ASSERT_GT(h.index().alive_lists(), 800u);
  AddRandom(&h, 3000);
  h.Assign();
  h.Cycle();
  EXPECT_LT(h.index().durable_rows(), h.rows());  // a partial cycle
  ExpectHealthy(&h);
  h.ExpectSelfFound(100);
  h.Open(uint64_t{32} << 20, 0.01);  // restart between cycles
  EXPECT_LT(h.index().durable_rows(), h.rows());
  h.Assign();
  h.Settle();
  EXPECT_EQ(h.index().durable_rows(), h.rows());
  const SpannCheckReport r = h.Check();
  EXPECT_TRUE(r.ok()) << r.ToString();
  EXPECT_GT(r.stale_entries, 0u);  // the first run's entries of rows assigned again
  h.ExpectSelfFound(200);
  EXPECT_GE(h.Recall(50, 32), 0.9);
  for (int i = 0; i < 20; ++i) {
    const auto got = h.Search(h.Point(static_cast<uint32_t>(i % h.clusters())), 20, 32);
    std::set<uint32_t> unique(got.begin(), got.end());
    EXPECT_EQ(unique.size(), got.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, LivingIndexTest,
                         ::testing::Values(index::PostingLayout::kFull, index::PostingLayout::kPq8),
                         [](const auto& info) { return index::PostingLayoutName(info.param); });

}  // namespace
}  // namespace vectord
