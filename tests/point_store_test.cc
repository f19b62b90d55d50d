// PointStore: ids (integer, large integer, UUID), payloads and payload indexes across restarts
// (checkpoint + oplog replay, and the one-time scan of a directory written before checkpoints),
// crash windows (oplog without checkpoint, checkpoint with its oplog range not yet deleted, row id
// file longer / shorter / damaged, damaged checkpoint, a commit not applied, lost rows), read
// views, scroll order and paging, filters against the reference evaluator, index DDL, memory
// accounting, a checkpoint beside a writer, and an open of 1M points that reads only the oplog
// tail (counted in records read, not timed).
#include "src/points/point_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "src/points/point_checkpoint.h"
#include "storage/file_util.h"
#include "tests/filter_reference.h"

namespace vectord::points {
namespace {

using T = PayloadSchemaType;
using Indexes = std::vector<std::pair<std::string, PayloadSchemaType>>;

constexpr uint32_t kCid = 3;

PointId Uuid(uint32_t n) {
  std::array<uint8_t, 16> u{};
  for (int i = 0; i < 4; ++i) u[12 + i] = static_cast<uint8_t>(n >> (24 - 8 * i));
  u[0] = 0xAB;
  return PointId::Uuid(u);
}

// Integer ids, integers >= 2^63 (kept in RocksDB, not the row id file) and UUIDs.
PointId MixedId(uint32_t i) {
  switch (i % 3) {
    case 0:
      return PointId::Num(i);
    case 1:
      return PointId::Num((uint64_t{1} << 63) + i);
    default:
      return Uuid(i);
  }
}

Json PayloadOf(uint32_t i, uint32_t version) {
  if (i % 11 == 0) return Json();  // no payload
  Json p{{"k", "c" + std::to_string((i + version) % 7)},
         {"n", static_cast<int64_t>((i * 7 + version) % 50) - 10},
         {"f", ((i + version) % 97) * 0.5},
         {"b", (i + version) % 2 == 0}};
  if (i % 13 == 0) p["n"] = "not a number";
  return p;
}

class PointStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (std::filesystem::temp_directory_path() /
             ("point_store_test_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    OpenMeta();
  }
  void TearDown() override {
    meta_.reset();
    std::filesystem::remove_all(root_);
  }
  void OpenMeta() {
    meta_.reset();
    auto m = storage::MetadataStore::Open(root_ + "/meta", 16 << 20);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    meta_ = std::move(m).value();
  }
  std::string Dir() const { return root_ + "/points"; }
  PointStoreOptions Options(const Indexes& indexes) {
    PointStoreOptions o;
    o.dir = Dir();
    o.cid = kCid;
    o.meta = meta_.get();
    o.indexes = indexes;
    o.range = range_;
    return o;
  }
  std::unique_ptr<PointStore> Open(const Indexes& indexes, uint64_t available = UINT64_MAX) {
    PointStoreOptions o = Options(indexes);
    o.available_rows = available;
    auto s = PointStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  // A restart: the store and the RocksDB closed and opened again.
  std::unique_ptr<PointStore> Reopen(std::unique_ptr<PointStore>* s, const Indexes& indexes) {
    s->reset();
    OpenMeta();
    return Open(indexes);
  }

  // Write operations through the prepare / commit / apply path, kept in the model.
  void Upsert(PointStore& s, const std::vector<PointId>& ids, const std::vector<Json>& payloads) {
    storage::MetaBatch b(kCid);
    Result<PointStore::Write> w = Status::Internal("not prepared");
    {
      std::shared_lock l(mu_);  // Prepare* runs under the shared lock
      w = s.PrepareUpsert(ids, payloads, &b);
    }
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(meta_->Commit(b, false).ok());
    std::unique_lock l(mu_);
    s.Apply(std::move(w).value());
    for (size_t i = 0; i < ids.size(); ++i) model_[ids[i]] = payloads[i];
  }
  void Delete(PointStore& s, const std::vector<PointId>& ids) {
    std::shared_lock sl(mu_);
    auto rows = s.RowsOf(ids);
    ASSERT_TRUE(rows.ok());
    std::vector<InternalId> live;
    for (InternalId r : *rows) {
      if (r != kInvalidInternalId) live.push_back(r);
    }
    storage::MetaBatch b(kCid);
    auto w = s.PrepareDelete(live, &b);
    sl.unlock();
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(meta_->Commit(b, false).ok());
    std::unique_lock l(mu_);
    s.Apply(std::move(w).value());
    for (const auto& id : ids) model_.erase(id);
  }
  void SetPayloads(PointStore& s, const std::vector<PointId>& ids, const std::vector<Json>& p) {
    std::shared_lock sl(mu_);
    auto rows = s.RowsOf(ids);
    ASSERT_TRUE(rows.ok());
    storage::MetaBatch b(kCid);
    auto w = s.PreparePayloads(*rows, p, &b);
    sl.unlock();
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(meta_->Commit(b, false).ok());
    std::unique_lock l(mu_);
    s.Apply(std::move(w).value());
    for (size_t i = 0; i < ids.size(); ++i) model_[ids[i]] = p[i];
  }
  // Upserts n points MixedId(first..first+n) with PayloadOf(i, version), in batches of 100.
  void Fill(PointStore& s, uint32_t first, uint32_t n, uint32_t version) {
    for (uint32_t b = first; b < first + n; b += 100) {
      std::vector<PointId> ids;
      std::vector<Json> ps;
      for (uint32_t i = b; i < std::min(first + n, b + 100); ++i) {
        ids.push_back(MixedId(i));
        ps.push_back(PayloadOf(i, version));
      }
      Upsert(s, ids, ps);
    }
  }
  void Checkpoint(PointStore& s) {
    Status st = s.Checkpoint(mu_);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // Everything the store answers about points against the model.
  void ExpectModel(const PointStore& s) {
    ASSERT_EQ(s.live_count(), model_.size());
    std::vector<PointId> ids;
    for (const auto& [id, p] : model_) ids.push_back(id);
    ids.push_back(PointId::Num(999999999));  // absent
    auto rows = s.RowsOf(ids);
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_EQ(rows->back(), kInvalidInternalId);
    rows->pop_back();
    ids.pop_back();
    for (InternalId r : *rows) ASSERT_TRUE(s.IsLive(r));
    auto back = s.IdsOf(*rows);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, ids);
    auto payloads = s.Payloads(*rows);
    ASSERT_TRUE(payloads.ok());
    size_t i = 0;
    for (const auto& [id, p] : model_) {
      const Json want = p.is_object() && !p.empty() ? p : Json();
      ASSERT_EQ((*payloads)[i], want) << id.ToString();
      ++i;
    }
    // Scroll in pages of 7: every id once, in order.
    std::vector<PointId> scrolled;
    std::optional<PointId> from;
    do {
      auto page = s.Scroll(from, nullptr, 7);
      ASSERT_TRUE(page.ok());
      for (const auto& [id, row] : page->points) scrolled.push_back(id);
      from = page->next;
    } while (from);
    EXPECT_EQ(scrolled, ids);
  }
  // Select of `filter` against the non-indexed evaluator over the model's payloads.
  void ExpectSelect(const PointStore& s, const std::string& filter) {
    auto f = ParseFilter(Json::parse(filter));
    ASSERT_TRUE(f.ok());
    std::set<PointId> want;
    for (const auto& [id, p] : model_) {
      const Json* pp = p.is_object() && !p.empty() ? &p : nullptr;
      if (index::MatchesPayload(**f, pp, &id)) want.insert(id);
    }
    auto rows = s.Select(**f);
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    std::vector<InternalId> r(rows->cardinality());
    rows->toUint32Array(r.data());
    auto ids = s.IdsOf(r);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(std::set<PointId>(ids->begin(), ids->end()), want) << filter;
  }
  void ExpectFilters(const PointStore& s) {
    for (const char* f : {
             R"({"must": [{"key": "k", "match": {"value": "c3"}}]})",
             R"({"must": [{"key": "n", "range": {"gte": -2, "lt": 15}}]})",
             R"({"must": [{"key": "n", "match": {"any": [0, 5, 7]}}]})",
             R"({"must": [{"key": "f", "range": {"gt": 10.5, "lte": 30}}]})",
             R"({"must": [{"key": "b", "match": {"value": true}}],
                 "must_not": [{"key": "f", "range": {"lt": 20}}]})",
             R"({"should": [{"key": "n", "match": {"value": "not a number"}},
                            {"key": "k", "match": {"value": "c0"}}]})",
             R"({"must": [{"is_empty": {"key": "k"}}]})",
         }) {
      ExpectSelect(s, f);
    }
  }

  std::string root_;
  std::unique_ptr<storage::MetadataStore> meta_;
  std::shared_mutex mu_;
  std::map<PointId, Json> model_;
  RangeRunsOptions range_ = SmallTails();

 private:
  static RangeRunsOptions SmallTails() {
    RangeRunsOptions o;
    o.tail_entries = 256;  // runs form quickly
    return o;
  }
};

