// Database: the data directory, its catalog of collections, and the search thread pool.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vectord/collection.h"
#include "vectord/status.h"

namespace vectord {

struct DatabaseOptions {
  std::string data_dir = "./data";  // created if missing; holds meta/ (RocksDB) and collections/
  // Threads used for batch search and for building payload indexes. 0 = hardware concurrency.
  unsigned search_threads = 0;
  // RocksDB block cache, bytes. Default 64 MiB.
  uint64_t block_cache_bytes = 64ull << 20;
  // Background work (index builds and updates, codes, summaries, checkpoints). Off for offline
  // tools that only read (vectorctl check): the collections stay as they were opened.
  bool background_jobs = true;
};

class Database {
 public:
  // Opens (or creates) the data directory and restores every collection. Fails if another
  // process holds the directory (RocksDB LOCK).
  static Result<std::unique_ptr<Database>> Open(const DatabaseOptions& options);
  virtual ~Database() = default;

  // Names are 1..255 chars of [A-Za-z0-9_.-], not "." or "..": they never escape the data dir.
  virtual Status CreateCollection(const std::string& name, const CollectionConfig& config) = 0;
  virtual Status DropCollection(const std::string& name) = 0;  // NotFound if absent
  virtual Result<std::shared_ptr<Collection>> GetCollection(const std::string& name) const = 0;
  virtual std::vector<std::string> ListCollections() const = 0;  // sorted
};

}  // namespace vectord
