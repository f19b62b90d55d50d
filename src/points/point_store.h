// PointStore: everything a collection knows about its points except their vectors: external id
// <-> row, payloads, the live set and the payload indexes, served from RocksDB and files so that
// RAM holds only a few bytes per point (docs/storage.md "Point store").
//
// What lives where:
//   id -> row        RocksDB idmap family (point look-ups, MultiGet for batches, bloom filters)
//   row -> id        the row id file (8 bytes a row, pread); UUIDs through RocksDB's row -> id key
//   payloads         RocksDB payload family, MessagePack, decoded only for the rows asked for
//   live set         RAM: a Roaring bitmap and a plain bitset (rows() bits)
//   payload indexes  RAM: keyword / integer / bool value -> Roaring; numeric ranges in sorted run
//                    files with an in-RAM fence array, tail and dead-row bitmaps
// Open loads the checkpoint (checkpoint.vdp) and replays the oplog records written after it; a
// directory without one (written before the point store existed) is read once in full and
// checkpointed.
//
// How the collection uses it (it replaces id_to_row_, row_to_id_, payloads_, live_bits_, live_
// and indexes_):
//   - Locks stay the collection's: readers hold its shared mutex around every read here, the
//     writer (serialized by write_mu_) holds it exclusively around Apply, DropIndex and
//     InstallIndex. Prepare* run under write_mu_ with the shared mutex held; BuildIndex needs only
//     write_mu_ (it reads the live set and the read view, which only Apply changes), so a long
//     build does not hold up a checkpoint. Checkpoint takes the mutex itself (no lock held).
//   - Upsert: file_->rows() == store->rows(); append vectors; PrepareUpsert(ids, payloads, &batch)
//     (it also records the row count); commit; Apply(write) under the exclusive lock, or
//     Abort(write) and truncate the vectors when the commit fails.
//   - Delete / payload operations: rows from RowsOf(ids) or Select(filter); PrepareDelete or
//     PreparePayloads (new payloads computed from Payloads(rows)); commit; Apply / Abort.
//   - Search results: IdsOf(rows), Payloads(rows). Filters: Select(filter), or
//     MakeFilterContext for index::Select. Scroll: Scroll(offset, allowed, limit).
//   - Payload index DDL: BuildIndex, commit the catalog, InstallIndex; DropIndex.
//   - The job scheduler calls Checkpoint(mu_) when CheckpointDue().
//   - Info and /metrics: live_count(), IndexList(), MemoryBytes().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <roaring/roaring.hh>
#include <shared_mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "index/filter.h"
#include "index/payload_index.h"
#include "src/points/range_runs.h"
#include "storage/metadata_store.h"
#include "storage/row_id_file.h"
#include "vectord/collection.h"

namespace vectord::points {

inline constexpr char kRowIdFile[] = "rowids.vdi";

struct PointStoreOptions {
  // The store's own directory (created when missing): the collection directory's "points/".
  std::string dir;
  uint32_t cid = 0;
  storage::MetadataStore* meta = nullptr;  // not owned; outlives the store
  // The payload indexes the catalog lists (built with a full scan when the checkpoint lacks one).
  std::vector<std::pair<std::string, PayloadSchemaType>> indexes;
  // Rows the vector file holds after its own recovery. Fewer than the committed row count (fsync
  // off and the machine went down): the points of the missing rows are dropped. Default: all.
  uint64_t available_rows = UINT64_MAX;
  // A checkpoint is due once this many rows were touched since the last one (each costs one
  // look-up at the next open).
  uint64_t checkpoint_rows = uint64_t{1} << 20;
  RangeRunsOptions range;
};

// Where the store's heap goes (bytes).
struct PointStoreMemory {
  uint64_t live_set = 0;  // Roaring + bitset
  uint64_t row_ids = 0;   // the row id file's in-RAM tail
  // Per indexed field: value bitmaps, range fences, tails, dead-row bitmaps.
  std::vector<std::pair<std::string, uint64_t>> payload_indexes;
  uint64_t total() const;
};

// How the last Open went (logs and tests).
struct PointStoreOpenStats {
  bool checkpoint_loaded = false;
  bool full_scan = false;      // no usable checkpoint: everything read once
  std::string scan_reason;     // why
  uint64_t scanned_rows = 0;   // rows the full scan covered (0 for a new collection)
  uint64_t oplog_records = 0;  // replayed
  uint64_t replayed_rows = 0;  // rows re-read from RocksDB
  uint64_t built_indexes = 0;  // indexes built by a scan (not in the checkpoint)
};

class PointStore {
 public:
  static Result<std::unique_ptr<PointStore>> Open(PointStoreOptions options);
  ~PointStore();
  PointStore(const PointStore&) = delete;
  PointStore& operator=(const PointStore&) = delete;