const Indexes kAll = {{"k", T::kKeyword}, {"n", T::kInteger}, {"f", T::kFloat}, {"b", T::kBool}};

TEST_F(PointStoreTest, RestartReplaysTheOplogAfterTheCheckpoint) {
  auto s = Open(kAll);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->open_stats().full_scan);  // a new store: an empty scan writes the checkpoint
  for (uint32_t b = 0; b < 10; ++b) {
    std::vector<PointId> ids;
    std::vector<Json> ps;
    for (uint32_t i = b * 100; i < b * 100 + 100; ++i) {
      ids.push_back(MixedId(i));
      ps.push_back(PayloadOf(i, 0));
    }
    Upsert(*s, ids, ps);
  }
  ExpectModel(*s);
  ExpectFilters(*s);
  Checkpoint(*s);
  // After the checkpoint: replacements, deletes, payload changes, new points.
  std::vector<PointId> ids;
  std::vector<Json> ps;
  for (uint32_t i = 0; i < 1000; i += 9) {
    ids.push_back(MixedId(i));
    ps.push_back(PayloadOf(i, 1));
  }
  ids.push_back(MixedId(5000));
  ps.push_back(PayloadOf(5000, 0));
  Upsert(*s, ids, ps);
  Delete(*s, {MixedId(10), MixedId(11), MixedId(12), MixedId(5000)});
  ids.clear();
  ps.clear();
  for (uint32_t i = 1; i < 1000; i += 17) {
    ids.push_back(MixedId(i));
    ps.push_back(i % 2 ? PayloadOf(i, 2) : Json::object());
  }
  SetPayloads(*s, ids, ps);
  ExpectModel(*s);
  ExpectFilters(*s);

  s = Reopen(&s, kAll);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->open_stats().checkpoint_loaded);
  EXPECT_FALSE(s->open_stats().full_scan);
  EXPECT_EQ(s->open_stats().oplog_records, 3u);
  ExpectModel(*s);
  ExpectFilters(*s);

  // The second checkpoint takes the oplog with it.
  Checkpoint(*s);
  EXPECT_EQ(meta_->LastOplogSeq(kCid).value(), 0u);
  s = Reopen(&s, kAll);
  EXPECT_EQ(s->open_stats().oplog_records, 0u);
  EXPECT_EQ(s->open_stats().replayed_rows, 0u);
  ExpectModel(*s);
  ExpectFilters(*s);
  // Writes go on after the restart.
  Upsert(*s, {MixedId(7000), MixedId(1)}, {PayloadOf(7000, 0), PayloadOf(1, 5)});
  ExpectModel(*s);
  ExpectFilters(*s);
}

