// MetadataStore on RocksDB; keys are prefixed with the 4-byte big-endian collection id so one
// collection's keys are contiguous (scans and DeleteRange by prefix).
#include "storage/metadata_store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <numeric>

namespace vectord::storage {
namespace {

enum Cf { kCatalog = 0, kIdMap = 1, kPayload = 2, kTombstone = 3, kOplog = 4 };
const char* const kCfNames[] = {"catalog", "idmap", "payload", "tombstone", "oplog"};

std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (24 - 8 * i));
  return s;
}
uint32_t GetBe32(std::string_view s) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(s[i]);
  return v;
}
std::string Be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (56 - 8 * i));
  return s;
}
uint64_t GetBe64(std::string_view s) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(s[i]);
  return v;
}
std::string Le(uint64_t v, int bytes) {
  std::string s(bytes, '\0');
  std::memcpy(s.data(), &v, bytes);
  return s;
}
uint64_t GetLe(std::string_view s) {
  uint64_t v = 0;
  std::memcpy(&v, s.data(), std::min<size_t>(8, s.size()));
  return v;
}

// Catalog keys.
std::string CollKey(uint32_t cid) { return "coll/" + Be32(cid); }
std::string RowsKey(uint32_t cid) { return "rows/" + Be32(cid); }
const char kNextIdKey[] = "next_collection_id";

// idmap keys: cid + 'e' + PointId::Key() -> row (LE u32); cid + 'i' + BE row -> PointId::Key().
std::string ExtKey(uint32_t cid, const PointId& id) { return Be32(cid) + 'e' + id.Key(); }
std::string RowKey(uint32_t cid, InternalId row) { return Be32(cid) + 'i' + Be32(row); }
std::string RowOnly(uint32_t cid, InternalId row) { return Be32(cid) + Be32(row); }
// oplog keys: cid + BE seq.
std::string OplogKey(uint32_t cid, uint64_t seq) { return Be32(cid) + Be64(seq); }

rocksdb::ReadOptions ReadAt(const rocksdb::Snapshot* snapshot) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  return ro;
}

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  return Status::IOError(what + ": " + s.ToString());
}

}  // namespace

MetaBatch::MetaBatch(uint32_t collection_id)
    : cid_(collection_id), wb_(std::make_unique<rocksdb::WriteBatch>()) {}
MetaBatch::~MetaBatch() = default;
MetaBatch::MetaBatch(MetaBatch&&) noexcept = default;

void MetaBatch::MapId(const PointId& id, InternalId row) {
  ops_.push_back({kIdMap, false, ExtKey(cid_, id), Le(row, 4)});
  ops_.push_back({kIdMap, false, RowKey(cid_, row), id.Key()});
}
void MetaBatch::UnmapId(const PointId& id, InternalId row) {
  ops_.push_back({kIdMap, true, ExtKey(cid_, id), {}});
  ops_.push_back({kIdMap, true, RowKey(cid_, row), {}});
}
void MetaBatch::UnmapRow(InternalId row) { ops_.push_back({kIdMap, true, RowKey(cid_, row), {}}); }
void MetaBatch::ForgetId(const PointId& id) {
  ops_.push_back({kIdMap, true, ExtKey(cid_, id), {}});
}
void MetaBatch::PutPayload(InternalId row, const Json& payload) {
  if (payload.is_null() || (payload.is_object() && payload.empty())) {
    DeletePayload(row);
    return;
  }
  std::vector<uint8_t> mp = Json::to_msgpack(payload);
  ops_.push_back({kPayload, false, RowOnly(cid_, row), std::string(mp.begin(), mp.end())});
}
void MetaBatch::DeletePayload(InternalId row) {
  ops_.push_back({kPayload, true, RowOnly(cid_, row), {}});
}
void MetaBatch::Tombstone(InternalId row) {
  ops_.push_back({kTombstone, false, RowOnly(cid_, row), {}});
}
void MetaBatch::DeleteTombstone(InternalId row) {
  ops_.push_back({kTombstone, true, RowOnly(cid_, row), {}});
}
void MetaBatch::SetRows(uint64_t rows) {
  ops_.push_back({kCatalog, false, RowsKey(cid_), Le(rows, 8)});
}
void MetaBatch::PutCollectionConfig(const std::string& json) {
  ops_.push_back({kCatalog, false, CollKey(cid_), json});
}
void MetaBatch::PutOplog(uint64_t seq, std::string record) {
  ops_.push_back({kOplog, false, OplogKey(cid_, seq), std::move(record)});
}
size_t MetaBatch::Count() const { return ops_.size(); }

