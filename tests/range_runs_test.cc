// RangeRuns (the on-disk numeric range index): randomized inserts, erases, updates and row-set
// erasures against a brute-force multiset, with tails frozen into runs and maintenance jobs
// (writes and size-tiered merges) planned, run while more changes arrive, and installed; bulk
// builds; restoring runs from their files; RunFiles' deletion rules.
#include "src/points/range_runs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>
#include <set>

namespace vectord::points {
namespace {

class RangeRunsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("range_runs_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::set<uint64_t> RunFilesOnDisk() const {
    std::set<uint64_t> ids;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      uint64_t id;
      if (RunFiles::ParseFileName(e.path().filename().string(), &id)) ids.insert(id);
    }
    return ids;
  }
  std::string dir_;
};

// The model: row -> its values.
using Model = std::map<InternalId, std::vector<double>>;

Roaring Want(const Model& m, const Range& r) {
  Roaring out;
  for (const auto& [row, vals] : m) {
    for (double v : vals) {
      if (r.Contains(v)) out.add(row);
    }
  }
  return out;
}

Roaring Got(const RangeRuns& rr, const Range& r) {
  std::vector<uint32_t> rows;
  EXPECT_TRUE(rr.CollectRange(r, &rows).ok());
  return index::RowsToRoaring(&rows);
}

Range RandomRange(std::mt19937& rng) {
  auto v = [&] { return static_cast<double>(static_cast<int>(rng() % 220) - 110) / 2; };
  Range r;
  if (rng() % 3) (rng() % 2 ? r.gt : r.gte) = v();
  if (rng() % 3) (rng() % 2 ? r.lt : r.lte) = v();
  return r;
}

TEST_F(RangeRunsTest, RandomizedAgainstBruteForceWithMaintenance) {
  RunFiles files(dir_, 1);
  RangeRunsOptions opt;
  opt.tail_entries = 64;  // many freezes
  RangeRuns rr(&files, opt);
  Model model;
  std::mt19937 rng(21);
  InternalId next_row = 0;
  auto values = [&] {
    std::vector<double> v;
    for (int n = 1 + static_cast<int>(rng() % 3); n > 0; --n) {
      v.push_back(static_cast<double>(static_cast<int>(rng() % 200) - 100) / 2);
    }
    return v;
  };
  auto insert = [&](InternalId row, const std::vector<double>& v) {
    for (double x : v) rr.Insert(x, row);
    model[row] = v;
  };
  auto erase = [&](InternalId row) {
    for (double x : model[row]) rr.Erase(x, row);
    model.erase(row);
  };
  auto random_row = [&]() -> std::optional<InternalId> {
    if (model.empty()) return std::nullopt;
    auto it = model.lower_bound(static_cast<InternalId>(rng() % (next_row + 1)));
    if (it == model.end()) it = model.begin();
    return it->first;
  };
  auto mutate = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const int op = static_cast<int>(rng() % 10);
      if (op < 5) {
        insert(next_row++, values());
      } else if (op < 7) {
        if (auto r = random_row()) erase(*r);
      } else if (op < 9) {
        if (auto r = random_row()) {  // an update in place: same row, new values
          erase(*r);
          insert(*r, values());
        }
      } else {
        Roaring rows;  // rows whose values are not known (the oplog replay)
        for (int k = 0; k < 5; ++k) {
          if (auto r = random_row()) {
            rows.add(*r);
            model.erase(*r);
          }
        }
        rr.EraseRows(rows);
      }
    }
  };
  for (int round = 0; round < 60; ++round) {
    mutate(120);
    if (round % 3 == 0) {
      // Maintenance with changes arriving between planning and installing.
      rr.FreezeTail();
      RangeRuns::Job job = rr.PlanMaintenance();
      mutate(40);
      ASSERT_TRUE(RangeRuns::RunJob(&files, &job).ok());
      mutate(40);
      rr.Install(std::move(job));
    }
    for (int q = 0; q < 20; ++q) {
      const Range r = RandomRange(rng);
      ASSERT_EQ(Got(rr, r), Want(model, r)) << "round " << round;
    }
  }
  // Maintenance until nothing is due: every in-RAM run written, size classes merged.
  for (int i = 0; i < 10 && rr.NeedsMaintenance(); ++i) {
    RangeRuns::Job job = rr.PlanMaintenance();
    ASSERT_TRUE(RangeRuns::RunJob(&files, &job).ok());
    rr.Install(std::move(job));
  }
  EXPECT_FALSE(rr.NeedsMaintenance());
  EXPECT_LE(rr.num_runs(), 12u);
  for (int q = 0; q < 50; ++q) {
    const Range r = RandomRange(rng);
    ASSERT_EQ(Got(rr, r), Want(model, r));
  }
  // Files on disk are exactly the runs in use (replaced runs were deleted).
  std::set<uint64_t> in_use;
  for (const auto& f : rr.FileRuns()) in_use.insert(f.id);
  EXPECT_EQ(RunFilesOnDisk(), in_use);
}

