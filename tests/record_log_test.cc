// Tests for the record log (storage/record_log.h): round trips and sequence numbers, a torn last
// record at every byte offset, damage before intact records (Corruption when those records say it
// was durable, a lost unsynced tail otherwise), Reset and its crash windows, and random operations
// against a model.
#include "storage/record_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace vectord::storage {
namespace {

namespace fs = std::filesystem;

struct Replayed {
  std::vector<uint64_t> seqs;
  std::vector<std::string> records;
};

class RecordLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "record_log_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/journal.log";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Opens path_; *out (if given) receives what was replayed.
  Result<std::unique_ptr<RecordLog>> OpenLog(Replayed* out = nullptr) {
    Replayed local;
    Replayed* r = out != nullptr ? out : &local;
    *r = Replayed{};
    return RecordLog::Open(path_, [r](uint64_t seq, std::string_view rec) {
      r->seqs.push_back(seq);
      r->records.emplace_back(rec);
      return Status::OK();
    });
  }
  // Opens path_ and asserts that it replays exactly `want`, numbered from `first_seq`.
  std::unique_ptr<RecordLog> OpenExpecting(const std::vector<std::string>& want,
                                           uint64_t first_seq = 0) {
    Replayed r;
    auto log = OpenLog(&r);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    if (!log.ok()) return nullptr;
    EXPECT_EQ(r.records, want);
    std::vector<uint64_t> seqs;
    for (size_t i = 0; i < want.size(); ++i) seqs.push_back(first_seq + i);
    EXPECT_EQ(r.seqs, seqs);
    EXPECT_EQ((*log)->next_seq(), first_seq + want.size());
    EXPECT_EQ((*log)->bytes(), fs::file_size(path_));
    return std::move(log).value();
  }

  static std::string Record(uint32_t bytes, uint32_t seed) {
    std::string s(bytes, '\0');
    std::mt19937 rng(seed);
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  }
  // File offset of record k of a log whose records (from its first) have these sizes.
  static uint64_t OffsetOf(const std::vector<std::string>& records, size_t k) {
    uint64_t off = RecordLog::kHeaderBytes;
    for (size_t i = 0; i < k; ++i) off += RecordLog::kFrameBytes + records[i].size();
    return off;
  }

  std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void WriteAll(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  std::string dir_;
  std::string path_;
};

TEST_F(RecordLogTest, AppendsReplayInOrderWithSequenceNumbers) {
  std::vector<std::string> want;
  {
    auto log = OpenExpecting({});
    ASSERT_NE(log, nullptr);
    EXPECT_TRUE(fs::exists(path_));
    EXPECT_EQ(log->bytes(), RecordLog::kHeaderBytes);
    for (uint32_t size : {0u, 1u, 100u, 70000u, 3u}) {
      want.push_back(Record(size, size));
      ASSERT_TRUE(log->Append(want.back(), /*sync=*/size % 2 == 0).ok());
      EXPECT_EQ(log->bytes(), fs::file_size(path_));
    }
    EXPECT_EQ(log->bytes(), OffsetOf(want, want.size()));
  }
  for (int round = 0; round < 2; ++round) {
    auto log = OpenExpecting(want);
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->cut_bytes(), 0u);
    want.push_back("round " + std::to_string(round));
    ASSERT_TRUE(log->Append(want.back(), false).ok());
  }
  OpenExpecting(want);
}

