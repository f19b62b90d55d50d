// Row codes (src/row_codes.h): subquantizer choice, the best-rows scan against a model that decodes
// every code, the Dot metric, recall after an exact re-rank, the file round trip and every kind of
// damage detected.
#include "src/spann/row_codes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "tests/test_db.h"

namespace vectord {
namespace {

constexpr uint32_t kDim = 32;
constexpr uint32_t kRows = 5000;

std::vector<float> Clustered(uint32_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0, 4);
  std::vector<std::vector<float>> centers(20, std::vector<float>(kDim));
  for (auto& c : centers) {
    for (auto& x : c) x = float(rng() % 100);
  }
  std::vector<float> out(size_t{rows} * kDim);
  for (uint32_t i = 0; i < rows; ++i) {
    const auto& c = centers[rng() % centers.size()];
    for (uint32_t j = 0; j < kDim; ++j) out[size_t{i} * kDim + j] = c[j] + noise(rng);
  }
  return out;
}

// Model: the distance the codes stand for, by decoding them (smaller is closer).
float ModelDistance(const RowCodes& rc, const float* q, uint32_t row, bool ip) {
  std::vector<float> x(kDim);
  rc.pq().Decode(rc.code(row), 1, x.data());
  float d = 0;
  for (uint32_t j = 0; j < kDim; ++j) d += ip ? -q[j] * x[j] : (q[j] - x[j]) * (q[j] - x[j]);
  return d;
}

std::unique_ptr<RowCodes> BuildCodes(const std::vector<float>& data, Distance metric, uint32_t m) {
  auto src = MakeMemorySource(data.data(), data.size() / kDim, kDim, DataType::kFloat32);
  auto rc = RowCodes::Build(*src, metric, m, 7, 2);
  EXPECT_TRUE(rc.ok()) << rc.status().ToString();
  return rc.ok() ? std::move(rc).value() : nullptr;
}

TEST(RowCodes, SubquantizersDivideTheDimension) {
  EXPECT_EQ(RowCodeSubquantizers(128, 16), 16u);
  EXPECT_EQ(RowCodeSubquantizers(128, 8), 8u);
  EXPECT_EQ(RowCodeSubquantizers(100, 16), 10u);
  EXPECT_EQ(RowCodeSubquantizers(7, 16), 7u);
  EXPECT_EQ(RowCodeSubquantizers(13, 4), 1u);
  EXPECT_EQ(RowCodeSubquantizers(128, 0), 0u);
}

TEST(RowCodes, BestRowsMatchesTheDecodedModel) {
  for (Distance metric : {Distance::kEuclid, Distance::kDot}) {
    const bool ip = metric == Distance::kDot;
    const std::vector<float> data = Clustered(kRows, 1);
    auto rc = BuildCodes(data, metric, 8);
    ASSERT_NE(rc, nullptr);
    EXPECT_EQ(rc->rows(), kRows);
    EXPECT_EQ(rc->code_bytes(), 8u);
    std::mt19937 rng(5);
    for (int qi = 0; qi < 10; ++qi) {
      const float* q = &data[size_t{rng() % kRows} * kDim];
      Roaring allowed;
      for (uint32_t r = 0; r < kRows; ++r) {
        if (rng() % 3 == 0) allowed.add(r);
      }
      const uint64_t end = qi % 2 ? kRows : kRows / 2;  // rows past `end` are never returned
      std::vector<std::pair<float, uint32_t>> best;
      uint64_t scored = 0;
      rc->BestRows(q, allowed, end, 25, &best, &scored);
      std::vector<std::pair<float, uint32_t>> model;
      for (uint32_t r : allowed) {
        if (r < end) model.emplace_back(ModelDistance(*rc, q, r, ip), r);
      }
      EXPECT_EQ(scored, model.size());
      std::sort(model.begin(), model.end());
      ASSERT_EQ(best.size(), 25u);
      EXPECT_TRUE(std::is_sorted(best.begin(), best.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; }));
      // Same set up to float rounding at the boundary: every returned row is within the model's
      // 25th distance (plus slack), and the model's clear top 20 are all returned.
      const float cut = model[24].first, slack = 1e-3f * (std::abs(cut) + 1);
      std::set<uint32_t> got;
      for (const auto& [d, r] : best) {
        EXPECT_LT(r, end);
        EXPECT_TRUE(allowed.contains(r));
        EXPECT_NEAR(d, ModelDistance(*rc, q, r, ip), 1e-3f * (std::abs(d) + 1));
        EXPECT_LE(d, cut + slack);
        got.insert(r);
      }
      for (int i = 0; i < 20; ++i) {
        if (model[i].first < cut - slack) {
          EXPECT_TRUE(got.count(model[i].second)) << i;
        }
      }
    }
    // Fewer allowed rows than asked for: all of them.
    Roaring few = Roaring::bitmapOf(4, 3, 10, 200, 4999);
    std::vector<std::pair<float, uint32_t>> best;
    uint64_t scored = 0;
    rc->BestRows(&data[0], few, kRows, 25, &best, &scored);
    ASSERT_EQ(best.size(), 4u);
    EXPECT_EQ(best[0].second, 3u);
    EXPECT_EQ(best[3].second, 4999u);
    EXPECT_EQ(scored, 4u);
  }
}