TEST_F(RangeRunsTest, BulkBuildWritesOneRunAndRestoresFromFiles) {
  RunFiles files(dir_, 1);
  RangeRunsOptions opt;
  opt.build_chunk_entries = 100;
  Model model;
  std::mt19937 rng(4);
  std::vector<RangeRuns::FileRun> saved;
  std::vector<Roaring> dead;
  {
    RangeRuns rr(&files, opt);
    rr.BeginBulk();
    for (InternalId row = 0; row < 2000; ++row) {
      const double v = static_cast<double>(rng() % 1000) / 10;
      rr.Insert(v, row);
      model[row] = {v};
    }
    ASSERT_TRUE(rr.EndBulk().ok());
    ASSERT_EQ(rr.num_runs(), 1u);
    EXPECT_EQ(RunFilesOnDisk().size(), 1u);  // the chunks were merged and deleted
    for (InternalId row = 0; row < 2000; row += 7) {
      rr.Erase(model[row][0], row);
      model.erase(row);
    }
    for (int q = 0; q < 30; ++q) {
      const Range r = RandomRange(rng);
      ASSERT_EQ(Got(rr, r), Want(model, r));
    }
    saved = rr.FileRuns();
    for (const auto& f : saved) dead.push_back(*f.dead);
    // A checkpoint names the file: it outlives this index.
    std::set<uint64_t> ids;
    for (const auto& f : saved) ids.insert(f.id);
    files.SetCheckpointed(ids);
  }
  ASSERT_EQ(RunFilesOnDisk().size(), 1u);
  RangeRuns restored(&files, opt);
  for (size_t i = 0; i < saved.size(); ++i) {
    auto run = OpenRun(&files, saved[i].id);
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    EXPECT_EQ((*run)->entries, saved[i].entries);
    restored.AddRestoredRun(std::move(run).value(), dead[i]);
  }
  for (int q = 0; q < 30; ++q) {
    const Range r = RandomRange(rng);
    ASSERT_EQ(Got(restored, r), Want(model, r));
  }
  // A float field costs disk: fences, the dead bitmap, no entries.
  EXPECT_LT(restored.MemoryBytes(), 4096u);
}

TEST_F(RangeRunsTest, RunFilesDeleteOnlyWhatNothingNeeds) {
  RunFiles files(dir_, 5);
  auto touch = [&](uint64_t id) { ::close(::creat(files.Path(id).c_str(), 0644)); };
  const uint64_t a = files.NewId(), b = files.NewId(), c = files.NewId();
  EXPECT_EQ(a, 5u);
  EXPECT_EQ(c, 7u);
  for (uint64_t id : {a, b, c}) touch(id);
  files.SetCheckpointed({a, b});
  files.Release(a);  // checkpointed: kept
  files.Release(c);  // neither: deleted
  EXPECT_EQ(RunFilesOnDisk(), (std::set<uint64_t>{a, b}));
  files.SetCheckpointed({b});  // a is now unneeded
  EXPECT_EQ(RunFilesOnDisk(), (std::set<uint64_t>{b}));
  files.Release(b);
  EXPECT_EQ(RunFilesOnDisk(), (std::set<uint64_t>{b}));  // still checkpointed
  // Sweep: stray files of a crash (unknown ids, temporaries) go.
  touch(40);
  ::close(::creat((dir_ + "/range-41.vdr.tmp").c_str(), 0644));
  ::close(::creat((dir_ + "/other.txt").c_str(), 0644));
  files.Sweep();
  EXPECT_EQ(RunFilesOnDisk(), (std::set<uint64_t>{b}));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/range-41.vdr.tmp"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/other.txt"));
  uint64_t id;
  EXPECT_TRUE(RunFiles::ParseFileName("range-12.vdr", &id));
  EXPECT_EQ(id, 12u);
  EXPECT_FALSE(RunFiles::ParseFileName("range-.vdr", &id));
  EXPECT_FALSE(RunFiles::ParseFileName("range-1x.vdr", &id));
}

}  // namespace
}  // namespace vectord::points