  // ---------------------------------------------------------------------------------------------
  // Reads: const, thread-safe among themselves, under the caller's shared lock. Ids and payloads
  // come from the metadata as of the last Apply (a read view), so they agree with the live set
  // and the indexes even while a newer write is being committed.

  uint64_t rows() const { return rows_; }  // rows written (the vector file's committed rows)
  uint64_t live_count() const { return live_.cardinality(); }
  const Roaring& live() const { return live_; }
  // Bit r of word r / 64 is set for live row r; rows() bits (the SPANN scan tests it per row).
  const uint64_t* live_bits() const { return live_bits_.data(); }
  bool IsLive(InternalId row) const {
    return row < rows_ && (live_bits_[row >> 6] >> (row & 63) & 1);
  }
  // External id of a row (live or a dead version: a row's id never changes).
  Result<PointId> IdOf(InternalId row) const;
  Result<std::vector<PointId>> IdsOf(std::span<const InternalId> rows) const;
  // Current row of an id; nullopt when there is no such point.
  Result<std::optional<InternalId>> RowOf(const PointId& id) const;
  // rows[i] for ids[i], kInvalidInternalId when absent (one MultiGet).
  Result<std::vector<InternalId>> RowsOf(std::span<const PointId> ids) const;
  // Payload of a row; null when it has none.
  Result<Json> Payload(InternalId row) const;
  Result<std::vector<Json>> Payloads(std::span<const InternalId> rows) const;

  struct ScrollPage {
    std::vector<std::pair<PointId, InternalId>> points;  // ascending ids
    std::optional<PointId> next;                         // first id of the next page
  };
  // Up to `limit` live points from id `from` (inclusive) in id order, restricted to `allowed`
  // rows when given.
  Result<ScrollPage> Scroll(const std::optional<PointId>& from, const Roaring* allowed,
                            size_t limit) const;

  // A filter context whose payload accessor reads lazily from RocksDB (sequentially for rows
  // asked in ascending order). Single-threaded; valid while the shared lock is held. Read
  // failures go to *error.
  index::FilterContext MakeFilterContext(Status* error) const;
  // The live rows matching `filter`.
  Result<Roaring> Select(const Filter& filter) const;
  const index::PayloadIndexSet& indexes() const { return indexes_; }
  std::vector<index::PayloadIndexInfo> IndexList() const { return indexes_.List(); }
  PointStoreMemory MemoryBytes() const;
  std::shared_ptr<const storage::ReadView> view() const { return view_; }
  const PointStoreOpenStats& open_stats() const { return open_stats_; }

  // ---------------------------------------------------------------------------------------------
  // Writes: Prepare* checks the operation, adds its records (and its oplog record) to the
  // caller's batch and does the file appends that must precede the commit; after the commit,
  // Apply updates RAM (exclusive lock); after a failed commit, Abort undoes the appends.

  class Write {
   public:
    Write() = default;
    // A moved-from write is neither applied nor aborted.
    Write(Write&& o) noexcept { *this = std::move(o); }
    Write& operator=(Write&& o) noexcept {
      kind_ = o.kind_;
      seq_ = o.seq_;
      first_ = o.first_;
      count_ = o.count_;
      rows_ = std::move(o.rows_);
      new_payloads_ = std::move(o.new_payloads_);
      old_payloads_ = std::move(o.old_payloads_);
      touched_ = o.touched_;
      pending_ = std::exchange(o.pending_, false);
      return *this;
    }
    InternalId first_row() const { return first_; }  // upserts: rows first_row() + i
    // Upsert: the rows of the points it replaces; delete / payloads: the rows it changes.
    const std::vector<InternalId>& rows() const { return rows_; }
    uint64_t seq() const { return seq_; }

   private:
    friend class PointStore;
    enum class Kind : uint8_t { kUpsert, kDelete, kPayloads } kind_ = Kind::kUpsert;
    uint64_t seq_ = 0;
    InternalId first_ = 0;  // upsert: new rows [first_, first_ + count_)
    uint32_t count_ = 0;
    std::vector<InternalId> rows_;    // upsert: replaced rows; delete / payloads: the rows
    std::vector<Json> new_payloads_;  // per new row / per row, kept only for the indexes
    std::vector<Json> old_payloads_;  // per rows_[i], read only when indexes exist
    uint64_t touched_ = 0;
    bool pending_ = false;
  };