TEST_F(PointStoreTest, MigratesADirectoryWrittenWithoutCheckpoints) {
  // The records the engine wrote before the point store: id map both ways (the reverse key
  // removed for replaced rows), payloads, tombstones, the row count. No points/ directory.
  {
    storage::MetaBatch b(kCid);
    for (uint32_t i = 0; i < 300; ++i) {
      b.MapId(MixedId(i), i);
      b.PutPayload(i, PayloadOf(i, 0));
      model_[MixedId(i)] = PayloadOf(i, 0);
    }
    // Point 5 replaced by row 300, point 6 deleted.
    b.UnmapRow(5);
    b.Tombstone(5);
    b.DeletePayload(5);
    b.MapId(MixedId(5), 300);
    b.PutPayload(300, PayloadOf(5, 9));
    model_[MixedId(5)] = PayloadOf(5, 9);
    b.UnmapId(MixedId(6), 6);
    b.Tombstone(6);
    b.DeletePayload(6);
    model_.erase(MixedId(6));
    b.SetRows(301);
    ASSERT_TRUE(meta_->Commit(b, true).ok());
  }
  const uint64_t before = meta_->records_read();
  auto s = Open(kAll);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->open_stats().full_scan);
  EXPECT_EQ(s->open_stats().built_indexes, 4u);
  // One pass over every record: 299 row -> id keys, 271 payloads, 2 tombstones.
  EXPECT_GE(meta_->records_read() - before, 572u);
  EXPECT_TRUE(std::filesystem::exists(Dir() + "/" + kCheckpointFile));
  EXPECT_EQ(s->rows(), 301u);
  ExpectModel(*s);
  ExpectFilters(*s);
  s = Reopen(&s, kAll);
  EXPECT_TRUE(s->open_stats().checkpoint_loaded);
  EXPECT_LT(meta_->records_read(), 10u);  // the checkpoint, no record
  ExpectModel(*s);
  ExpectFilters(*s);
}