TEST(RowCodes, ExactRerankOfTheBestRowsKeepsRecall) {
  const std::vector<float> data = Clustered(kRows, 2);
  const std::vector<float> queries = Clustered(50, 3);
  auto rc = BuildCodes(data, Distance::kEuclid, 16);
  ASSERT_NE(rc, nullptr);
  Roaring all;
  all.addRange(0, kRows);
  auto l2 = [&](const float* q, uint32_t r) {
    float d = 0;
    for (uint32_t j = 0; j < kDim; ++j) {
      d += (q[j] - data[size_t{r} * kDim + j]) * (q[j] - data[size_t{r} * kDim + j]);
    }
    return d;
  };
  size_t hit = 0;
  for (int qi = 0; qi < 50; ++qi) {
    const float* q = &queries[size_t(qi) * kDim];
    std::vector<std::pair<float, uint32_t>> exact;
    for (uint32_t r = 0; r < kRows; ++r) exact.emplace_back(l2(q, r), r);
    std::partial_sort(exact.begin(), exact.begin() + 10, exact.end());
    std::vector<std::pair<float, uint32_t>> best;
    uint64_t scored = 0;
    rc->BestRows(q, all, kRows, 60, &best, &scored);
    for (auto& b : best) b.first = l2(q, b.second);
    std::partial_sort(best.begin(), best.begin() + 10, best.end());
    std::set<uint32_t> truth;
    for (int i = 0; i < 10; ++i) truth.insert(exact[i].second);
    for (int i = 0; i < 10; ++i) hit += truth.count(best[i].second);
  }
  EXPECT_GE(hit / 500.0, 0.95);
}

TEST(RowCodes, FileRoundTripAndDamageDetected) {
  const std::string dir = vectord::testing::TestDataDir("row_codes");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + kRowCodesFile;
  const std::vector<float> data = Clustered(kRows, 4);
  auto rc = BuildCodes(data, Distance::kEuclid, 8);
  ASSERT_NE(rc, nullptr);
  EXPECT_EQ(RowCodes::Read(path, kRows).status().code(), Status::Code::kNotFound);
  ASSERT_TRUE(rc->Write(path).ok());
  auto back = RowCodes::Read(path, kRows);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)->rows(), kRows);
  EXPECT_EQ(std::memcmp((*back)->code(0), rc->code(0), size_t{kRows} * 8), 0);
  Roaring all;
  all.addRange(0, kRows);
  std::vector<std::pair<float, uint32_t>> a, b;
  uint64_t scored = 0;
  rc->BestRows(&data[0], all, kRows, 30, &a, &scored);
  (*back)->BestRows(&data[0], all, kRows, 30, &b, &scored);
  EXPECT_EQ(a, b);
  EXPECT_EQ(RowCodes::Read(path, kRows - 1).status().code(), Status::Code::kCorruption);
  EXPECT_EQ((*RowCodes::Read(path, kRows + 1))->rows(), kRows);  // fewer rows: a living index's

  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  auto damaged = [&](size_t offset, bool truncate) {
    std::string d = bytes;
    if (truncate) {
      d.resize(offset);
    } else {
      d[offset] ^= 0x20;
    }
    std::ofstream(path, std::ios::binary | std::ios::trunc) << d;
    auto r = RowCodes::Read(path, kRows);
    return r.ok() ? std::string("ok") : r.status().ToString();
  };
  // Header, quantizer, a code in the middle, the last block's checksum, a short file.
  for (size_t off : {size_t{0}, size_t{20}, size_t{100}, bytes.size() / 2, bytes.size() - 2}) {
    const std::string s = damaged(off, false);
    EXPECT_NE(s, "ok") << "flipped byte at " << off;
    EXPECT_NE(s.find("orruption"), std::string::npos) << s;
  }
  EXPECT_NE(damaged(bytes.size() - 100, true).find("orruption"), std::string::npos);
  EXPECT_NE(damaged(bytes.size() / 2, false).find("checksum mismatch in block"), std::string::npos);
}

