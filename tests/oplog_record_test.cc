// Oplog records: random row sets round trip as ranges; malformed records are Corruption.
#include "src/points/oplog_record.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace vectord::points {
namespace {

std::set<InternalId> Decode(const std::string& rec) {
  std::set<InternalId> out;
  Status st = DecodeOplogRecord(1, rec, [&](InternalId first, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i)
      EXPECT_TRUE(out.insert(first + static_cast<InternalId>(i)).second);
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

TEST(OplogRecordTest, RandomRowSetsRoundTrip) {
  std::mt19937 rng(9);
  for (int t = 0; t < 200; ++t) {
    std::vector<InternalId> rows;
    const int n = static_cast<int>(rng() % 300);
    const uint32_t base = t % 2 ? 0xFFFFFF00u : rng() % 100000;
    for (int i = 0; i < n; ++i) rows.push_back(base + rng() % 250);
    if (t % 5 == 0) {
      for (uint32_t r = 1000; r < 2000; ++r) rows.push_back(r);  // a long range
    }
    std::set<InternalId> want(rows.begin(), rows.end());
    EXPECT_EQ(Decode(EncodeOplogRecord(rows)), want);
  }
  // 1,000 consecutive new rows and a few replaced ones: a few bytes.
  std::vector<InternalId> upsert = {3, 17, 90};
  for (InternalId r = 50000; r < 51000; ++r) upsert.push_back(r);
  EXPECT_LT(EncodeOplogRecord(upsert).size(), 16u);
  EXPECT_EQ(Decode(EncodeOplogRecord({})).size(), 0u);
}

TEST(OplogRecordTest, MalformedRecordsAreCorruption) {
  auto none = [](InternalId, uint64_t) {};
  const std::string good = EncodeOplogRecord({1, 2, 3, 100});
  EXPECT_EQ(DecodeOplogRecord(7, "", none).code(), Status::Code::kCorruption);
  EXPECT_EQ(DecodeOplogRecord(7, "\x02", none).code(), Status::Code::kCorruption);
  EXPECT_EQ(DecodeOplogRecord(7, good.substr(0, good.size() - 1), none).code(),
            Status::Code::kCorruption);
  Status trailing = DecodeOplogRecord(7, good + "x", none);
  EXPECT_EQ(trailing.code(), Status::Code::kCorruption);
  EXPECT_NE(trailing.message().find("record 7"), std::string::npos);
  // A range past 2^32 rows.
  std::string big(1, '\x01');
  big += '\x01';                  // one range
  big += "\xff\xff\xff\xff\x0f";  // first = 2^32 - 1
  big += '\x01';                  // two rows
  EXPECT_EQ(DecodeOplogRecord(7, big, none).code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace vectord::points