TEST_F(PointStoreTest, CrashWindows) {
  auto s = Open(kAll);
  Fill(*s, 0, 500, 0);
  Checkpoint(*s);
  std::vector<std::pair<uint64_t, std::string>> old_log;
  Fill(*s, 100, 200, 1);  // replaces points 100..299
  ASSERT_TRUE(meta_
                  ->ForEachOplog(kCid, 0,
                                 [&](uint64_t seq, std::string_view rec) {
                                   old_log.emplace_back(seq, std::string(rec));
                                   return Status::OK();
                                 })
                  .ok());
  ASSERT_FALSE(old_log.empty());

  // (1) A checkpoint written, then a crash before its oplog range was deleted: the records come
  // back; they are not replayed again and go with the next checkpoint.
  Checkpoint(*s);
  {
    storage::MetaBatch b(kCid);
    for (auto& [seq, rec] : old_log) b.PutOplog(seq, rec);
    ASSERT_TRUE(meta_->Commit(b, true).ok());
  }
  s = Reopen(&s, kAll);
  EXPECT_EQ(s->open_stats().oplog_records, 0u);
  ExpectModel(*s);
  ExpectFilters(*s);
  Fill(*s, 600, 10, 0);
  Checkpoint(*s);
  EXPECT_EQ(meta_->LastOplogSeq(kCid).value(), 0u);

  // (2) A commit that was never applied (crash between commit and apply), and oplog records
  // without a checkpoint after them.
  Fill(*s, 700, 100, 0);
  {
    storage::MetaBatch b(kCid);
    std::vector<PointId> ids = {MixedId(800), MixedId(3)};
    std::vector<Json> ps = {PayloadOf(800, 0), PayloadOf(3, 4)};
    auto w = s->PrepareUpsert(ids, ps, &b);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(meta_->Commit(b, true).ok());
    model_[ids[0]] = ps[0];
    model_[ids[1]] = ps[1];
  }
  s = Reopen(&s, kAll);
  EXPECT_GT(s->open_stats().oplog_records, 0u);
  ExpectModel(*s);
  ExpectFilters(*s);

  // (3) A prepared write never committed: its row ids were appended (the file is longer than
  // the committed rows).
  const uint64_t rows = s->rows();
  {
    storage::MetaBatch b(kCid);
    auto w = s->PrepareUpsert(std::vector<PointId>{MixedId(900), MixedId(901)},
                              {Json{{"k", "x"}}, Json()}, &b);
    ASSERT_TRUE(w.ok());
  }
  s = Reopen(&s, kAll);
  EXPECT_EQ(s->rows(), rows);
  ExpectModel(*s);
  Fill(*s, 900, 3, 0);  // the rows are given out again, with the right ids
  ExpectModel(*s);
  ExpectFilters(*s);

  // (4) The row id file shorter than the committed rows (not synced before a power loss), then
  // missing altogether, then damaged: rebuilt from RocksDB's row -> id keys.
  Checkpoint(*s);
  Fill(*s, 1000, 100, 0);
  s.reset();
  std::filesystem::resize_file(Dir() + "/" + kRowIdFile,
                               storage::RowIdFile::kHeaderBytes + 512 * 3);
  s = Reopen(&s, kAll);
  ExpectModel(*s);
  s.reset();
  std::filesystem::remove(Dir() + "/" + kRowIdFile);
  s = Reopen(&s, kAll);
  ExpectModel(*s);

  // (5) A damaged checkpoint: one full scan rebuilds everything.
  s.reset();
  {
    std::string bytes = storage::ReadWholeFile(Dir() + "/" + kCheckpointFile, "ckpt").value();
    bytes[bytes.size() / 2] ^= 1;
    ASSERT_TRUE(storage::WriteFileAtomic(Dir() + "/" + kCheckpointFile, bytes).ok());
  }
  s = Reopen(&s, kAll);
  EXPECT_TRUE(s->open_stats().full_scan);
  EXPECT_NE(s->open_stats().scan_reason.find("checksum"), std::string::npos)
      << s->open_stats().scan_reason;
  ExpectModel(*s);
  ExpectFilters(*s);
  s = Reopen(&s, kAll);
  EXPECT_TRUE(s->open_stats().checkpoint_loaded);
  ExpectModel(*s);
}