TEST(RowCodes, ReadMapsTheFileAndAppendedRowsGoToAHeapTail) {
  // More rows than two 65,536-row blocks, the file's rows ending inside block 1 and the appended
  // rows crossing into block 2: every code must read the same through the mapping and the tail.
  constexpr uint32_t kFirst = 100000, kAll = 140000, kM = 8;
  const std::string dir = vectord::testing::TestDataDir("row_codes_map");
  std::filesystem::create_directories(dir);
  const std::vector<float> data = Clustered(kAll, 9);
  auto src = MakeMemorySource(data.data(), kFirst, kDim, DataType::kFloat32);
  auto built = RowCodes::Build(*src, Distance::kEuclid, kM, 7, 2);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  std::unique_ptr<RowCodes> heap = std::move(built).value();
  ASSERT_TRUE(heap->Write(dir + "/a.vdc").ok());
  auto read = RowCodes::Read(dir + "/a.vdc", kAll);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  std::unique_ptr<RowCodes> mapped = std::move(read).value();
  EXPECT_EQ(mapped->MappedBytes(), uint64_t{kFirst} * kM);
  EXPECT_EQ(heap->MappedBytes(), 0u);
  // Only the codebooks are on the heap.
  EXPECT_EQ(mapped->MemoryBytes(), size_t{256} * kDim * sizeof(float));
  EXPECT_GE(heap->MemoryBytes(), size_t{kFirst} * kM);

  const auto* more = reinterpret_cast<const uint8_t*>(&data[size_t{kFirst} * kDim]);
  heap->Append(more, kAll - kFirst, DataType::kFloat32);
  mapped->Append(more, kAll - kFirst, DataType::kFloat32);
  ASSERT_EQ(mapped->rows(), kAll);
  EXPECT_EQ(mapped->MemoryBytes(), size_t{256} * kDim * sizeof(float) + size_t{kAll - kFirst} * kM);
  for (uint32_t r = 0; r < kAll; ++r) {
    ASSERT_EQ(std::memcmp(mapped->code(r), heap->code(r), kM), 0) << "row " << r;
  }
  Roaring odd;
  for (uint32_t r = 1; r < kAll; r += 2) odd.add(r);
  for (uint32_t q : {0u, 70000u, 139999u}) {
    std::vector<std::pair<float, uint32_t>> a, b;
    uint64_t scored_a = 0, scored_b = 0;
    heap->BestRows(&data[size_t{q} * kDim], odd, kAll, 50, &a, &scored_a);
    mapped->BestRows(&data[size_t{q} * kDim], odd, kAll, 50, &b, &scored_b);
    EXPECT_EQ(a, b);
    EXPECT_EQ(scored_a, kAll / 2);
    EXPECT_EQ(scored_b, kAll / 2);
  }
  // Written from mapping + tail, the file is byte for byte the one written from the heap.
  ASSERT_TRUE(mapped->Write(dir + "/b.vdc").ok());
  ASSERT_TRUE(heap->Write(dir + "/c.vdc").ok());
  auto slurp = [](const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  EXPECT_EQ(slurp(dir + "/b.vdc"), slurp(dir + "/c.vdc"));
  auto again = RowCodes::Read(dir + "/b.vdc", kAll);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->MappedBytes(), uint64_t{kAll} * kM);
  EXPECT_EQ(std::memcmp((*again)->code(kAll - 1), heap->code(kAll - 1), kM), 0);
}

TEST(RowCodes, BuildRefusesBadParameters) {
  const std::vector<float> data = Clustered(100, 5);
  auto src = MakeMemorySource(data.data(), 100, kDim, DataType::kFloat32);
  EXPECT_EQ(RowCodes::Build(*src, Distance::kEuclid, 8, 1, 1).status().code(),
            Status::Code::kInvalidArgument);  // fewer than 256 rows
  const std::vector<float> more = Clustered(1000, 6);
  auto src2 = MakeMemorySource(more.data(), 1000, kDim, DataType::kFloat32);
  EXPECT_EQ(RowCodes::Build(*src2, Distance::kEuclid, 5, 1, 1).status().code(),
            Status::Code::kInvalidArgument);  // 5 does not divide 32
  std::atomic<bool> cancel{true};
  EXPECT_EQ(RowCodes::Build(*src2, Distance::kEuclid, 8, 1, 1, &cancel).status().code(),
            Status::Code::kUnavailable);
}

}  // namespace
}  // namespace vectord
