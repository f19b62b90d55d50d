// MetadataStore: the data directory's RocksDB. Column families: catalog (collection configs and
// counters), idmap (external id <-> internal id, both directions), payloads, tombstones.
// Key layout and encodings: docs/formats.md "Metadata (RocksDB)". Thread-safe (RocksDB is).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vectord/status.h"
#include "vectord/types.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace vectord::storage {

class MetadataStore;

// One atomic group of metadata changes for one collection; applied by MetadataStore::Commit.
class MetaBatch {
 public:
  explicit MetaBatch(uint32_t collection_id);
  ~MetaBatch();
  MetaBatch(MetaBatch&&) noexcept;

  void MapId(const PointId& id, InternalId row);         // id -> row and row -> id
  void UnmapId(const PointId& id, InternalId row);       // both directions removed
  void UnmapRow(InternalId row);                         // only row -> id removed (id remapped)
  void PutPayload(InternalId row, const Json& payload);  // null/empty object: deletes
  void DeletePayload(InternalId row);
  void Tombstone(InternalId row);
  void SetRows(uint64_t rows);                        // vector-file rows the metadata covers
  void PutCollectionConfig(const std::string& json);  // the catalog entry
  size_t Count() const;

 private:
  friend class MetadataStore;
  uint32_t cid_;
  std::unique_ptr<rocksdb::WriteBatch> wb_;
  // Column family handles are resolved at commit: ops are recorded per family here.
  struct Op {
    uint8_t cf;  // 0 catalog, 1 idmap, 2 payload, 3 tombstone
    bool del;
    std::string key, value;
  };
  std::vector<Op> ops_;
};

class MetadataStore {
 public:
  // Opens or creates the RocksDB at `dir`. block_cache_bytes sizes its block cache.
  static Result<std::unique_ptr<MetadataStore>> Open(const std::string& dir,
                                                     uint64_t block_cache_bytes);
  ~MetadataStore();

  // Catalog: every collection id with its config JSON text.
  Status ListCollections(const std::function<Status(uint32_t, const std::string&)>& fn) const;
  // A fresh collection id, never handed out before (persisted).
  Result<uint32_t> AllocateCollectionId();
  // Removes the catalog entry and every key of the collection (one atomic, synced batch).
  Status DropCollection(uint32_t collection_id);

  // Applies the batch atomically; sync = WAL fsynced before returning.
  Status Commit(MetaBatch& batch, bool sync);

  // Restore helpers for one collection.
  Result<uint64_t> Rows(uint32_t collection_id) const;
  Status ForEachMapping(uint32_t collection_id,
                        const std::function<Status(const PointId&, InternalId)>& fn) const;
  Status ForEachPayload(uint32_t collection_id,
                        const std::function<Status(InternalId, Json&&)>& fn) const;
  Result<uint64_t> CountTombstones(uint32_t collection_id) const;

 private:
  MetadataStore() = default;
  Status Scan(int cf, const std::string& prefix,
              const std::function<Status(std::string_view, std::string_view)>& fn) const;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;  // default, catalog, idmap, payload, tombstone
};

}  // namespace vectord::storage
