// MetadataStore: the data directory's RocksDB. Column families: catalog (collection configs and
// counters), idmap (external id <-> internal id, both directions), payloads, tombstones, oplog
// (per-collection log of the rows each committed write touched). Key layout and encodings:
// docs/formats.md "Metadata (RocksDB)". Thread-safe (RocksDB is).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vectord/status.h"
#include "vectord/types.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Iterator;
class Snapshot;
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
  void ForgetId(const PointId& id);                      // only id -> row removed (row -> id kept)
  void PutPayload(InternalId row, const Json& payload);  // null/empty object: deletes
  void DeletePayload(InternalId row);
  void Tombstone(InternalId row);
  void DeleteTombstone(InternalId row);  // the row number is given out again (lost rows)
  void SetRows(uint64_t rows);           // vector-file rows the metadata covers
  void PutCollectionConfig(const std::string& json);  // the catalog entry
  // The oplog record `seq` of this collection (docs/formats.md "Oplog"): committed with the
  // changes it describes, so it can never disagree with them.
  void PutOplog(uint64_t seq, std::string record);
  size_t Count() const;

 private:
  friend class MetadataStore;
  uint32_t cid_;
  std::unique_ptr<rocksdb::WriteBatch> wb_;
  // Column family handles are resolved at commit: ops are recorded per family here.
  struct Op {
    uint8_t cf;  // 0 catalog, 1 idmap, 2 payload, 3 tombstone, 4 oplog
    bool del;
    std::string key, value;
  };
  std::vector<Op> ops_;
};

// A consistent, immutable view of the metadata as of its creation (a RocksDB snapshot). Reads
// through it never see later commits. Released when the last shared_ptr to it goes; must not
// outlive the MetadataStore that made it.
class ReadView {
 public:
  ~ReadView();
  ReadView(const ReadView&) = delete;
  ReadView& operator=(const ReadView&) = delete;

 private:
  friend class MetadataStore;
  ReadView(rocksdb::DB* db, const rocksdb::Snapshot* snapshot) : db_(db), snapshot_(snapshot) {}
  rocksdb::DB* const db_;
  const rocksdb::Snapshot* const snapshot_;
};

// Live points of one collection in external id order (PointId's order), through a read view.
class IdCursor {
 public:
  ~IdCursor();
  // Positioned on a point; false at the end or after an error (see status()).
  bool Valid() const { return valid_; }
  void Next();
  const PointId& id() const { return id_; }
  InternalId row() const { return row_; }
  Status status() const { return status_; }

 private:
  friend class MetadataStore;
  IdCursor(const MetadataStore* store, std::unique_ptr<rocksdb::Iterator> it, std::string prefix);
  void Load();  // decodes the iterator's entry or ends
  const MetadataStore* store_;
  std::unique_ptr<rocksdb::Iterator> it_;
  const std::string prefix_;
  bool valid_ = false;
  PointId id_;
  InternalId row_ = kInvalidInternalId;
  Status status_;
};

// Payload bytes of one collection's rows through a read view, for callers that ask for rows in
// ascending order (a filter's row pass): nearby rows are reached by stepping the iterator
// instead of a fresh seek, so a dense pass reads the payload family sequentially.
class PayloadCursor {
 public:
  ~PayloadCursor();
  // The stored (MessagePack) payload of `row` in *out; false when the row has none.
  Result<bool> Read(InternalId row, std::string* out);

 private:
  friend class MetadataStore;
  PayloadCursor(const MetadataStore* store, std::unique_ptr<rocksdb::Iterator> it, uint32_t cid);
  const MetadataStore* store_;
  std::unique_ptr<rocksdb::Iterator> it_;
  const uint32_t cid_;
};

class MetadataStore {
 public:
  // Opens or creates the RocksDB at `dir`. block_cache_bytes sizes its block cache, which also
  // holds the index and bloom filter blocks of every table (so they count against it, not
  // against the heap).
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