TEST_F(PointStoreTest, AbortUndoesTheAppendAndLostRowsAreDropped) {
  auto s = Open(kAll);
  Fill(*s, 0, 50, 0);
  {
    storage::MetaBatch b(kCid);
    auto w = s->PrepareUpsert(std::vector<PointId>{MixedId(77)}, {Json{{"k", "c1"}}}, &b);
    ASSERT_TRUE(w.ok());
    s->Abort(std::move(w).value());  // the commit failed
  }
  EXPECT_EQ(s->rows(), 50u);
  {
    // A write prepared and dropped without Abort: the next one still gets rows from 50 on.
    storage::MetaBatch b(kCid);
    auto w = s->PrepareUpsert(std::vector<PointId>{MixedId(78), MixedId(79)}, {Json(), Json()}, &b);
    ASSERT_TRUE(w.ok());
  }
  Fill(*s, 60, 10, 0);
  ExpectModel(*s);
  // The vector file kept only 55 of the 60 rows (fsync off, machine down): the points of rows
  // 55..59 are dropped and those rows given out again without their old payloads.
  s.reset();
  OpenMeta();
  s = Open(kAll, 55);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->rows(), 55u);
  for (uint32_t i = 65; i < 70; ++i) model_.erase(MixedId(i));
  ExpectModel(*s);
  ExpectFilters(*s);
  Upsert(*s, {MixedId(2000), MixedId(2001)}, {Json(), Json{{"k", "c2"}}});
  ExpectModel(*s);
  ExpectFilters(*s);
  s = Reopen(&s, kAll);
  ExpectModel(*s);
  ExpectFilters(*s);
}

TEST_F(PointStoreTest, ReadersSeeTheLastAppliedWrite) {
  auto s = Open(kAll);
  Fill(*s, 0, 20, 0);
  storage::MetaBatch b(kCid);
  auto w = s->PrepareUpsert(std::vector<PointId>{MixedId(3), MixedId(100)},
                            {Json{{"k", "new"}}, Json{{"k", "new"}}}, &b);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(meta_->Commit(b, false).ok());
  // Committed, not applied: readers still see the state the live set and indexes describe.
  ExpectModel(*s);
  ExpectSelect(*s, R"({"must": [{"key": "k", "match": {"value": "new"}}]})");
  {
    std::unique_lock l(mu_);
    s->Apply(std::move(w).value());
  }
  model_[MixedId(3)] = Json{{"k", "new"}};
  model_[MixedId(100)] = Json{{"k", "new"}};
  ExpectModel(*s);
  ExpectSelect(*s, R"({"must": [{"key": "k", "match": {"value": "new"}}]})");
}

