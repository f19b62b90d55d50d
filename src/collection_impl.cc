// CollectionImpl: write path (validate -> append vectors -> commit metadata -> apply in RAM),
// recovery, and the exact read path. See docs/storage.md.
#include "src/collection_impl.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <set>

#include "index/distance.h"
#include "index/filter.h"
#include "index/flat_search.h"

namespace vectord {

Json CollectionConfigToJson(const CollectionConfig& c) {
  return Json{{"dim", c.dim},
              {"distance", DistanceName(c.distance)},
              {"datatype", DataTypeName(c.datatype)},
              {"fsync", c.fsync},
              {"on_disk", c.on_disk},
              {"extra", c.extra}};
}

Result<CollectionConfig> CollectionConfigFromJson(const Json& j) {
  try {
    CollectionConfig c;
    c.dim = j.at("dim").get<uint32_t>();
    auto d = ParseDistance(j.at("distance").get<std::string>());
    auto t = ParseDataType(j.at("datatype").get<std::string>());
    if (!d || !t) return Status::Corruption("catalog entry has an unknown distance or datatype");
    c.distance = *d;
    c.datatype = *t;
    c.fsync = j.value("fsync", true);
    c.on_disk = j.value("on_disk", false);
    c.extra = j.value("extra", Json::object());
    return c;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("catalog entry: ") + e.what());
  }
}

