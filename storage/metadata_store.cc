// MetadataStore on RocksDB; keys are prefixed with the 4-byte big-endian collection id so one
// collection's keys are contiguous (scans and DeleteRange by prefix).
#include "storage/metadata_store.h"

#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <cstring>

namespace vectord::storage {
namespace {

enum Cf { kCatalog = 0, kIdMap = 1, kPayload = 2, kTombstone = 3 };
const char* const kCfNames[] = {"catalog", "idmap", "payload", "tombstone"};

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
void MetaBatch::SetRows(uint64_t rows) {
  ops_.push_back({kCatalog, false, RowsKey(cid_), Le(rows, 8)});
}
void MetaBatch::PutCollectionConfig(const std::string& json) {
  ops_.push_back({kCatalog, false, CollKey(cid_), json});
}
size_t MetaBatch::Count() const { return ops_.size(); }

Result<std::unique_ptr<MetadataStore>> MetadataStore::Open(const std::string& dir,
                                                           uint64_t block_cache_bytes) {
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.max_background_jobs = 2;
  rocksdb::ColumnFamilyOptions cf_opts;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(block_cache_bytes);
  cf_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf_opts.compression = rocksdb::kNoCompression;
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  descs.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_opts);
  for (const char* n : kCfNames) descs.emplace_back(n, cf_opts);
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

Status MetadataStore::Scan(
    int cf, const std::string& prefix,
    const std::function<Status(std::string_view, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[1 + cf]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    VECTORD_RETURN_IF_ERROR(fn(std::string_view(it->key().data(), it->key().size()),
                               std::string_view(it->value().data(), it->value().size())));
  }
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
  for (int cf : {kIdMap, kPayload, kTombstone}) wb.DeleteRange(cfs_[1 + cf], lo, hi);
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
  return Scan(kPayload, Be32(cid), [&](std::string_view k, std::string_view v) {
    const InternalId row = GetBe32(k.substr(4));
    Json j = Json::from_msgpack(v.begin(), v.end(), true, false);
    if (j.is_discarded()) {
      return Status::Corruption("payload of row " + std::to_string(row) + " is not valid msgpack");
    }
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

}  // namespace vectord::storage