ReadView::~ReadView() { db_->ReleaseSnapshot(snapshot_); }

Result<std::unique_ptr<MetadataStore>> MetadataStore::Open(const std::string& dir,
                                                           uint64_t block_cache_bytes) {
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.max_background_jobs = 2;
  // One block cache for every family. Index and filter blocks live in it too (partitioned, so
  // only the partitions in use are cached): at a billion points they would otherwise be
  // gigabytes of heap outside any budget.
  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(block_cache_bytes);
  auto cf_options = [&](bool point_lookups, bool bloom) {
    rocksdb::ColumnFamilyOptions cf_opts;
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = cache;
    if (point_lookups) {
      // Index and filter blocks in the cache, partitioned (only the partitions in use are
      // cached) with the top level pinned; a hash index inside each data block finds a key
      // without the binary search over the block's restart points.
      table.cache_index_and_filter_blocks = true;
      table.pin_top_level_index_and_filter = true;
      table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
      table.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
    }
    if (bloom) {
      // Point look-ups by key (id -> row, row -> id, tombstones): a 10-bit bloom
      // filter answers most look-ups of absent keys (new ids in an upsert) without reading a
      // data block.
      table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
      table.whole_key_filtering = true;
      table.optimize_filters_for_memory = true;
      table.partition_filters = true;
    }
    cf_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    cf_opts.compression = rocksdb::kNoCompression;
    if (bloom) {
      // The same for keys still in the memtable (2% of its size).
      cf_opts.memtable_whole_key_filtering = true;
      cf_opts.memtable_prefix_bloom_size_ratio = 0.02;
    }
    return cf_opts;
  };
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  descs.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options(false, false));
  for (int cf = 0; cf < static_cast<int>(std::size(kCfNames)); ++cf) {
    const bool point_lookups = cf == kIdMap || cf == kPayload || cf == kTombstone;
    // Payloads are read for rows that hold one (search results, filters): a bloom filter would
    // only add a look-up per read. Id and tombstone look-ups are often of absent keys.
    descs.emplace_back(kCfNames[cf], cf_options(point_lookups, point_lookups && cf != kPayload));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_opts, dir, descs, &handles, &raw);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status::IOError("data directory '" + dir + "' is in use by another vectord process (" +
                             s.ToString() + ")");
    }
    return FromRocks(s, "open metadata store '" + dir + "'");
  }
  std::unique_ptr<MetadataStore> store(new MetadataStore());
  store->db_.reset(raw);
  store->cfs_ = std::move(handles);
  return store;
}

MetadataStore::~MetadataStore() {
  if (!db_) return;
  for (auto* h : cfs_) db_->DestroyColumnFamilyHandle(h);
  db_->Close();
}

Status MetadataStore::Scan(int cf, const std::string& prefix,
                           const std::function<Status(std::string_view, std::string_view)>& fn,
                           const ReadView* view, const std::string& start,
                           const std::string& limit) const {
  rocksdb::ReadOptions ro = ReadAt(SnapOf(view));
  ro.fill_cache = false;
  const rocksdb::Slice upper(limit);
  if (!limit.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[1 + cf]));
  uint64_t n = 0;
  for (it->Seek(start.empty() ? prefix : start); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    ++n;
    Status st = fn(std::string_view(it->key().data(), it->key().size()),
                   std::string_view(it->value().data(), it->value().size()));
    if (!st.ok()) {
      CountReads(n);
      return st;
    }
  }
  CountReads(n);
  return FromRocks(it->status(), "scan metadata");
}

Status MetadataStore::ListCollections(
    const std::function<Status(uint32_t, const std::string&)>& fn) const {
  return Scan(kCatalog, "coll/", [&](std::string_view k, std::string_view v) {
    if (k.size() != 9) return Status::Corruption("bad catalog key");
    return fn(GetBe32(k.substr(5)), std::string(v));
  });
}

Result<uint32_t> MetadataStore::AllocateCollectionId() {
  std::string v;
  uint32_t next = 1;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_[1 + kCatalog], kNextIdKey, &v);
  if (s.ok()) {
    next = static_cast<uint32_t>(GetLe(v));
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "read collection counter");
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  VECTORD_RETURN_IF_ERROR(FromRocks(db_->Put(wo, cfs_[1 + kCatalog], kNextIdKey, Le(next + 1, 4)),
                                    "write collection counter"));
  return next;
}