namespace {

// Splits "a.b.c" into keys (payload key paths of set_payload `key` and delete keys).
std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '.') {
      parts.push_back(path.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

void EraseAtPath(Json& obj, const std::vector<std::string>& parts, size_t i = 0) {
  if (!obj.is_object()) return;
  if (i + 1 == parts.size()) {
    obj.erase(parts[i]);
    return;
  }
  auto it = obj.find(parts[i]);
  if (it != obj.end()) EraseAtPath(*it, parts, i + 1);
}

const Json* FindAtPath(const Json& obj, const std::vector<std::string>& parts) {
  const Json* cur = &obj;
  for (const auto& p : parts) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(p);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

void SetAtPath(Json& obj, const std::vector<std::string>& parts, const Json& value) {
  Json* cur = &obj;
  for (const auto& p : parts) {
    if (!cur->is_object()) *cur = Json::object();
    cur = &(*cur)[p];
  }
  *cur = value;
}

}  // namespace

CollectionImpl::CollectionImpl(std::string name, uint32_t cid, std::string dir,
                               CollectionConfig config, storage::MetadataStore* store,
                               ThreadPool* pool)
    : name_(std::move(name)),
      cid_(cid),
      dir_(std::move(dir)),
      config_(std::move(config)),
      row_bytes_(config_.dim * static_cast<uint32_t>(DataTypeSize(config_.datatype))),
      store_(store),
      pool_(pool) {}

Result<std::shared_ptr<CollectionImpl>> CollectionImpl::Open(
    std::string name, uint32_t cid, const std::string& dir, const CollectionConfig& config,
    const std::vector<std::pair<std::string, PayloadSchemaType>>& payload_indexes,
    storage::MetadataStore* store, ThreadPool* pool) {
  std::shared_ptr<CollectionImpl> c(
      new CollectionImpl(std::move(name), cid, dir, config, store, pool));
  VECTORD_ASSIGN_OR_RETURN(c->file_,
                           storage::VectorFile::Open(dir + "/vectors.vdv", config.dim,
                                                     config.datatype));
  VECTORD_RETURN_IF_ERROR(c->Restore(payload_indexes).WithContext("collection '" + c->name_ + "'"));
  return c;
}

Status CollectionImpl::Restore(
    const std::vector<std::pair<std::string, PayloadSchemaType>>& payload_indexes) {
  VECTORD_ASSIGN_OR_RETURN(uint64_t committed, store_->Rows(cid_));
  if (file_->rows() > committed) {
    // A crash after the vector append but before the metadata commit: those rows were never
    // acknowledged. Drop them.
    VECTORD_RETURN_IF_ERROR(file_->Truncate(committed));
  }
  if (file_->rows() < committed) {
    // Only possible when fsync was off and the machine (not just the process) went down.
    std::cerr << "vectord: collection '" << name_ << "': vector file has " << file_->rows()
              << " rows, metadata expects " << committed
              << "; points in the missing rows are dropped (fsync was off?)\n";
  }
  rows_ = file_->rows();
  vectors_.resize(rows_ * row_bytes_);
  VECTORD_RETURN_IF_ERROR(file_->Scan([&](uint64_t first, uint64_t n, const uint8_t* bytes) {
    std::memcpy(vectors_.data() + first * row_bytes_, bytes, n * row_bytes_);
    return Status::OK();
  }));
  live_bits_.assign((rows_ + 63) / 64, 0);
  row_to_id_.assign(rows_, PointId());
  payloads_.assign(rows_, Json());
  std::vector<std::pair<PointId, InternalId>> lost;
  VECTORD_RETURN_IF_ERROR(store_->ForEachMapping(cid_, [&](const PointId& id, InternalId row) {
    if (row >= rows_) {
      lost.emplace_back(id, row);
      return Status::OK();
    }
    id_to_row_.emplace_hint(id_to_row_.end(), id, row);
    row_to_id_[row] = id;
    live_bits_[row >> 6] |= uint64_t{1} << (row & 63);
    live_.add(row);
    return Status::OK();
  }));
  if (!lost.empty()) {
    storage::MetaBatch b(cid_);
    for (auto& [id, row] : lost) b.UnmapId(id, row);
    b.SetRows(rows_);
    VECTORD_RETURN_IF_ERROR(store_->Commit(b, true));
  }
  VECTORD_RETURN_IF_ERROR(store_->ForEachPayload(cid_, [&](InternalId row, Json&& p) {
    if (IsLive(row)) payloads_[row] = std::move(p);
    return Status::OK();
  }));
  for (const auto& [field, type] : payload_indexes) {
    VECTORD_RETURN_IF_ERROR(indexes_.Create(field, type, [&](const auto& emit) {
      for (InternalId r : live_) {
        if (!payloads_[r].is_null()) emit(r, payloads_[r]);
      }
    }));
  }
  live_.runOptimize();
  return Status::OK();
}

Json CollectionImpl::CatalogJson() const {
  Json idx = Json::array();
  {
    std::shared_lock l(mu_);
    for (const auto& info : indexes_.List()) {
      idx.push_back({{"field", info.field}, {"type", PayloadSchemaName(info.type)}});
    }
  }
  return Json{{"name", name_}, {"config", CollectionConfigToJson(config_)}, {"payload_indexes", idx}};
}

void CollectionImpl::MarkDropped() {
  std::lock_guard<std::mutex> l(write_mu_);
  dropped_ = true;
}

Status CollectionImpl::CheckWritable() const {
  if (dropped_) return Status::NotFound("collection '" + name_ + "' was deleted");
  return Status::OK();
}

CollectionInfo CollectionImpl::Info() const {
  CollectionInfo info;
  info.config = config_;
  std::shared_lock l(mu_);
  info.points_count = id_to_row_.size();
  // Exact search needs no ANN index: no vectors are "indexed" in Qdrant's sense yet.
  info.indexed_vectors_count = 0;
  for (const auto& i : indexes_.List()) {
    info.payload_schema.emplace_back(i.field, i.type);
    info.payload_schema_points.emplace_back(i.field, i.points);
  }
  return info;
}

Status CollectionImpl::EncodeVector(size_t point_index, const std::vector<float>& v,
                                    std::vector<uint8_t>* out) const {
  auto where = [&] { return "point " + std::to_string(point_index) + ": "; };
  if (v.size() != config_.dim) {
    return Status::InvalidArgument(where() + "vector has " + std::to_string(v.size()) +
                                   " dimensions, collection '" + name_ + "' expects " +
                                   std::to_string(config_.dim));
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return Status::InvalidArgument(where() + "vector element " + std::to_string(i) +
                                     " is not a finite number");
    }
  }
  const size_t base = out->size();
  out->resize(base + row_bytes_);
  uint8_t* dst = out->data() + base;
  auto check_int = [&](size_t i, float lo, float hi) -> Status {
    if (v[i] != std::nearbyint(v[i]) || v[i] < lo || v[i] > hi) {
      return Status::InvalidArgument(where() + "vector element " + std::to_string(i) + " = " +
                                     std::to_string(v[i]) + " is not an integer in [" +
                                     std::to_string(int(lo)) + ", " + std::to_string(int(hi)) +
                                     "] as datatype " + DataTypeName(config_.datatype) +
                                     " requires");
    }
    return Status::OK();
  };
  float scale = 1.0f;
  if (config_.distance == Distance::kCosine) {
    double norm = 0;
    for (float x : v) norm += double{x} * x;
    if (norm > 0) scale = static_cast<float>(1.0 / std::sqrt(norm));
  }
  switch (config_.datatype) {
    case DataType::kFloat32:
      for (size_t i = 0; i < v.size(); ++i) {
        const float x = v[i] * scale;
        std::memcpy(dst + 4 * i, &x, 4);
      }
      break;
    case DataType::kFloat16:
      for (size_t i = 0; i < v.size(); ++i) {
        const float x = v[i] * scale;
        if (std::fabs(x) > 65504.0f) {
          return Status::InvalidArgument(where() + "vector element " + std::to_string(i) +
                                         " overflows float16");
        }
        const uint16_t h = index::FloatToHalf(x);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
    case DataType::kUint8:
      for (size_t i = 0; i < v.size(); ++i) {
        VECTORD_RETURN_IF_ERROR(check_int(i, 0, 255));
        dst[i] = static_cast<uint8_t>(v[i]);
      }
      break;
    case DataType::kInt8:
      for (size_t i = 0; i < v.size(); ++i) {
        VECTORD_RETURN_IF_ERROR(check_int(i, -128, 127));
        dst[i] = static_cast<uint8_t>(static_cast<int8_t>(v[i]));
      }
      break;
  }
  return Status::OK();
}

std::vector<float> CollectionImpl::DecodeRow(InternalId row) const {
  std::vector<float> v(config_.dim);
  const uint8_t* p = vectors_.data() + uint64_t{row} * row_bytes_;
  for (uint32_t i = 0; i < config_.dim; ++i) {
    switch (config_.datatype) {
      case DataType::kFloat32: std::memcpy(&v[i], p + 4 * i, 4); break;
      case DataType::kFloat16: {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        v[i] = index::HalfToFloat(h);
        break;
      }
      case DataType::kUint8: v[i] = p[i]; break;
      case DataType::kInt8: v[i] = static_cast<int8_t>(p[i]); break;
    }
  }
  return v;
}

Result<uint64_t> CollectionImpl::Upsert(std::vector<PointStruct> points, bool wait) {
  // Validate and encode everything before touching anything: a bad batch changes nothing.
  // Duplicate ids in one batch: the last one wins, as in Qdrant.
  std::vector<uint8_t> bytes;
  bytes.reserve(points.size() * row_bytes_);
  std::unordered_map<PointId, size_t, PointIdHash> last;
  last.reserve(points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    const Json& p = points[i].payload;
    if (!p.is_null() && !p.is_object()) {
      return Status::InvalidArgument("point " + std::to_string(i) +
                                     ": payload must be a JSON object or null");
    }
    VECTORD_RETURN_IF_ERROR(EncodeVector(i, points[i].vector, &bytes));
    last[points[i].id] = i;
  }
  std::vector<size_t> keep;
  keep.reserve(last.size());
  for (size_t i = 0; i < points.size(); ++i) {
    if (last[points[i].id] == i) keep.push_back(i);
  }
  if (keep.size() != points.size()) {
    std::vector<uint8_t> packed(keep.size() * row_bytes_);
    for (size_t j = 0; j < keep.size(); ++j) {
      std::memcpy(&packed[j * row_bytes_], &bytes[keep[j] * row_bytes_], row_bytes_);
    }
    bytes.swap(packed);
  }

  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  if (keep.empty()) return ++op_seq_;
  const uint64_t first = file_->rows();
  if (first + keep.size() >= kInvalidInternalId) {
    return Status::FailedPrecondition("collection '" + name_ + "' is full (2^32 rows)");
  }
  VECTORD_RETURN_IF_ERROR(file_->Append(bytes.data(), keep.size()));
  auto undo = [&](Status s) {
    (void)file_->Truncate(first);
    return s;
  };
  if (SyncOn(wait)) {
    Status s = file_->Sync();
    if (!s.ok()) return undo(s);
  }
  storage::MetaBatch batch(cid_);
  std::vector<InternalId> old_rows(keep.size(), kInvalidInternalId);
  {
    std::shared_lock l(mu_);
    for (size_t j = 0; j < keep.size(); ++j) {
      const PointStruct& p = points[keep[j]];
      const InternalId row = static_cast<InternalId>(first + j);
      auto it = id_to_row_.find(p.id);
      if (it != id_to_row_.end()) {
        old_rows[j] = it->second;
        batch.UnmapRow(it->second);
        batch.Tombstone(it->second);
        batch.DeletePayload(it->second);
      }
      batch.MapId(p.id, row);
      batch.PutPayload(row, p.payload);
    }
  }
  batch.SetRows(first + keep.size());
  Status s = store_->Commit(batch, SyncOn(wait));
  if (!s.ok()) return undo(s);

  // Durable: apply to the in-RAM state.
  std::unique_lock l(mu_);
  rows_ = first + keep.size();
  vectors_.insert(vectors_.end(), bytes.begin(), bytes.end());
  live_bits_.resize((rows_ + 63) / 64, 0);
  row_to_id_.resize(rows_);
  payloads_.resize(rows_);
  for (size_t j = 0; j < keep.size(); ++j) {
    PointStruct& p = points[keep[j]];
    const InternalId row = static_cast<InternalId>(first + j);
    if (old_rows[j] != kInvalidInternalId) {
      const InternalId old = old_rows[j];
      live_bits_[old >> 6] &= ~(uint64_t{1} << (old & 63));
      live_.remove(old);
      if (!payloads_[old].is_null()) indexes_.Erase(old, payloads_[old]);
      payloads_[old] = Json();
    }
    live_bits_[row >> 6] |= uint64_t{1} << (row & 63);
    live_.add(row);
    id_to_row_[p.id] = row;
    row_to_id_[row] = p.id;
    if (p.payload.is_object() && !p.payload.empty()) {
      indexes_.Insert(row, p.payload);
      payloads_[row] = std::move(p.payload);
    }
  }
  return ++op_seq_;
}

Roaring CollectionImpl::SelectRows(const Filter& filter) const {
  index::FilterContext ctx;
  ctx.payload = [this](InternalId r) -> const Json* {
    return payloads_[r].is_null() ? nullptr : &payloads_[r];
  };
  ctx.point_id = [this](InternalId r) { return row_to_id_[r]; };
  ctx.lookup = [this](const PointId& id) -> std::optional<InternalId> {
    auto it = id_to_row_.find(id);
    if (it == id_to_row_.end()) return std::nullopt;
    return it->second;
  };
  ctx.indexes = &indexes_;
  return index::Select(&filter, live_, ctx);
}

Result<std::vector<InternalId>> CollectionImpl::ResolveRows(const PointSelector& sel) const {
  std::vector<InternalId> rows;
  if (sel.filter) {
    Roaring r = SelectRows(*sel.filter);
    rows.resize(r.cardinality());
    r.toUint32Array(rows.data());
    return rows;
  }
  for (const auto& id : sel.ids) {
    auto it = id_to_row_.find(id);
    if (it != id_to_row_.end()) rows.push_back(it->second);
  }
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

Result<uint64_t> CollectionImpl::Delete(const PointSelector& sel, bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  std::vector<InternalId> rows;
  storage::MetaBatch batch(cid_);
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
    for (InternalId r : rows) {
      batch.UnmapId(row_to_id_[r], r);
      batch.Tombstone(r);
      batch.DeletePayload(r);
    }
  }
  if (rows.empty()) return ++op_seq_;
  VECTORD_RETURN_IF_ERROR(store_->Commit(batch, SyncOn(wait)));
  std::unique_lock l(mu_);
  for (InternalId r : rows) {
    id_to_row_.erase(row_to_id_[r]);
    live_bits_[r >> 6] &= ~(uint64_t{1} << (r & 63));
    live_.remove(r);
    if (!payloads_[r].is_null()) indexes_.Erase(r, payloads_[r]);
    payloads_[r] = Json();
  }
  return ++op_seq_;
}

Result<uint64_t> CollectionImpl::CommitPayloads(const std::vector<InternalId>& rows,
                                                std::vector<Json> new_payloads, bool wait) {
  storage::MetaBatch batch(cid_);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (new_payloads[i].is_object() && new_payloads[i].empty()) new_payloads[i] = Json();
    batch.PutPayload(rows[i], new_payloads[i]);
  }
  if (!rows.empty()) VECTORD_RETURN_IF_ERROR(store_->Commit(batch, SyncOn(wait)));
  std::unique_lock l(mu_);
  for (size_t i = 0; i < rows.size(); ++i) {
    const InternalId r = rows[i];
    if (!IsLive(r)) continue;  // cannot happen: writers are serialized
    if (!payloads_[r].is_null()) indexes_.Erase(r, payloads_[r]);
    payloads_[r] = std::move(new_payloads[i]);
    if (!payloads_[r].is_null()) indexes_.Insert(r, payloads_[r]);
  }
  return ++op_seq_;
}

namespace {

Status CheckPayloadObject(const Json& payload) {
  if (!payload.is_object()) return Status::InvalidArgument("payload must be a JSON object");
  return Status::OK();
}

}  // namespace

Result<uint64_t> CollectionImpl::SetPayload(const PointSelector& sel, const Json& payload,
                                            const std::optional<std::string>& key, bool wait) {
  VECTORD_RETURN_IF_ERROR(CheckPayloadObject(payload));
  if (key && key->empty()) return Status::InvalidArgument("key must not be empty");
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  std::vector<InternalId> rows;
  std::vector<Json> updated;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
    const auto parts = key ? SplitPath(*key) : std::vector<std::string>{};
    for (InternalId r : rows) {
      Json p = payloads_[r].is_null() ? Json::object() : payloads_[r];
      Json* target = &p;
      if (key) {
        const Json* existing = FindAtPath(p, parts);
        if (!existing || !existing->is_object()) SetAtPath(p, parts, Json::object());
        target = &p;
        for (const auto& part : parts) target = &(*target)[part];
      }
      for (auto it = payload.begin(); it != payload.end(); ++it) (*target)[it.key()] = it.value();
      updated.push_back(std::move(p));
    }
  }
  return CommitPayloads(rows, std::move(updated), wait);
}