TEST_F(PointStoreTest, ScrollPagesInIdOrderWithFilters) {
  auto s = Open({{"n", T::kInteger}});
  Fill(*s, 0, 400, 0);
  auto f = ParseFilter(Json::parse(R"({"must": [{"key": "n", "range": {"gte": 0}}]})")).value();
  Roaring allowed = s->Select(*f).value();
  ASSERT_GT(allowed.cardinality(), 100u);
  std::vector<PointId> want;
  for (const auto& [id, p] : model_) {
    const Json* pp = p.is_object() && !p.empty() ? &p : nullptr;
    if (index::MatchesPayload(*f, pp, &id)) want.push_back(id);
  }
  // Starting points: the first id, an id in the middle that does not exist, the last one.
  for (std::optional<PointId> from :
       {std::optional<PointId>(), std::optional<PointId>(PointId::Num(200)),
        std::optional<PointId>(Uuid(0)), std::optional<PointId>(want.back())}) {
    std::vector<PointId> expect;
    for (const auto& id : want) {
      if (!from || !(id < *from)) expect.push_back(id);
    }
    for (size_t limit : {1u, 13u, 1000u}) {
      std::vector<PointId> got;
      std::optional<PointId> at = from;
      size_t pages = 0;
      do {
        auto page = s->Scroll(at, &allowed, limit);
        ASSERT_TRUE(page.ok());
        ASSERT_LE(page->points.size(), limit);
        for (const auto& [id, row] : page->points) {
          ASSERT_TRUE(allowed.contains(row));
          got.push_back(id);
        }
        at = page->next;
        ++pages;
        if (at) {
          ASSERT_EQ(page->points.size(), limit);
        }
      } while (at && pages < 1000);
      EXPECT_EQ(got, expect) << "limit " << limit;
    }
  }
  // Few matches (their ids sorted) and many (a walk over the id map) against the unfiltered walk.
  for (uint32_t every : {1u, 4u, 40u}) {
    Roaring some;
    uint32_t i = 0;
    for (uint32_t r : allowed) {
      if (i++ % every == 0) some.add(r);
    }
    std::vector<std::pair<PointId, InternalId>> want_all;
    std::optional<PointId> at;
    do {
      auto page = s->Scroll(at, nullptr, 50).value();
      for (const auto& p : page.points) {
        if (some.contains(p.second)) want_all.push_back(p);
      }
      at = page.next;
    } while (at);
    std::vector<std::pair<PointId, InternalId>> got_all;
    do {
      auto page = s->Scroll(at, &some, 3).value();
      got_all.insert(got_all.end(), page.points.begin(), page.points.end());
      at = page.next;
    } while (at);
    EXPECT_EQ(got_all, want_all) << every;
  }
}

// Filters over payloads read lazily from RocksDB (and indexes built from them) against the
// reference evaluator, with payload changes, deletes and restarts in between.
TEST_F(PointStoreTest, FiltersMatchTheReferenceEvaluator) {
  const Indexes layout = {{"kw", T::kKeyword},       {"num", T::kInteger},
                          {"flag", T::kBool},        {"tags", T::kKeyword},
                          {"obj.x", T::kFloat},      {"items[].k", T::kKeyword},
                          {"items[].v", T::kInteger}};
  filter_ref::RandomData rd(777);
  const int kRows = 200;
  auto s = Open(layout);
  std::map<PointId, Json> ref_id;  // point id -> its id as the reference evaluator writes it
  {
    std::vector<PointId> ids;
    std::vector<Json> ps;
    for (int r = 0; r < kRows; ++r) {
      const Json jid = filter_ref::RandomData::IdOf(r);
      ids.push_back(filter_ref::ToPointId(jid));
      ref_id[ids.back()] = jid;
      ps.push_back(rd.Payload());
    }
    Upsert(*s, ids, ps);
  }
  size_t selective = 0, total = 0;
  for (int iter = 0; iter < 160; ++iter) {
    const int op = rd.Int(0, 9);
    const PointId victim =
        filter_ref::ToPointId(filter_ref::RandomData::IdOf(rd.Int(0, kRows - 1)));
    if (op < 4 && model_.count(victim)) {
      SetPayloads(*s, {victim}, {rd.Payload()});
    } else if (op == 4 && model_.count(victim)) {
      Delete(*s, {victim});
    } else if (op == 5) {
      Upsert(*s, {victim}, {rd.Payload()});  // re-insert or replace: a new row
    }
    if (iter % 40 == 39) {
      if (rd.Coin()) Checkpoint(*s);
      s = Reopen(&s, layout);
      ASSERT_TRUE(s);
    }
    const Json fj = rd.Filter(1, false, kRows);
    auto f = ParseFilter(fj);
    ASSERT_TRUE(f.ok()) << fj.dump();
    std::set<PointId> want;
    for (const auto& [id, p] : model_) {
      const Json* pp = p.is_null() ? nullptr : &p;
      if (filter_ref::RefFilter(fj, pp, ref_id[id])) want.insert(id);
    }
    auto rows = s->Select(**f);
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    std::vector<InternalId> r(rows->cardinality());
    rows->toUint32Array(r.data());
    auto ids = s->IdsOf(r);
    ASSERT_TRUE(ids.ok());
    ASSERT_EQ(std::set<PointId>(ids->begin(), ids->end()), want) << fj.dump();
    ++total;
    selective += !want.empty() && want.size() < model_.size();
  }
  EXPECT_GT(selective, total / 4);
}