Status MetadataStore::DropCollection(uint32_t cid) {
  rocksdb::WriteBatch wb;
  wb.Delete(cfs_[1 + kCatalog], CollKey(cid));
  wb.Delete(cfs_[1 + kCatalog], RowsKey(cid));
  const std::string lo = Be32(cid), hi = Be32(cid + 1);
  for (int cf : {kIdMap, kPayload, kTombstone, kOplog}) wb.DeleteRange(cfs_[1 + cf], lo, hi);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Write(wo, &wb), "drop collection metadata");
}

Status MetadataStore::Commit(MetaBatch& batch, bool sync) {
  rocksdb::WriteBatch& wb = *batch.wb_;
  for (const auto& op : batch.ops_) {
    auto* cf = cfs_[1 + op.cf];
    rocksdb::Status s = op.del ? wb.Delete(cf, op.key) : wb.Put(cf, op.key, op.value);
    if (!s.ok()) return FromRocks(s, "build write batch");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  Status st = FromRocks(db_->Write(wo, &wb), "commit metadata");
  wb.Clear();
  batch.ops_.clear();
  return st;
}

Result<uint64_t> MetadataStore::Rows(uint32_t cid) const {
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_[1 + kCatalog], RowsKey(cid), &v);
  if (s.IsNotFound()) return uint64_t{0};
  VECTORD_RETURN_IF_ERROR(FromRocks(s, "read row count"));
  return GetLe(v);
}

Status MetadataStore::ForEachMapping(
    uint32_t cid, const std::function<Status(const PointId&, InternalId)>& fn) const {
  const std::string prefix = Be32(cid) + 'e';
  return Scan(kIdMap, prefix, [&](std::string_view k, std::string_view v) {
    VECTORD_ASSIGN_OR_RETURN(PointId id, PointId::FromKey(k.substr(prefix.size())));
    if (v.size() != 4) return Status::Corruption("bad id map value for point " + id.ToString());
    return fn(id, static_cast<InternalId>(GetLe(v)));
  });
}

Status MetadataStore::ForEachPayload(uint32_t cid,
                                     const std::function<Status(InternalId, Json&&)>& fn) const {
  return ForEachPayloadBytes(nullptr, cid, [&](InternalId row, std::string_view v) {
    VECTORD_ASSIGN_OR_RETURN(Json j, DecodePayload(v, row));
    return fn(row, std::move(j));
  });
}

Result<uint64_t> MetadataStore::CountTombstones(uint32_t cid) const {
  uint64_t n = 0;
  VECTORD_RETURN_IF_ERROR(Scan(kTombstone, Be32(cid), [&](std::string_view, std::string_view) {
    ++n;
    return Status::OK();
  }));
  return n;
}

const rocksdb::Snapshot* MetadataStore::SnapOf(const ReadView* view) {
  return view != nullptr ? view->snapshot_ : nullptr;
}

std::shared_ptr<const ReadView> MetadataStore::NewReadView() const {
  return std::shared_ptr<const ReadView>(new ReadView(db_.get(), db_->GetSnapshot()));
}

Status MetadataStore::MultiGet(const ReadView* view, int cf, const std::vector<std::string>& keys,
                               std::vector<std::string>* values, std::vector<bool>* found) const {
  const size_t n = keys.size();
  values->assign(n, std::string());
  found->assign(n, false);
  if (n == 0) return Status::OK();
  CountReads(n);
  // RocksDB's batched MultiGet wants keys in order; callers' keys come in their own order.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  std::vector<rocksdb::Slice> slices(n);
  for (size_t i = 0; i < n; ++i) slices[i] = keys[order[i]];
  std::vector<rocksdb::PinnableSlice> vals(n);
  std::vector<rocksdb::Status> st(n);
  db_->MultiGet(ReadAt(SnapOf(view)), cfs_[1 + cf], n, slices.data(), vals.data(), st.data(),
                /*sorted_input=*/true);
  for (size_t i = 0; i < n; ++i) {
    if (st[i].IsNotFound()) continue;
    if (!st[i].ok()) return FromRocks(st[i], std::string("read ") + kCfNames[cf]);
    (*found)[order[i]] = true;
    (*values)[order[i]].assign(vals[i].data(), vals[i].size());
  }
  return Status::OK();
}