TEST_F(RecordLogTest, TornLastRecordIsCutAtEveryByteOffset) {
  std::vector<std::string> want = {"first", Record(300, 1), "third"};
  const std::string last = Record(45, 2);
  {
    auto log = OpenExpecting({});
    ASSERT_NE(log, nullptr);
    for (const auto& r : want) ASSERT_TRUE(log->Append(r, true).ok());
    ASSERT_TRUE(log->Append(last, true).ok());
  }
  const std::string full = ReadAll(path_);
  const uint64_t start = OffsetOf(want, 3);
  ASSERT_EQ(full.size(), start + RecordLog::kFrameBytes + last.size());
  for (uint64_t len = start; len < full.size(); ++len) {
    SCOPED_TRACE("file cut at " + std::to_string(len));
    WriteAll(path_, full.substr(0, len));
    {
      auto log = OpenExpecting(want);
      ASSERT_NE(log, nullptr);
      EXPECT_EQ(log->cut_bytes(), len - start);
      EXPECT_EQ(fs::file_size(path_), start);
      ASSERT_TRUE(log->Append("again", false).ok());
    }
    std::vector<std::string> after = want;
    after.push_back("again");
    OpenExpecting(after);
  }
  // A whole last record with garbage in it (a power failure after the size grew) and zeros after
  // the last record are torn tails too.
  for (const std::string& bad :
       {full.substr(0, full.size() - 10) + std::string(10, '\x5a'), full + std::string(4096, '\0'),
        full.substr(0, start) + std::string(full.size() - start, '\0')}) {
    WriteAll(path_, bad);
    auto log = OpenExpecting(bad.size() > full.size()
                                 ? std::vector<std::string>{"first", want[1], "third", last}
                                 : want);
    ASSERT_NE(log, nullptr);
  }
}

TEST_F(RecordLogTest, DamageBeforeDurableRecordsIsCorruption) {
  std::vector<std::string> want;
  {
    auto log = OpenExpecting({});
    ASSERT_NE(log, nullptr);
    for (uint32_t i = 0; i < 6; ++i) {
      want.push_back(Record(20 + i * 7, i));
      ASSERT_TRUE(log->Append(want.back(), /*sync=*/true).ok());
    }
  }
  const std::string good = ReadAll(path_);
  const uint64_t rec2 = OffsetOf(want, 2);
  // Payload bytes, every byte of the frame (its length field included, which hides where the
  // next record starts), and the last byte of the record.
  std::vector<uint64_t> positions;
  for (uint64_t b = 0; b < RecordLog::kFrameBytes; ++b) positions.push_back(rec2 + b);
  positions.push_back(rec2 + RecordLog::kFrameBytes + 3);
  positions.push_back(OffsetOf(want, 3) - 1);
  positions.push_back(OffsetOf(want, 0) + 30);  // the first record
  positions.push_back(OffsetOf(want, 4) + 2);   // the last record but one
  for (uint64_t pos : positions) {
    SCOPED_TRACE("flipped byte " + std::to_string(pos));
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x04);
    WriteAll(path_, bad);
    Replayed r;
    auto log = OpenLog(&r);
    ASSERT_FALSE(log.ok());
    EXPECT_EQ(log.status().code(), Status::Code::kCorruption);
    EXPECT_NE(log.status().message().find(path_), std::string::npos) << log.status().message();
    EXPECT_NE(log.status().message().find("at offset"), std::string::npos);
    EXPECT_TRUE(r.records.empty()) << "nothing is replayed from a damaged log";
    EXPECT_EQ(ReadAll(path_), bad) << "a damaged log is left as it is";
  }
  std::string bad = good;
  bad[rec2 + 40] = static_cast<char>(bad[rec2 + 40] ^ 1);
  WriteAll(path_, bad);
  const Status s = OpenLog().status();
  EXPECT_NE(s.message().find("record 2 at offset " + std::to_string(rec2)), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("payload checksum mismatch"), std::string::npos) << s.message();
}

TEST_F(RecordLogTest, RecordsReplayedAtOpenCountAsDurable) {
  // Appended without sync, but records appended after a reopen vouch for them: Open made them
  // durable.
  std::vector<std::string> want = {"a", "bb", "ccc"};
  {
    auto log = OpenExpecting({});
    ASSERT_NE(log, nullptr);
    for (const auto& r : want) ASSERT_TRUE(log->Append(r, false).ok());
  }
  {
    auto log = OpenExpecting(want);
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->Append("dddd", false).ok());
    want.push_back("dddd");
  }
  std::string bad = ReadAll(path_);
  const uint64_t pos = OffsetOf(want, 1) + RecordLog::kFrameBytes;
  bad[pos] = static_cast<char>(bad[pos] ^ 0x40);
  WriteAll(path_, bad);
  EXPECT_EQ(OpenLog().status().code(), Status::Code::kCorruption);
}