TEST_F(PointStoreTest, IndexBuildInstallDropAndOpenBuildsMissingOnes) {
  auto s = Open({});
  Fill(*s, 0, 300, 0);
  Checkpoint(*s);
  {
    auto built = s->BuildIndex("f", T::kFloat);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    std::unique_lock l(mu_);
    s->InstallIndex(std::move(built).value());
  }
  EXPECT_TRUE(s->CheckpointDue());
  ExpectSelect(*s, R"({"must": [{"key": "f", "range": {"gt": 10.5, "lte": 30}}]})");
  EXPECT_EQ(s->BuildIndex("a..b", T::kKeyword).status().code(), Status::Code::kInvalidArgument);
  // Restart before a checkpoint holds the new index: the catalog names it, open builds it.
  s = Reopen(&s, {{"f", T::kFloat}, {"k", T::kKeyword}});
  EXPECT_TRUE(s->open_stats().checkpoint_loaded);
  EXPECT_EQ(s->open_stats().built_indexes, 2u);
  ExpectFilters(*s);
  Checkpoint(*s);
  s = Reopen(&s, {{"f", T::kFloat}});  // k dropped from the catalog while down
  EXPECT_EQ(s->open_stats().built_indexes, 0u);
  EXPECT_EQ(s->IndexList().size(), 1u);
  {
    std::unique_lock l(mu_);
    EXPECT_TRUE(s->DropIndex("f"));
    EXPECT_FALSE(s->DropIndex("f"));
  }
  ExpectFilters(*s);
}