  // Points ids[i] (unique) with payloads[i] (object or null) get rows rows()..rows()+n-1; points
  // that existed are replaced (their old rows tombstoned). The row id file is not fsynced here:
  // open rewrites every row after the last checkpoint from RocksDB, so its durability is
  // RocksDB's.
  Result<Write> PrepareUpsert(std::span<const PointId> ids, std::vector<Json> payloads,
                              storage::MetaBatch* batch);
  // Deletes the points of live `rows`.
  Result<Write> PrepareDelete(std::span<const InternalId> rows, storage::MetaBatch* batch);
  // Replaces the payloads of live `rows` (null or {}: none). `old` (optional): their current
  // payloads when the caller has read them already.
  Result<Write> PreparePayloads(std::span<const InternalId> rows, std::vector<Json> payloads,
                                storage::MetaBatch* batch, std::vector<Json>* old = nullptr);
  void Apply(Write&& write);
  void Abort(Write&& write);

  // ---------------------------------------------------------------------------------------------
  // Payload index DDL.

  // A new index of `field` from every live payload (one scan of the payload family; the range
  // part is written as sorted run files, so nothing holds all payloads in RAM).
  Result<std::unique_ptr<index::FieldIndex>> BuildIndex(const std::string& field,
                                                        PayloadSchemaType type) const;
  void InstallIndex(std::unique_ptr<index::FieldIndex> index);  // exclusive lock
  bool DropIndex(const std::string& field);                     // exclusive lock

  // ---------------------------------------------------------------------------------------------
  // Checkpoints.

  // Whether enough changed since the last checkpoint (caller's shared lock).
  bool CheckpointDue() const;
  // Rows written since the last checkpoint: what the next open replays from the oplog.
  uint64_t touched_since_checkpoint() const { return touched_since_checkpoint_; }
  // Writes a new checkpoint and deletes the oplog records it covers. `mu` is the caller's mutex
  // that guards this store; it is taken exclusively for two short moments (freeze, install) and
  // shared while the state is written, so readers go on and writers wait only briefly. Called
  // with no lock held; one at a time.
  Status Checkpoint(std::shared_mutex& mu);

 private:
  explicit PointStore(PointStoreOptions options);
  Status Init();
  Status DropLostRows(uint64_t committed);
  Status LoadCheckpoint(struct CheckpointState* ckpt, Roaring* touched);
  Status FullScan();
  // Builds `fields` (empty, with range structures) from every live payload in one scan.
  Status ScanInto(const std::vector<std::unique_ptr<index::FieldIndex>>& fields,
                  const storage::ReadView* view) const;
  Status RebuildRowIds(uint64_t from);
  Status Replay(const Roaring& touched);
  Status WriteCheckpoint(std::shared_mutex* mu);
  Result<std::vector<Json>> ReadPayloads(const storage::ReadView* view,
                                         std::span<const InternalId> rows) const;
  std::unique_ptr<index::NumericRangeIndex> MakeRange() const;  // the range factory
  RangeRuns* RangeOf(const std::string& field) const;
  void SetLive(InternalId row, bool live);
  void NewView();

  const PointStoreOptions options_;
  storage::MetadataStore* const meta_;
  const uint32_t cid_;
  std::unique_ptr<RunFiles> run_files_;          // outlives indexes_ (declared before it)
  std::unique_ptr<storage::RowIdFile> row_ids_;  // appends by the writer, reads by all

  // Guarded by the caller's mutex (shared for reads, exclusive for Apply / DDL / installs).
  uint64_t rows_ = 0;
  Roaring live_;
  std::vector<uint64_t> live_bits_;
  index::PayloadIndexSet indexes_;
  std::shared_ptr<const storage::ReadView> view_;  // as of the last Apply
  uint64_t applied_seq_ = 0;                       // oplog sequence of the last Apply

  // Writer state, guarded by the caller's write serialization.
  uint64_t next_seq_ = 1;

  std::atomic<uint64_t> touched_since_checkpoint_{0};
  std::atomic<bool> checkpoint_needed_{false};  // e.g. an index was built since the last one
  std::atomic<bool> checkpointing_{false};
  PointStoreOpenStats open_stats_;
};

}  // namespace vectord::points