TEST_F(RecordLogTest, DamageInUnsyncedTailIsCutAsLostAppends) {
  // Records 0-2 synced, 3-5 not: a power failure may lose any of 3-5 (even one whose page missed
  // the disk while a later page made it), so damage there cuts the log at the damaged record.
  std::vector<std::string> want;
  {
    auto log = OpenExpecting({});
    ASSERT_NE(log, nullptr);
    for (uint32_t i = 0; i < 6; ++i) {
      want.push_back(Record(50, 10 + i));
      ASSERT_TRUE(log->Append(want.back(), /*sync=*/i == 2).ok());
    }
  }
  const std::string good = ReadAll(path_);
  for (size_t damaged : {3, 4}) {
    SCOPED_TRACE("damaged record " + std::to_string(damaged));
    std::string bad = good;
    const uint64_t pos = OffsetOf(want, damaged) + RecordLog::kFrameBytes + 7;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x01);
    WriteAll(path_, bad);
    auto log = OpenExpecting(std::vector<std::string>(want.begin(), want.begin() + damaged));
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->cut_bytes(), good.size() - OffsetOf(want, damaged));
  }
  // Record 2 was synced before record 3 was written: damage there is Corruption.
  std::string bad = good;
  bad[OffsetOf(want, 2) + 30] ^= 0x01;
  WriteAll(path_, bad);
  EXPECT_EQ(OpenLog().status().code(), Status::Code::kCorruption);
}

TEST_F(RecordLogTest, BadHeaderIsCorruption) {
  { ASSERT_NE(OpenExpecting({}), nullptr); }
  const std::string good = ReadAll(path_);
  for (const auto& [bytes, what] : std::vector<std::pair<std::string, std::string>>{
           {good.substr(0, 20), "shorter than"},
           {"X" + good.substr(1), "bad magic"},
           {good.substr(0, 17) + "\x01" + good.substr(18), "checksum"},
           {std::string(), "shorter than"}}) {
    WriteAll(path_, bytes);
    auto log = OpenLog();
    EXPECT_EQ(log.status().code(), Status::Code::kCorruption) << what;
    EXPECT_NE(log.status().message().find(what), std::string::npos) << log.status().message();
    EXPECT_NE(log.status().message().find(path_), std::string::npos) << log.status().message();
  }
}

TEST_F(RecordLogTest, ReplayErrorStopsOpenAndChangesNothing) {
  {
    auto log = OpenExpecting({});
    ASSERT_NE(log, nullptr);
    for (const char* r : {"x", "y", "z"}) ASSERT_TRUE(log->Append(r, false).ok());
  }
  const std::string before = ReadAll(path_);
  int calls = 0;
  auto log = RecordLog::Open(path_, [&](uint64_t seq, std::string_view) {
    ++calls;
    return seq == 1 ? Status::InvalidArgument("undecodable entry") : Status::OK();
  });
  EXPECT_EQ(log.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(log.status().message().find("record 1 at offset"), std::string::npos);
  EXPECT_NE(log.status().message().find("undecodable entry"), std::string::npos);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(ReadAll(path_), before);
  OpenExpecting({"x", "y", "z"});
}

TEST_F(RecordLogTest, ResetEmptiesLogAndSequenceNumbersContinue) {
  {
    auto log = OpenExpecting({});
    ASSERT_NE(log, nullptr);
    for (const char* r : {"a", "b", "c"}) ASSERT_TRUE(log->Append(r, true).ok());
    ASSERT_TRUE(log->Reset().ok());
    EXPECT_EQ(log->bytes(), RecordLog::kHeaderBytes);
    EXPECT_EQ(fs::file_size(path_), RecordLog::kHeaderBytes);
    EXPECT_EQ(log->first_seq(), 3u);
    EXPECT_EQ(log->next_seq(), 3u);
    EXPECT_FALSE(fs::exists(path_ + ".tmp"));
    ASSERT_TRUE(log->Append("d", false).ok());
    ASSERT_TRUE(log->Append("e", true).ok());
  }
  auto log = OpenExpecting({"d", "e"}, /*first_seq=*/3);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->first_seq(), 3u);
  // A damaged first record after a Reset is told apart the same way.
  log.reset();
  std::string bad = ReadAll(path_);
  bad[RecordLog::kHeaderBytes + RecordLog::kFrameBytes] ^= 0x01;  // payload of "d"
  WriteAll(path_, bad);
  EXPECT_EQ(OpenLog().status().code(), Status::Code::kCorruption);
}