TEST_F(PointStoreTest, RejectsBadWrites) {
  auto s = Open({});
  Fill(*s, 0, 10, 0);
  storage::MetaBatch b(kCid);
  auto dup = s->PrepareUpsert(std::vector<PointId>{PointId::Num(1), PointId::Num(1)},
                              {Json(), Json()}, &b);
  EXPECT_EQ(dup.status().code(), Status::Code::kInvalidArgument);
  auto bad = s->PrepareUpsert(std::vector<PointId>{PointId::Num(1)}, {Json(3)}, &b);
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  std::vector<InternalId> rows = {1000};
  EXPECT_EQ(s->PrepareDelete(rows, &b).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(b.Count(), 0u);
  EXPECT_EQ(s->rows(), 10u);
}

TEST_F(PointStoreTest, MemoryIsBrokenDownAndRangesLiveOnDisk) {
  auto s = Open({{"f", T::kFloat}, {"k", T::kKeyword}});
  Fill(*s, 0, 5000, 0);
  Checkpoint(*s);
  PointStoreMemory m = s->MemoryBytes();
  ASSERT_EQ(m.payload_indexes.size(), 2u);
  EXPECT_EQ(m.payload_indexes[0].first, "f");
  // 4,545 float entries on disk: fences and bookkeeping only, far below 16 bytes an entry.
  EXPECT_LT(m.payload_indexes[0].second, 4545u * 4);
  EXPECT_GT(m.live_set, 0u);
  EXPECT_EQ(m.total(),
            m.live_set + m.row_ids + m.payload_indexes[0].second + m.payload_indexes[1].second);
  EXPECT_FALSE(s->CheckpointDue());
}

TEST_F(PointStoreTest, CheckpointBesideAWriter) {
  auto s = Open(kAll);
  Fill(*s, 0, 200, 0);
  std::atomic<bool> writer_done{false};
  Status failed;
  int checkpoints = 0;
  std::thread bg([&] {
    do {
      failed = s->Checkpoint(mu_);
      ++checkpoints;
    } while (!writer_done && failed.ok());
  });
  for (uint32_t round = 1; round <= 30; ++round) {
    std::vector<PointId> ids;
    std::vector<Json> ps;
    for (uint32_t i = round * 7 % 50; i < 300; i += 5) {
      ids.push_back(MixedId(i));
      ps.push_back(PayloadOf(i, round));
    }
    Upsert(*s, ids, ps);
  }
  writer_done = true;
  bg.join();
  ASSERT_TRUE(failed.ok()) << failed.ToString();
  EXPECT_GT(checkpoints, 0);
  ExpectModel(*s);
  ExpectFilters(*s);
  s = Reopen(&s, kAll);
  ExpectModel(*s);
  ExpectFilters(*s);
}

// 1M points written through the batch path; after a checkpoint and a small tail of writes, open
// reads the tail, not the points (counted in records read).
TEST_F(PointStoreTest, OpenOfAMillionPointsReadsOnlyTheOplogTail) {
  constexpr uint32_t kPoints = 1000000, kBatch = 20000;
  range_ = RangeRunsOptions();
  // Every fourth point has a payload (an integer index on it), so that most keys are ids.
  auto n_of = [](uint32_t id) -> std::optional<int64_t> {
    if (id % 4 != 0) return std::nullopt;
    return (id / 4) % 100;
  };
  auto s = Open({{"n", T::kInteger}});
  for (uint32_t first = 0; first < kPoints; first += kBatch) {
    std::vector<PointId> ids(kBatch);
    std::vector<Json> ps(kBatch);
    for (uint32_t i = 0; i < kBatch; ++i) {
      ids[i] = PointId::Num(first + i);
      if (auto n = n_of(first + i)) ps[i] = Json{{"n", *n}};
    }
    storage::MetaBatch b(kCid);
    auto w = s->PrepareUpsert(ids, std::move(ps), &b);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(meta_->Commit(b, false).ok());
    s->Apply(std::move(w).value());
  }
  Checkpoint(*s);
  // The tail: 1,000 points replaced (new rows, the old ones tombstoned).
  std::set<uint32_t> replaced;
  {
    std::vector<PointId> ids;
    std::vector<Json> ps;
    for (uint32_t i = 0; i < 1000; ++i) {
      replaced.insert(i * 997);
      ids.push_back(PointId::Num(i * 997));
      ps.push_back(Json{{"n", 1000 + i}});
    }
    storage::MetaBatch b(kCid);
    auto w = s->PrepareUpsert(ids, std::move(ps), &b);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(meta_->Commit(b, false).ok());
    s->Apply(std::move(w).value());
  }
  s = Reopen(&s, {{"n", T::kInteger}});
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->open_stats().checkpoint_loaded);
  EXPECT_EQ(s->open_stats().replayed_rows, 2000u);
  const uint64_t read = meta_->records_read();
  EXPECT_LT(read, kPoints / 100) << "open read " << read << " records";
  EXPECT_EQ(s->live_count(), kPoints);
  uint64_t threes = 0;
  for (uint32_t id = 0; id < kPoints; ++id) threes += n_of(id) == 3 && !replaced.count(id);
  auto f = ParseFilter(Json::parse(R"({"must": [{"key": "n", "range": {"gte": 1000}}]})")).value();
  EXPECT_EQ(s->Select(*f).value().cardinality(), 1000u);
  f = ParseFilter(Json::parse(R"({"must": [{"key": "n", "match": {"value": 3}}]})")).value();
  EXPECT_EQ(s->Select(*f).value().cardinality(), threes);
  EXPECT_EQ(s->IdOf(s->RowOf(PointId::Num(997)).value().value()).value(), PointId::Num(997));
}

}  // namespace
}  // namespace vectord::points
