// Helpers shared by the engine tests: a fresh temporary data directory per test, opening a
// Database on it, and the uint8 SPANN collection config the SPANN tests use.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "src/collection/collection.h"
#include "vectord/database.h"

namespace vectord::testing {

// temp/<prefix>_<pid>[_<test name>], emptied. The test name is added inside a test (not in
// SetUpTestSuite), so parallel tests of one binary never share a directory.
inline std::string TestDataDir(const std::string& prefix) {
  std::string name = prefix + "_" + std::to_string(::getpid());
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    name += std::string("_") + info->name();
  }
  const std::string dir = (std::filesystem::temp_directory_path() / name).string();
  std::filesystem::remove_all(dir);
  return dir;
}

// A database on `dir` with two search threads.
inline Result<std::unique_ptr<Database>> OpenTestDatabase(const std::string& dir) {
  DatabaseOptions o;
  o.data_dir = dir;
  o.search_threads = 2;
  return Database::Open(o);
}

// uint8 Euclid vectors of `dim`, fsync off, a SPANN index once `threshold` points are in.
inline CollectionConfig SpannU8Config(uint32_t dim, uint64_t threshold,
                                      std::optional<uint32_t> nprobe = std::nullopt) {
  CollectionConfig cfg;
  cfg.dim = dim;
  cfg.distance = Distance::kEuclid;
  cfg.datatype = DataType::kUint8;
  cfg.fsync = false;
  SpannConfig sc;
  sc.indexing_threshold = threshold;
  if (nprobe) sc.nprobe = *nprobe;
  cfg.spann = sc;
  return cfg;
}

// Waits for a multi-vector collection's background FDE PQ training
// (src/multivector/fde_pq.h), if any: every background job of the collection.
inline void WaitForFdePq(Collection& c) { ASSERT_TRUE(c.WaitIdle(600000)); }

// Waits for a SPANN collection's background row-code build (src/spann/row_codes.h), if any.
inline void WaitForRowCodes(Collection& c) { ASSERT_TRUE(c.WaitIdle(600000)); }

// Waits up to `seconds` for the collection's SPANN index: success once it is green with indexed
// vectors; failure at once when the build fails (status red, with its error), or at the deadline.
inline ::testing::AssertionResult WaitForIndex(Collection& c, int seconds) {
  for (int i = 0; i < seconds * 20; ++i) {
    const CollectionInfo info = c.Info();
    if (info.status == "green" && info.indexed_vectors_count > 0) {
      return ::testing::AssertionSuccess();
    }
    if (info.status == "red") {
      return ::testing::AssertionFailure() << "index build failed: " << info.index_error;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ::testing::AssertionFailure()
         << "no index after " << seconds << " s (status " << c.Info().status << ")";
}

}  // namespace vectord::testing