TEST_F(RecordLogTest, ResetCrashWindows) {
  const std::vector<std::string> old = {"one", "two", "three"};
  // The bytes Reset produces for this log: a header with first sequence number 3.
  std::string reset_bytes;
  {
    auto log = OpenExpecting({});
    ASSERT_NE(log, nullptr);
    for (const auto& r : old) ASSERT_TRUE(log->Append(r, true).ok());
    const std::string old_bytes = ReadAll(path_);
    ASSERT_TRUE(log->Reset().ok());
    reset_bytes = ReadAll(path_);
    log.reset();
    WriteAll(path_, old_bytes);
  }
  const std::string tmp = path_ + ".tmp";
  // Crash while the temporary file was being written, or after it was synced but before the
  // rename: the old log is still the log, and the leftover is removed.
  for (const std::string& leftover :
       {std::string(), reset_bytes.substr(0, 10), reset_bytes, std::string("garbage")}) {
    WriteAll(tmp, leftover);
    auto log = OpenExpecting(old);
    ASSERT_NE(log, nullptr);
    EXPECT_FALSE(fs::exists(tmp));
  }
  // Crash after the rename: the empty log, numbering on from 3.
  WriteAll(path_, reset_bytes);
  auto log = OpenExpecting({}, 3);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->first_seq(), 3u);
  ASSERT_TRUE(log->Append("four", true).ok());
  log.reset();
  OpenExpecting({"four"}, 3);
}

// Random appends (synced or not), resets, reopens and torn last appends against a list of the
// records that must come back.
TEST_F(RecordLogTest, RandomizedAgainstModel) {
  std::mt19937 rng(99);
  std::vector<std::string> model;  // records since the last Reset
  uint64_t first_seq = 0;
  auto log = OpenExpecting({});
  ASSERT_NE(log, nullptr);
  for (int step = 0; step < 400; ++step) {
    const uint32_t op = rng() % 100;
    if (op < 70) {
      model.push_back(Record(rng() % 3 == 0 ? rng() % 5000 : rng() % 64, rng()));
      ASSERT_TRUE(log->Append(model.back(), rng() % 4 == 0).ok());
    } else if (op < 75) {
      ASSERT_TRUE(log->Reset().ok());
      first_seq += model.size();
      model.clear();
    } else if (op < 90) {
      log.reset();
      log = OpenExpecting(model, first_seq);
      ASSERT_NE(log, nullptr) << "step " << step;
    } else if (!model.empty()) {
      // The last append torn at a random byte: it is gone after the restart, the rest is not.
      log.reset();
      const uint64_t start = OffsetOf(model, model.size() - 1);
      const uint64_t len = start + rng() % (RecordLog::kFrameBytes + model.back().size());
      ASSERT_EQ(::truncate(path_.c_str(), static_cast<off_t>(len)), 0);
      model.pop_back();
      log = OpenExpecting(model, first_seq);
      ASSERT_NE(log, nullptr) << "step " << step;
    }
    ASSERT_EQ(log->bytes(), fs::file_size(path_)) << "step " << step;
    ASSERT_EQ(log->next_seq(), first_seq + model.size()) << "step " << step;
  }
  log.reset();
  OpenExpecting(model, first_seq);
}

}  // namespace
}  // namespace vectord::storage