Result<uint64_t> CollectionImpl::OverwritePayload(const PointSelector& sel, const Json& payload,
                                                  bool wait) {
  VECTORD_RETURN_IF_ERROR(CheckPayloadObject(payload));
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  std::vector<InternalId> rows;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
  }
  return CommitPayloads(rows, std::vector<Json>(rows.size(), payload), wait);
}

Result<uint64_t> CollectionImpl::DeletePayloadKeys(const PointSelector& sel,
                                                   const std::vector<std::string>& keys,
                                                   bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  std::vector<InternalId> rows;
  std::vector<Json> updated;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
    for (InternalId r : rows) {
      Json p = payloads_[r].is_null() ? Json::object() : payloads_[r];
      for (const auto& k : keys) EraseAtPath(p, SplitPath(k));
      updated.push_back(std::move(p));
    }
  }
  return CommitPayloads(rows, std::move(updated), wait);
}

Result<uint64_t> CollectionImpl::ClearPayload(const PointSelector& sel, bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  std::vector<InternalId> rows;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
  }
  return CommitPayloads(rows, std::vector<Json>(rows.size(), Json()), wait);
}

Json CollectionImpl::ProjectPayload(const Json& p, const std::vector<std::string>& include,
                                    const std::vector<std::string>& exclude) const {
  if (p.is_null()) return Json::object();
  if (include.empty() && exclude.empty()) return p;
  Json out;
  if (!include.empty()) {
    out = Json::object();
    for (const auto& k : include) {
      const auto parts = SplitPath(k);
      if (const Json* v = FindAtPath(p, parts)) SetAtPath(out, parts, *v);
    }
  } else {
    out = p;
  }
  for (const auto& k : exclude) EraseAtPath(out, SplitPath(k));
  return out;
}

