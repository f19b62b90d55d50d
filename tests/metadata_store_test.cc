// MetadataStore: batched look-ups (MultiGet) of ids, rows, payloads and tombstones against what
// was committed, read views that do not see later commits, ordered id iteration, the payload
// cursor, row -> id scans, the oplog family, and the records-read counter.
#include "storage/metadata_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>

namespace vectord::storage {
namespace {

class MetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("meta_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto s = MetadataStore::Open(dir_.string(), 8 << 20);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<MetadataStore> store_;
};

PointId Uuid(uint8_t b) {
  std::array<uint8_t, 16> u{};
  u.fill(b);
  return PointId::Uuid(u);
}

TEST_F(MetadataStoreTest, MultiGetMatchesCommittedKeys) {
  MetaBatch b(7);
  std::vector<PointId> ids;
  for (uint32_t r = 0; r < 200; ++r) {
    PointId id = r % 3 == 0 ? Uuid(static_cast<uint8_t>(r)) : PointId::Num(1000 + r);
    ids.push_back(id);
    b.MapId(id, r);
    if (r % 2 == 0) b.PutPayload(r, Json{{"r", r}});
    if (r % 5 == 0) b.Tombstone(r);
  }
  MetaBatch other(8);  // another collection's keys never leak in
  other.MapId(PointId::Num(1005), 99);
  other.PutPayload(1, Json{{"x", 1}});
  ASSERT_TRUE(store_->Commit(b, false).ok());
  ASSERT_TRUE(store_->Commit(other, false).ok());

  // Reverse order plus ids that do not exist.
  std::vector<PointId> ask(ids.rbegin(), ids.rend());
  ask.push_back(PointId::Num(5));
  ask.push_back(Uuid(250));
  std::vector<InternalId> rows;
  ASSERT_TRUE(store_->GetRows(nullptr, 7, ask, &rows).ok());
  for (size_t i = 0; i < 200; ++i) EXPECT_EQ(rows[i], 199 - i);
  EXPECT_EQ(rows[200], kInvalidInternalId);
  EXPECT_EQ(rows[201], kInvalidInternalId);

  std::vector<InternalId> ask_rows = {5, 3, 0, 250, 199};
  std::vector<std::optional<PointId>> got_ids;
  ASSERT_TRUE(store_->GetIds(nullptr, 7, ask_rows, &got_ids).ok());
  EXPECT_EQ(*got_ids[0], ids[5]);
  EXPECT_EQ(*got_ids[1], ids[3]);
  EXPECT_EQ(*got_ids[2], ids[0]);
  EXPECT_FALSE(got_ids[3].has_value());
  EXPECT_EQ(*got_ids[4], ids[199]);

  std::vector<std::string> payloads;
  ASSERT_TRUE(store_->GetPayloads(nullptr, 7, ask_rows, &payloads).ok());
  EXPECT_TRUE(payloads[0].empty());  // odd row: none
  EXPECT_TRUE(payloads[1].empty());
  EXPECT_EQ(MetadataStore::DecodePayload(payloads[2], 0).value(), (Json{{"r", 0}}));
  EXPECT_TRUE(payloads[3].empty());
  std::vector<bool> dead;
  ASSERT_TRUE(store_->GetTombstones(nullptr, 7, ask_rows, &dead).ok());
  EXPECT_EQ(dead, (std::vector<bool>{true, false, true, false, false}));

  auto bad = MetadataStore::DecodePayload("\xc1", 12);  // 0xc1 is never valid MessagePack
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
  EXPECT_NE(bad.status().message().find("row 12"), std::string::npos);
}

TEST_F(MetadataStoreTest, ReadViewDoesNotSeeLaterCommits) {
  MetaBatch b(1);
  b.MapId(PointId::Num(1), 0);
  b.PutPayload(0, Json{{"v", 1}});
  ASSERT_TRUE(store_->Commit(b, false).ok());
  auto view = store_->NewReadView();
  MetaBatch c(1);
  c.ForgetId(PointId::Num(1));  // only id -> row goes
  c.PutPayload(0, Json{{"v", 2}});
  c.MapId(PointId::Num(2), 1);
  ASSERT_TRUE(store_->Commit(c, false).ok());

  std::vector<PointId> ids = {PointId::Num(1), PointId::Num(2)};
  std::vector<InternalId> rows;
  ASSERT_TRUE(store_->GetRows(view.get(), 1, ids, &rows).ok());
  EXPECT_EQ(rows, (std::vector<InternalId>{0, kInvalidInternalId}));
  ASSERT_TRUE(store_->GetRows(nullptr, 1, ids, &rows).ok());
  EXPECT_EQ(rows, (std::vector<InternalId>{kInvalidInternalId, 1}));
  std::vector<std::string> p;
  std::vector<InternalId> row0 = {0};
  ASSERT_TRUE(store_->GetPayloads(view.get(), 1, row0, &p).ok());
  EXPECT_EQ(MetadataStore::DecodePayload(p[0], 0).value()["v"], 1);
  // The row -> id key of row 0 is kept by ForgetId.
  std::vector<std::optional<PointId>> back;
  ASSERT_TRUE(store_->GetIds(nullptr, 1, row0, &back).ok());
  EXPECT_EQ(*back[0], PointId::Num(1));
  // Cursors through the view see its ids only.
  auto cur = store_->NewIdCursor(view.get(), 1, std::nullopt);
  ASSERT_TRUE(cur->Valid());
  EXPECT_EQ(cur->id(), PointId::Num(1));
  cur->Next();
  EXPECT_FALSE(cur->Valid());
  EXPECT_TRUE(cur->status().ok());
}

TEST_F(MetadataStoreTest, IdCursorWalksIdsInOrderFromAnId) {
  std::map<PointId, InternalId> model;
  std::mt19937 rng(3);
  MetaBatch b(4);
  for (InternalId r = 0; r < 500; ++r) {
    PointId id = rng() % 4 == 0 ? Uuid(static_cast<uint8_t>(rng())) : PointId::Num(rng() % 100000);
    if (model.count(id)) continue;
    model[id] = r;
    b.MapId(id, r);
  }
  ASSERT_TRUE(store_->Commit(b, false).ok());
  for (std::optional<PointId> from :
       {std::optional<PointId>(), std::optional<PointId>(PointId::Num(50000)),
        std::optional<PointId>(Uuid(128)), std::optional<PointId>(model.begin()->first)}) {
    auto it = from ? model.lower_bound(*from) : model.begin();
    auto cur = store_->NewIdCursor(nullptr, 4, from);
    for (; it != model.end(); ++it, cur->Next()) {
      ASSERT_TRUE(cur->Valid());
      EXPECT_EQ(cur->id(), it->first);
      EXPECT_EQ(cur->row(), it->second);
    }
    EXPECT_FALSE(cur->Valid());
    EXPECT_TRUE(cur->status().ok());
  }
}

TEST_F(MetadataStoreTest, PayloadCursorReadsAscendingAndJumping) {
  MetaBatch b(2);
  for (InternalId r = 0; r < 3000; r += 3) b.PutPayload(r, Json{{"r", r}});
  ASSERT_TRUE(store_->Commit(b, false).ok());
  MetaBatch next(3);  // the next collection's payload must not be read as ours
  next.PutPayload(0, Json{{"other", true}});
  ASSERT_TRUE(store_->Commit(next, false).ok());
  auto cur = store_->NewPayloadCursor(nullptr, 2);
  std::string bytes;
  for (InternalId r : {0u, 1u, 2u, 3u, 4u, 30u, 2000u, 2001u, 2700u, 9u, 2997u, 2998u, 5000u}) {
    auto found = cur->Read(r, &bytes);
    ASSERT_TRUE(found.ok());
    ASSERT_EQ(*found, r % 3 == 0 && r < 3000) << r;
    if (*found) {
      EXPECT_EQ(MetadataStore::DecodePayload(bytes, r).value()["r"], r);
    }
  }
}

TEST_F(MetadataStoreTest, RowIdScanAndOplog) {
  MetaBatch b(5);
  for (InternalId r = 0; r < 100; ++r) {
    if (r % 10 != 4) b.MapId(PointId::Num(r * 7), r);
  }
  b.PutOplog(1, "a");
  b.PutOplog(2, "bb");
  b.PutOplog(300, "c");
  ASSERT_TRUE(store_->Commit(b, false).ok());
  MetaBatch o(6);
  o.PutOplog(1, "other");
  ASSERT_TRUE(store_->Commit(o, false).ok());

  std::vector<InternalId> seen;
  ASSERT_TRUE(store_
                  ->ForEachRowId(nullptr, 5, 20, 45,
                                 [&](InternalId r, const PointId& id) {
                                   EXPECT_EQ(id, PointId::Num(r * 7));
                                   seen.push_back(r);
                                   return Status::OK();
                                 })
                  .ok());
  std::vector<InternalId> want;
  for (InternalId r = 20; r < 45; ++r) {
    if (r % 10 != 4) want.push_back(r);
  }
  EXPECT_EQ(seen, want);

  EXPECT_EQ(store_->LastOplogSeq(5).value(), 300u);
  EXPECT_EQ(store_->LastOplogSeq(6).value(), 1u);
  EXPECT_EQ(store_->LastOplogSeq(9).value(), 0u);
  std::vector<std::pair<uint64_t, std::string>> log;
  auto collect = [&](uint32_t cid, uint64_t after) {
    log.clear();
    EXPECT_TRUE(store_
                    ->ForEachOplog(cid, after,
                                   [&](uint64_t seq, std::string_view rec) {
                                     log.emplace_back(seq, std::string(rec));
                                     return Status::OK();
                                   })
                    .ok());
  };
  collect(5, 0);
  EXPECT_EQ(log, (std::vector<std::pair<uint64_t, std::string>>{{1, "a"}, {2, "bb"}, {300, "c"}}));
  collect(5, 2);
  EXPECT_EQ(log, (std::vector<std::pair<uint64_t, std::string>>{{300, "c"}}));
  ASSERT_TRUE(store_->DeleteOplog(5, 2).ok());
  collect(5, 0);
  EXPECT_EQ(log, (std::vector<std::pair<uint64_t, std::string>>{{300, "c"}}));
  collect(6, 0);
  EXPECT_EQ(log.size(), 1u);  // another collection's oplog is untouched
  ASSERT_TRUE(store_->DropCollection(5).ok());
  EXPECT_EQ(store_->LastOplogSeq(5).value(), 0u);
  EXPECT_EQ(store_->LastOplogSeq(6).value(), 1u);
}

TEST_F(MetadataStoreTest, CountsRecordsRead) {
  MetaBatch b(1);
  for (InternalId r = 0; r < 50; ++r) b.MapId(PointId::Num(r), r);
  ASSERT_TRUE(store_->Commit(b, false).ok());
  const uint64_t before = store_->records_read();
  std::vector<PointId> ids = {PointId::Num(1), PointId::Num(2), PointId::Num(99)};
  std::vector<InternalId> rows;
  ASSERT_TRUE(store_->GetRows(nullptr, 1, ids, &rows).ok());
  EXPECT_EQ(store_->records_read() - before, 3u);
  ASSERT_TRUE(
      store_->ForEachMapping(1, [](const PointId&, InternalId) { return Status::OK(); }).ok());
  EXPECT_EQ(store_->records_read() - before, 53u);
}

TEST_F(MetadataStoreTest, ReopensWithTheNewColumnFamilies) {
  MetaBatch b(1);
  b.PutOplog(4, "x");
  b.MapId(PointId::Num(3), 0);
  ASSERT_TRUE(store_->Commit(b, true).ok());
  store_.reset();
  auto s = MetadataStore::Open(dir_.string(), 8 << 20);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  store_ = std::move(s).value();
  EXPECT_EQ(store_->LastOplogSeq(1).value(), 4u);
  EXPECT_EQ(store_->Rows(1).value(), 0u);
}

}  // namespace
}  // namespace vectord::storage