  // ---- Reads through a read view (null view: the latest committed state) ----
  std::shared_ptr<const ReadView> NewReadView() const;
  // rows[i] = the row of ids[i], kInvalidInternalId when the id is not mapped (one MultiGet;
  // absent ids are mostly answered by the bloom filters).
  Status GetRows(const ReadView* view, uint32_t cid, std::span<const PointId> ids,
                 std::vector<InternalId>* rows) const;
  // ids[i] = the external id recorded for rows[i] (row -> id key), nullopt when none.
  Status GetIds(const ReadView* view, uint32_t cid, std::span<const InternalId> rows,
                std::vector<std::optional<PointId>>* ids) const;
  // payloads[i] = the stored payload bytes of rows[i] (MessagePack), empty when none.
  Status GetPayloads(const ReadView* view, uint32_t cid, std::span<const InternalId> rows,
                     std::vector<std::string>* payloads) const;
  // dead[i] = whether rows[i] is tombstoned.
  Status GetTombstones(const ReadView* view, uint32_t cid, std::span<const InternalId> rows,
                       std::vector<bool>* dead) const;
  // Live points in id order from `from` (inclusive; nullopt: the first).
  std::unique_ptr<IdCursor> NewIdCursor(const ReadView* view, uint32_t cid,
                                        const std::optional<PointId>& from) const;
  std::unique_ptr<PayloadCursor> NewPayloadCursor(const ReadView* view, uint32_t cid) const;
  // Decodes stored payload bytes; Corruption naming the row when they are not MessagePack.
  static Result<Json> DecodePayload(std::string_view bytes, InternalId row);

  // ---- Scans in key order (a view may be null) ----
  // Every row -> id key with first <= row < end, ascending.
  Status ForEachRowId(const ReadView* view, uint32_t cid, InternalId first, uint64_t end,
                      const std::function<Status(InternalId, const PointId&)>& fn) const;
  // Every stored payload, ascending rows, undecoded.
  Status ForEachPayloadBytes(const ReadView* view, uint32_t cid,
                             const std::function<Status(InternalId, std::string_view)>& fn) const;
  // Every tombstoned row, ascending.
  Status ForEachTombstone(const ReadView* view, uint32_t cid,
                          const std::function<Status(InternalId)>& fn) const;

  // ---- Oplog ----
  // Records with seq > after, ascending.
  Status ForEachOplog(uint32_t cid, uint64_t after,
                      const std::function<Status(uint64_t, std::string_view)>& fn) const;
  // The highest sequence in the collection's oplog, 0 when it is empty.
  Result<uint64_t> LastOplogSeq(uint32_t cid) const;
  // Removes the records with seq <= through (a range delete; not synced: a record that comes
  // back after a crash is replayed again, which changes nothing).
  Status DeleteOplog(uint32_t cid, uint64_t through);

  // Keys this store has read (point look-ups asked and scanned entries), since open. Tests use it
  // to check that an operation does not walk every record.
  uint64_t records_read() const { return records_read_.load(std::memory_order_relaxed); }

 private:
  friend class IdCursor;
  friend class PayloadCursor;
  MetadataStore() = default;
  Status Scan(int cf, const std::string& prefix,
              const std::function<Status(std::string_view, std::string_view)>& fn,
              const ReadView* view = nullptr, const std::string& start = {},
              const std::string& limit = {}) const;  // keys in [start or prefix, limit)
  // One MultiGet in column family `cf`; found[i] and values[i] per key.
  Status MultiGet(const ReadView* view, int cf, const std::vector<std::string>& keys,
                  std::vector<std::string>* values, std::vector<bool>* found) const;
  void CountReads(uint64_t n) const { records_read_.fetch_add(n, std::memory_order_relaxed); }
  static const rocksdb::Snapshot* SnapOf(const ReadView* view);

  std::unique_ptr<rocksdb::DB> db_;
  // default, catalog, idmap, payload, tombstone, oplog
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  mutable std::atomic<uint64_t> records_read_{0};
};

}  // namespace vectord::storage