Result<std::vector<Record>> CollectionImpl::Retrieve(const std::vector<PointId>& ids,
                                                     bool with_payload, bool with_vector) const {
  std::vector<Record> out;
  std::set<PointId> seen;
  std::shared_lock l(mu_);
  for (const auto& id : ids) {
    auto it = id_to_row_.find(id);
    if (it == id_to_row_.end() || !seen.insert(id).second) continue;
    Record r;
    r.id = id;
    if (with_payload) r.payload = ProjectPayload(payloads_[it->second], {}, {});
    if (with_vector) r.vector = DecodeRow(it->second);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<float> CollectionImpl::PrepareQuery(const std::vector<float>& q) const {
  std::vector<float> v = q;
  if (config_.distance == Distance::kCosine) {
    double norm = 0;
    for (float x : v) norm += double{x} * x;
    if (norm > 0) {
      const float s = static_cast<float>(1.0 / std::sqrt(norm));
      for (float& x : v) x *= s;
    }
  }
  return v;
}

Result<std::vector<ScoredPoint>> CollectionImpl::Search(const SearchRequest& req) const {
  if (req.vector.size() != config_.dim) {
    return Status::InvalidArgument("query vector has " + std::to_string(req.vector.size()) +
                                   " dimensions, collection '" + name_ + "' expects " +
                                   std::to_string(config_.dim));
  }
  for (size_t i = 0; i < req.vector.size(); ++i) {
    if (!std::isfinite(req.vector[i])) {
      return Status::InvalidArgument("query vector element " + std::to_string(i) +
                                     " is not a finite number");
    }
  }
  const std::vector<float> q = PrepareQuery(req.vector);
  const size_t k = req.offset + req.limit;
  std::vector<ScoredPoint> out;
  if (req.limit == 0) return out;
  std::shared_lock l(mu_);
  index::FlatView view{vectors_.data(), rows_, config_.dim, config_.datatype, config_.distance};
  std::vector<index::Neighbor> hits;
  if (req.filter) {
    Roaring allowed = SelectRows(*req.filter);
    index::RowFilter rf;
    rf.allowed = &allowed;
    hits = index::FlatSearch(view, q.data(), k, rf);
  } else {
    index::RowFilter rf;
    rf.live_bits = live_bits_.data();
    hits = index::FlatSearch(view, q.data(), k, rf);
  }
  const bool lower_better = LowerIsBetter(config_.distance);
  for (size_t i = req.offset; i < hits.size(); ++i) {
    const auto& h = hits[i];
    if (req.score_threshold &&
        (lower_better ? h.score > *req.score_threshold : h.score < *req.score_threshold)) {
      break;
    }
    ScoredPoint sp;
    sp.id = row_to_id_[h.row];
    sp.version = h.row;
    sp.score = h.score;
    if (req.with_payload) {
      sp.payload = ProjectPayload(payloads_[h.row], req.payload_include, req.payload_exclude);
    }
    if (req.with_vector) sp.vector = DecodeRow(h.row);
    out.push_back(std::move(sp));
  }
  return out;
}

Result<std::vector<std::vector<ScoredPoint>>> CollectionImpl::SearchBatch(
    const std::vector<SearchRequest>& reqs) const {
  std::vector<Result<std::vector<ScoredPoint>>> results(reqs.size(),
                                                        Status::Internal("not run"));
  pool_->ParallelFor(reqs.size(), [&](size_t i) { results[i] = Search(reqs[i]); });
  std::vector<std::vector<ScoredPoint>> out;
  out.reserve(reqs.size());
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) {
      return results[i].status().WithContext("search " + std::to_string(i));
    }
    out.push_back(std::move(results[i]).value());
  }
  return out;
}