Status MetadataStore::GetRows(const ReadView* view, uint32_t cid, std::span<const PointId> ids,
                              std::vector<InternalId>* rows) const {
  std::vector<std::string> keys(ids.size()), vals;
  for (size_t i = 0; i < ids.size(); ++i) keys[i] = ExtKey(cid, ids[i]);
  std::vector<bool> found;
  VECTORD_RETURN_IF_ERROR(MultiGet(view, kIdMap, keys, &vals, &found));
  rows->assign(ids.size(), kInvalidInternalId);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!found[i]) continue;
    if (vals[i].size() != 4) {
      return Status::Corruption("bad id map value for point " + ids[i].ToString());
    }
    (*rows)[i] = static_cast<InternalId>(GetLe(vals[i]));
  }
  return Status::OK();
}

Status MetadataStore::GetIds(const ReadView* view, uint32_t cid, std::span<const InternalId> rows,
                             std::vector<std::optional<PointId>>* ids) const {
  std::vector<std::string> keys(rows.size()), vals;
  for (size_t i = 0; i < rows.size(); ++i) keys[i] = RowKey(cid, rows[i]);
  std::vector<bool> found;
  VECTORD_RETURN_IF_ERROR(MultiGet(view, kIdMap, keys, &vals, &found));
  ids->assign(rows.size(), std::nullopt);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!found[i]) continue;
    auto id = PointId::FromKey(vals[i]);
    if (!id.ok()) {
      return Status::Corruption("bad point id of row " + std::to_string(rows[i]) + ": " +
                                id.status().message());
    }
    (*ids)[i] = *id;
  }
  return Status::OK();
}

Status MetadataStore::GetPayloads(const ReadView* view, uint32_t cid,
                                  std::span<const InternalId> rows,
                                  std::vector<std::string>* payloads) const {
  std::vector<std::string> keys(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) keys[i] = RowOnly(cid, rows[i]);
  std::vector<bool> found;
  return MultiGet(view, kPayload, keys, payloads, &found);
}

Status MetadataStore::GetTombstones(const ReadView* view, uint32_t cid,
                                    std::span<const InternalId> rows,
                                    std::vector<bool>* dead) const {
  std::vector<std::string> keys(rows.size()), vals;
  for (size_t i = 0; i < rows.size(); ++i) keys[i] = RowOnly(cid, rows[i]);
  return MultiGet(view, kTombstone, keys, &vals, dead);
}

Result<Json> MetadataStore::DecodePayload(std::string_view bytes, InternalId row) {
  Json j = Json::from_msgpack(bytes.begin(), bytes.end(), true, false);
  if (j.is_discarded()) {
    return Status::Corruption("payload of row " + std::to_string(row) + " is not valid msgpack");
  }
  return j;
}

std::unique_ptr<IdCursor> MetadataStore::NewIdCursor(const ReadView* view, uint32_t cid,
                                                     const std::optional<PointId>& from) const {
  std::string prefix = Be32(cid) + 'e';
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ReadAt(SnapOf(view)), cfs_[1 + kIdMap]));
  it->Seek(from ? prefix + from->Key() : prefix);
  std::unique_ptr<IdCursor> c(new IdCursor(this, std::move(it), std::move(prefix)));
  c->Load();
  return c;
}

IdCursor::IdCursor(const MetadataStore* store, std::unique_ptr<rocksdb::Iterator> it,
                   std::string prefix)
    : store_(store), it_(std::move(it)), prefix_(std::move(prefix)) {}
IdCursor::~IdCursor() = default;

void IdCursor::Load() {
  valid_ = false;
  if (!it_->Valid() || !it_->key().starts_with(prefix_)) {
    status_ = FromRocks(it_->status(), "scan point ids");
    return;
  }
  store_->CountReads(1);
  const std::string_view k(it_->key().data() + prefix_.size(), it_->key().size() - prefix_.size());
  auto id = PointId::FromKey(k);
  if (!id.ok() || it_->value().size() != 4) {
    status_ =
        Status::Corruption("bad id map entry: " +
                           (id.ok() ? "value of point " + id->ToString() : id.status().message()));
    return;
  }
  id_ = *id;
  row_ = static_cast<InternalId>(GetLe(std::string_view(it_->value().data(), 4)));
  valid_ = true;
}

void IdCursor::Next() {
  if (!valid_) return;
  it_->Next();
  Load();
}

std::unique_ptr<PayloadCursor> MetadataStore::NewPayloadCursor(const ReadView* view,
                                                               uint32_t cid) const {
  rocksdb::ReadOptions ro = ReadAt(SnapOf(view));
  return std::unique_ptr<PayloadCursor>(new PayloadCursor(
      this, std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(ro, cfs_[1 + kPayload])), cid));
}

PayloadCursor::PayloadCursor(const MetadataStore* store, std::unique_ptr<rocksdb::Iterator> it,
                             uint32_t cid)
    : store_(store), it_(std::move(it)), cid_(cid) {}
PayloadCursor::~PayloadCursor() = default;

Result<bool> PayloadCursor::Read(InternalId row, std::string* out) {
  // Keys are cid + BE row: 8 bytes, ordered by row within the collection.
  auto current = [&]() -> int64_t {  // row under the iterator; -1 before, INT64_MAX past the end
    if (!it_->Valid()) return INT64_MAX;
    const rocksdb::Slice k = it_->key();
    if (k.size() != 8) return INT64_MAX;
    const uint32_t c = GetBe32(std::string_view(k.data(), 4));
    if (c != cid_) return c < cid_ ? -1 : INT64_MAX;
    return GetBe32(std::string_view(k.data() + 4, 4));
  };
  int64_t cur = current();
  // A short step forward is cheaper than a seek (a seek searches every level's index).
  constexpr int kMaxSteps = 16;
  if (cur < 0 || cur > int64_t{row} || int64_t{row} - cur > kMaxSteps) {
    it_->Seek(RowOnly(cid_, row));
    cur = current();
  }
  while (cur < int64_t{row}) {
    it_->Next();
    cur = current();
  }
  store_->CountReads(1);
  if (!it_->status().ok()) return FromRocks(it_->status(), "read payloads");
  if (cur != int64_t{row}) return false;
  out->assign(it_->value().data(), it_->value().size());
  return true;
}

Status MetadataStore::ForEachRowId(
    const ReadView* view, uint32_t cid, InternalId first, uint64_t end,
    const std::function<Status(InternalId, const PointId&)>& fn) const {
  const std::string prefix = Be32(cid) + 'i';
  if (end <= first) return Status::OK();
  const std::string limit =
      end > 0xFFFFFFFFu ? std::string() : prefix + Be32(static_cast<uint32_t>(end));
  return Scan(
      kIdMap, prefix,
      [&](std::string_view k, std::string_view v) -> Status {
        if (k.size() != prefix.size() + 4) return Status::Corruption("bad row -> id key");
        const InternalId row = GetBe32(k.substr(prefix.size()));
        auto id = PointId::FromKey(v);
        if (!id.ok()) {
          return Status::Corruption("bad point id of row " + std::to_string(row) + ": " +
                                    id.status().message());
        }
        return fn(row, *id);
      },
      view, prefix + Be32(first), limit);
}

Status MetadataStore::ForEachPayloadBytes(
    const ReadView* view, uint32_t cid,
    const std::function<Status(InternalId, std::string_view)>& fn) const {
  return Scan(
      kPayload, Be32(cid),
      [&](std::string_view k, std::string_view v) { return fn(GetBe32(k.substr(4)), v); }, view);
}

Status MetadataStore::ForEachTombstone(const ReadView* view, uint32_t cid,
                                       const std::function<Status(InternalId)>& fn) const {
  return Scan(
      kTombstone, Be32(cid),
      [&](std::string_view k, std::string_view) { return fn(GetBe32(k.substr(4))); }, view);
}

Status MetadataStore::ForEachOplog(
    uint32_t cid, uint64_t after,
    const std::function<Status(uint64_t, std::string_view)>& fn) const {
  if (after == UINT64_MAX) return Status::OK();
  return Scan(
      kOplog, Be32(cid),
      [&](std::string_view k, std::string_view v) {
        if (k.size() != 12) return Status::Corruption("bad oplog key");
        return fn(GetBe64(k.substr(4)), v);
      },
      nullptr, OplogKey(cid, after + 1));
}

Result<uint64_t> MetadataStore::LastOplogSeq(uint32_t cid) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[1 + kOplog]));
  it->SeekForPrev(OplogKey(cid, UINT64_MAX));
  if (!it->Valid()) return uint64_t{0};
  CountReads(1);
  const rocksdb::Slice k = it->key();
  if (k.size() != 12 || GetBe32(std::string_view(k.data(), 4)) != cid) return uint64_t{0};
  return GetBe64(std::string_view(k.data() + 4, 8));
}

Status MetadataStore::DeleteOplog(uint32_t cid, uint64_t through) {
  rocksdb::WriteBatch wb;
  const std::string lo = OplogKey(cid, 0);
  const std::string hi = through == UINT64_MAX ? Be32(cid + 1) : OplogKey(cid, through + 1);
  wb.DeleteRange(cfs_[1 + kOplog], lo, hi);
  return FromRocks(db_->Write(rocksdb::WriteOptions(), &wb), "delete oplog records");
}

}  // namespace vectord::storage