Result<ScrollResult> CollectionImpl::Scroll(const ScrollRequest& req) const {
  ScrollResult out;
  std::shared_lock l(mu_);
  auto it = req.offset ? id_to_row_.lower_bound(*req.offset) : id_to_row_.begin();
  std::optional<Roaring> allowed;
  if (req.filter) allowed = SelectRows(*req.filter);
  for (; it != id_to_row_.end(); ++it) {
    if (allowed && !allowed->contains(it->second)) continue;
    if (out.points.size() == req.limit) {
      out.next_page_offset = it->first;
      break;
    }
    Record r;
    r.id = it->first;
    if (req.with_payload) {
      r.payload = ProjectPayload(payloads_[it->second], req.payload_include, req.payload_exclude);
    }
    if (req.with_vector) r.vector = DecodeRow(it->second);
    out.points.push_back(std::move(r));
  }
  return out;
}

Result<uint64_t> CollectionImpl::Count(const FilterPtr& filter) const {
  std::shared_lock l(mu_);
  if (!filter) return uint64_t{id_to_row_.size()};
  return SelectRows(*filter).cardinality();
}

Result<uint64_t> CollectionImpl::CreatePayloadIndex(const std::string& field,
                                                    PayloadSchemaType type, bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  {
    // Building reads payloads only; writers are excluded by write_mu_, readers may go on...
    // but the index set itself is read by searches, so build under the exclusive lock.
    std::unique_lock l(mu_);
    if (const auto* existing = indexes_.Get(field)) {
      if (existing->type() == type) return ++op_seq_;
      indexes_.Drop(field);
    }
    VECTORD_RETURN_IF_ERROR(indexes_.Create(field, type, [&](const auto& emit) {
      for (InternalId r : live_) {
        if (!payloads_[r].is_null()) emit(r, payloads_[r]);
      }
    }));
  }
  storage::MetaBatch batch(cid_);
  batch.PutCollectionConfig(CatalogJson().dump());
  Status s = store_->Commit(batch, true);
  if (!s.ok()) {
    std::unique_lock l(mu_);
    indexes_.Drop(field);
    return s;
  }
  return ++op_seq_;
}

Result<uint64_t> CollectionImpl::DeletePayloadIndex(const std::string& field, bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  {
    std::unique_lock l(mu_);
    if (!indexes_.Drop(field)) {
      return Status::NotFound("collection '" + name_ + "' has no payload index on '" + field + "'");
    }
  }
  storage::MetaBatch batch(cid_);
  batch.PutCollectionConfig(CatalogJson().dump());
  VECTORD_RETURN_IF_ERROR(store_->Commit(batch, true));
  return ++op_seq_;
}

}  // namespace vectord
