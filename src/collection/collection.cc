// CollectionImpl: the coordinator (collection.h) — recovery at open, the write path's sequence
// (validate -> append vectors -> commit metadata -> apply in RAM), and reads over one consistent
// view of the parts. docs/storage.md.
#include "src/collection/collection.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <set>
#include <unordered_map>

#include "index/filter.h"
#include "src/collection/collection_config.h"
#include "src/jobs/thread_pool.h"
#include "src/multivector/fde_pq.h"
#include "src/multivector/token_codes.h"
#include "src/points/payload_edit.h"
#include "src/search/query_planner.h"
#include "src/search/vector_search.h"
#include "src/vectors/vector_codec.h"
#include "src/vectors/vector_store.h"

namespace vectord {

CollectionImpl::CollectionImpl(std::string name, uint32_t cid, std::string dir,
                               CollectionConfig config, const CollectionEnv& env)
    : name_(std::move(name)),
      cid_(cid),
      dir_(std::move(dir)),
      config_(std::move(config)),
      store_(env.store),
      pool_(env.pool),
      jobs_(std::make_unique<JobSet>(env.jobs, name_)) {}

Result<std::shared_ptr<CollectionImpl>> CollectionImpl::Open(std::string name, uint32_t cid,
                                                             const std::string& dir,
                                                             const CollectionConfig& config,
                                                             const Json& catalog,
                                                             const CollectionEnv& env) {
  std::shared_ptr<CollectionImpl> c(new CollectionImpl(std::move(name), cid, dir, config, env));
  const CollectionConfig& cc = c->config_;
  // Multi-vector collections keep one MUVERA encoding per document in the vector file (float16,
  // scored by Dot): the single-vector machinery finds their candidates.
  const uint32_t vdim = cc.multivector ? MuveraFdeDim(cc.multivector->muvera) : cc.dim;
  VECTORD_ASSIGN_OR_RETURN(c->vectors_,
                           VectorStore::Open(dir + "/vectors.vdv", vdim,
                                             cc.multivector ? DataType::kFloat16 : cc.datatype,
                                             cc.multivector ? Distance::kDot : cc.distance));
  if (cc.spann) {
    IndexHost* host = c.get();
    c->index_ = std::make_unique<CollectionIndex>(host, c->config_, c->vectors_.get(), dir,
                                                  c->pool_, c->jobs_.get());
  }
  if (cc.multivector) {
    CollectionImpl* self = c.get();
    c->fde_pq_job_ =
        c->jobs_->Add("fde_pq", JobPriority::kLow, [self](Job& j) { self->TrainFdePq(j); });
  }
  VECTORD_RETURN_IF_ERROR(c->Restore(catalog).WithContext("collection '" + c->name_ + "'"));
  {
    std::lock_guard<std::mutex> wl(c->write_mu_);
    c->MaybeStartWork();
  }
  return c;
}

CollectionImpl::~CollectionImpl() {
  if (index_) index_->Cancel();
  jobs_->Cancel();
  jobs_->WaitIdle();
}

Status CollectionImpl::Restore(const Json& catalog) {
  VECTORD_ASSIGN_OR_RETURN(uint64_t committed, store_->Rows(cid_));
  if (vectors_->file_rows() > committed) {
    // A crash after the vector append but before the metadata commit: those rows were never
    // acknowledged. Drop them.
    VECTORD_RETURN_IF_ERROR(vectors_->TruncateFile(committed));
  }
  if (vectors_->file_rows() < committed) {
    // Only possible when fsync was off and the machine (not just the process) went down.
    std::cerr << "vectord: collection '" << name_ << "': vector file has " << vectors_->file_rows()
              << " rows, metadata expects " << committed
              << "; points in the missing rows are dropped (fsync was off?)\n";
  }
  if (config_.multivector) VECTORD_RETURN_IF_ERROR(RestoreTokens(catalog));
  const uint64_t rows = vectors_->file_rows();

  // A SPANN index serves the rows below its end from SSD; the others are read into RAM.
  uint64_t ram_base = 0;
  if (index_) {
    const Json manifest = catalog.is_object() ? catalog.value("spann_index", Json()) : Json();
    VECTORD_ASSIGN_OR_RETURN(ram_base, index_->Restore(manifest, rows));
  }
  VECTORD_RETURN_IF_ERROR(vectors_->LoadRam(ram_base));

  live_bits_.assign((rows + 63) / 64, 0);
  row_to_id_.assign(rows, PointId());
  payloads_.assign(rows, Json());
  std::vector<std::pair<PointId, InternalId>> lost;
  VECTORD_RETURN_IF_ERROR(store_->ForEachMapping(cid_, [&](const PointId& id, InternalId row) {
    if (row >= rows) {
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
    b.SetRows(rows);
    VECTORD_RETURN_IF_ERROR(store_->Commit(b, true));
  }
  VECTORD_RETURN_IF_ERROR(store_->ForEachPayload(cid_, [&](InternalId row, Json&& p) {
    if (IsLive(row)) payloads_[row] = std::move(p);
    return Status::OK();
  }));
  const Json idx_list =
      catalog.is_object() ? catalog.value("payload_indexes", Json::array()) : Json::array();
  for (const auto& idx : idx_list) {
    auto type = ParsePayloadSchema(idx.value("type", ""));
    if (!type) return Status::Corruption("catalog entry has a bad payload index: " + idx.dump());
    VECTORD_RETURN_IF_ERROR(indexes_.Create(idx.value("field", ""), *type, [&](const auto& emit) {
      for (InternalId r : live_) {
        if (!payloads_[r].is_null()) emit(r, payloads_[r]);
      }
    }));
  }
  live_.runOptimize();
  if (index_) {
    index_->OnRowsWritten(rows);
    VECTORD_RETURN_IF_ERROR(index_->RestoreSideData());
  }
  return Status::OK();
}

Json CollectionImpl::CatalogJson() const {
  Json idx = Json::array();
  Json manifest;
  std::vector<float> center;
  {
    std::shared_lock l(mu_);
    for (const auto& info : indexes_.List()) {
      idx.push_back({{"field", info.field}, {"type", PayloadSchemaName(info.type)}});
    }
    if (index_) manifest = index_->Manifest();
    center = muvera_center_;
  }
  Json j{{"name", name_}, {"config", CollectionConfigToJson(config_)}, {"payload_indexes", idx}};
  if (manifest.is_object()) j["spann_index"] = manifest;
  if (!center.empty()) j["muvera_center"] = center;
  return j;
}

Status CollectionImpl::CommitCatalog() {
  storage::MetaBatch batch(cid_);
  batch.PutCollectionConfig(CatalogJson().dump());
  return store_->Commit(batch, true);
}

void CollectionImpl::OnRowsAssigned(uint64_t rows) {
  Status s = vectors_->DropRamBelow(rows);
  if (!s.ok()) std::cerr << "vectord: collection '" << name_ << "': " << s.ToString() << "\n";
}

void CollectionImpl::OnIndexInstalled(uint64_t rows) {
  Status s = vectors_->DropRamBelow(rows);
  if (!s.ok()) {
    // The RAM rows stay (searches scan them exactly beside the index): correct, only slower.
    std::cerr << "vectord: collection '" << name_ << "': " << s.ToString() << "\n";
  }
  fde_pq_.reset();  // the FDE PQ stage covers collections with no SPANN index only
}

std::vector<std::string> CollectionImpl::PayloadIndexFields() const {
  std::vector<std::string> fields;
  for (const auto& info : indexes_.List()) fields.push_back(info.field);
  return fields;
}

Status CollectionImpl::ReadPayloads(const std::vector<uint32_t>& rows,
                                    std::vector<Json>* out) const {
  out->resize(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    (*out)[i] = rows[i] < payloads_.size() ? payloads_[rows[i]] : Json();
  }
  return Status::OK();
}

void CollectionImpl::MaybeStartWork() {
  if (config_.multivector) MaybeTrainFdePq();
  if (index_) index_->MaybeStartWork();
}

bool CollectionImpl::WaitIdle(uint64_t timeout_ms) const { return jobs_->WaitIdle(timeout_ms); }

uint64_t CollectionImpl::SummaryDirtyRows() const {
  std::shared_lock l(mu_);
  return index_ ? index_->SummaryDirtyRows() : 0;
}

void CollectionImpl::MarkDropped() {
  if (index_) index_->Cancel();  // a background index build stops at its next chunk
  jobs_->Cancel();
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
  if (index_) {
    index_->FillInfo(&info);
    index_->FillMemory(&info.memory);
  }
  info.memory.emplace_back("vectors_ram", vectors_->ram_bytes());
  // Points inside the SSD index (exact search needs none: 0 without an index).
  const uint64_t indexed = index_ && index_->has_index() ? index_->durable_rows() : 0;
  info.indexed_vectors_count = indexed == 0 ? 0 : live_.rank(static_cast<uint32_t>(indexed - 1));
  for (const auto& i : indexes_.List()) {
    info.payload_schema.emplace_back(i.field, i.type);
    info.payload_schema_points.emplace_back(i.field, i.points);
  }
  return info;
}

SearchSources CollectionImpl::Sources() const {
  SearchSources s;
  s.vectors = vectors_.get();
  s.live = &live_;
  s.live_bits = live_bits_.data();
  if (index_) index_->FillSources(&s);
  return s;
}

Status CollectionImpl::FillVector(InternalId row, std::optional<std::vector<float>>* v,
                                  uint32_t* count) const {
  if (!config_.multivector) {
    VECTORD_ASSIGN_OR_RETURN(*v, vectors_->Decode(row));
    *count = 0;
    return Status::OK();
  }
  const storage::TokenSpan& sp = token_spans_[row];
  v->emplace(size_t{sp.count} * config_.dim);
  if (!config_.on_disk) {
    DecodeTokens(storage::TokenStore::RecordVectors(token_ram_.data() + sp.offset -
                                                    storage::TokenStore::kHeaderBytes),
                 sp.count, (*v)->data());
  } else {
    std::vector<uint8_t> bytes;
    std::vector<uint64_t> offs;
    VECTORD_RETURN_IF_ERROR(tokens_->ReadSets(&sp, &row, 1, &bytes, &offs));
    DecodeTokens(bytes.data(), sp.count, (*v)->data());
  }
  *count = token_spans_[row].count;
  return Status::OK();
}

Result<uint64_t> CollectionImpl::Upsert(std::vector<PointStruct> points, bool wait) {
  // Validate and encode everything before touching anything: a bad batch changes nothing.
  // Duplicate ids in one batch: the last one wins, as in Qdrant.
  const uint32_t row_bytes = vectors_->row_bytes();
  std::vector<uint8_t> bytes;
  bytes.reserve(points.size() * row_bytes);
  std::unordered_map<PointId, size_t, PointIdHash> last;
  last.reserve(points.size());
  // Multi-vector collections: each point's token vectors as stored (its FDE is made below).
  std::vector<std::vector<uint8_t>> token_bytes(config_.multivector ? points.size() : 0);
  for (size_t i = 0; i < points.size(); ++i) {
    const Json& p = points[i].payload;
    if (!p.is_null() && !p.is_object()) {
      return Status::InvalidArgument("point " + std::to_string(i) +
                                     ": payload must be a JSON object or null");
    }
    if (config_.multivector) {
      VECTORD_RETURN_IF_ERROR(EncodeTokens(i, points[i], &token_bytes[i]));
    } else if (points[i].vector_count != 0) {
      return Status::InvalidArgument("point " + std::to_string(i) + ": collection '" + name_ +
                                     "' holds single vectors, got a list of vectors");
    } else {
      const std::string where = "point " + std::to_string(i) + ": ";
      if (points[i].vector.size() != vectors_->dim()) {
        return Status::InvalidArgument(
            where + "vector has " + std::to_string(points[i].vector.size()) +
            " dimensions, collection '" + name_ + "' expects " + std::to_string(vectors_->dim()));
      }
      VECTORD_RETURN_IF_ERROR(vectors_->Encode(where + "vector ", points[i].vector.data(), &bytes));
    }
    last[points[i].id] = i;
  }
  std::vector<size_t> keep;
  keep.reserve(last.size());
  for (size_t i = 0; i < points.size(); ++i) {
    if (last[points[i].id] == i) keep.push_back(i);
  }
  if (keep.size() != points.size() && !config_.multivector) {
    std::vector<uint8_t> packed(keep.size() * row_bytes);
    for (size_t j = 0; j < keep.size(); ++j) {
      std::memcpy(&packed[j * row_bytes], &bytes[keep[j] * row_bytes], row_bytes);
    }
    bytes.swap(packed);
  }

  // The living index's delta is bounded: wait (holding no lock) while it is full.
  if (index_) index_->WaitForRoom(keep.size());
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  if (keep.empty()) return ++op_seq_;
  const uint64_t first = vectors_->file_rows();
  if (first + keep.size() >= kInvalidInternalId) {
    return Status::FailedPrecondition("collection '" + name_ + "' is full (2^32 rows)");
  }
  // Multi-vector: the kept points' FDEs (the vector file's rows) and their token sets.
  MultiBatch mb;
  if (config_.multivector) {
    VECTORD_RETURN_IF_ERROR(PrepareMulti(token_bytes, keep, &mb));
    bytes.swap(mb.fde_bytes);
    VECTORD_RETURN_IF_ERROR(tokens_->Append(mb.tokens.data(), mb.counts, &mb.spans,
                                            config_.on_disk ? nullptr : &mb.records));
  }
  const uint64_t token_end = tokens_ ? tokens_->data_size() : 0;
  auto undo = [&](Status s) {
    (void)vectors_->TruncateFile(first);
    if (tokens_) (void)tokens_->Truncate(first, mb.spans.empty() ? token_end : mb.spans[0].offset);
    return s;
  };
  {
    Status s = vectors_->Append(bytes.data(), keep.size());
    if (!s.ok()) return undo(s);
  }
  if (SyncOn(wait)) {
    Status s = vectors_->Sync();
    if (s.ok() && tokens_) s = tokens_->Sync();
    if (!s.ok()) return undo(s);
  }
  storage::MetaBatch batch(cid_);
  if (mb.encoder) {
    // The first batch fixed the MUVERA SimHash centre: stored in the catalog with this commit.
    Json cat = CatalogJson();
    cat["muvera_center"] = mb.center;
    batch.PutCollectionConfig(cat.dump());
  }
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
  vectors_->ApplyAppend(bytes.data(), keep.size());
  const uint64_t rows = vectors_->rows();
  if (config_.multivector) {
    token_spans_.insert(token_spans_.end(), mb.spans.begin(), mb.spans.end());
    token_ram_.append(mb.records.data(), mb.records.size());
    if (token_codes_) token_codes_->Append(mb.counts.data(), mb.counts.size(), mb.int8_rows.data());
    AppendFdePq(mb, keep.size());
    if (mb.encoder) {
      fde_ = std::move(mb.encoder);
      muvera_center_ = std::move(mb.center);
    }
  }
  live_bits_.resize((rows + 63) / 64, 0);
  row_to_id_.resize(rows);
  payloads_.resize(rows);
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
  if (index_) {
    index_->OnRowsWritten(rows);
    std::vector<InternalId> replaced;
    for (InternalId r : old_rows) {
      if (r != kInvalidInternalId) replaced.push_back(r);
    }
    if (!replaced.empty()) index_->OnRowsDeleted(replaced);
  }
  l.unlock();
  MaybeStartWork();
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
  if (index_) index_->OnRowsDeleted(rows);
  return ++op_seq_;
}

Result<uint64_t> CollectionImpl::CommitPayloads(const std::vector<InternalId>& rows,
                                                std::vector<Json> new_payloads, bool wait) {
  storage::MetaBatch batch(cid_);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (new_payloads[i].is_object() && new_payloads[i].empty()) new_payloads[i] = Json();
    batch.PutPayload(rows[i], new_payloads[i]);
  }
  if (index_) VECTORD_RETURN_IF_ERROR(index_->BeforePayloadCommit(rows, SyncOn(wait)));
  if (!rows.empty()) VECTORD_RETURN_IF_ERROR(store_->Commit(batch, SyncOn(wait)));
  std::unique_lock l(mu_);
  for (size_t i = 0; i < rows.size(); ++i) {
    const InternalId r = rows[i];
    if (!IsLive(r)) continue;  // cannot happen: writers are serialized
    if (!payloads_[r].is_null()) indexes_.Erase(r, payloads_[r]);
    payloads_[r] = std::move(new_payloads[i]);
    if (!payloads_[r].is_null()) indexes_.Insert(r, payloads_[r]);
  }
  if (index_) index_->AfterPayloadApply(rows);
  l.unlock();
  MaybeStartWork();
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
    for (InternalId r : rows) updated.push_back(MergePayload(payloads_[r], payload, key));
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
    for (InternalId r : rows) updated.push_back(EraseKeys(payloads_[r], keys));
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
    if (with_vector) VECTORD_RETURN_IF_ERROR(FillVector(it->second, &r.vector, &r.vector_count));
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<float> CollectionImpl::PrepareQuery(const std::vector<float>& q) const {
  std::vector<float> v = q;
  if (vectors_->metric() == Distance::kCosine) {
    double norm = 0;
    for (float x : v) norm += double{x} * x;
    if (norm > 0) {
      const float s = static_cast<float>(1.0 / std::sqrt(norm));
      for (float& x : v) x *= s;
    }
  }
  return v;
}

Result<std::vector<ScoredPoint>> CollectionImpl::Search(const SearchRequest& req,
                                                        QueryExplain* explain) const {
  std::vector<float> q;
  if (config_.multivector) {
    VECTORD_ASSIGN_OR_RETURN(q, PrepareMultiQuery(req));
  } else if (req.vector_count != 0) {
    return Status::InvalidArgument("collection '" + name_ +
                                   "' holds single vectors: the query must be one vector, not a "
                                   "list of vectors");
  }
  if (!config_.multivector) {
    if (req.vector.size() != vectors_->dim()) {
      return Status::InvalidArgument("query vector has " + std::to_string(req.vector.size()) +
                                     " dimensions, collection '" + name_ + "' expects " +
                                     std::to_string(vectors_->dim()));
    }
    for (size_t i = 0; i < req.vector.size(); ++i) {
      if (!std::isfinite(req.vector[i])) {
        return Status::InvalidArgument("query vector element " + std::to_string(i) +
                                       " is not a finite number");
      }
    }
    q = PrepareQuery(req.vector);
  }
  QueryExplain local;
  QueryExplain* ex = explain != nullptr ? explain : &local;
  *ex = QueryExplain();
  const size_t k = req.offset + req.limit;
  std::vector<ScoredPoint> out;
  if (req.limit == 0) return out;
  std::shared_lock l(mu_);
  using SteadyClock = std::chrono::steady_clock;
  const auto t0 = SteadyClock::now();
  std::optional<Roaring> allowed;
  if (req.filter) {
    allowed = SelectRows(*req.filter);
    ex->filtered = true;
    ex->count_source =
        FilterNeedsPayloadScan(*req.filter, indexes_) ? "payload_scan" : "payload_index";
  }
  const auto t1 = SteadyClock::now();
  ex->us_select = std::chrono::duration<double, std::micro>(t1 - t0).count();
  const Roaring* allowed_ptr = allowed ? &*allowed : nullptr;
  const uint64_t live = live_.cardinality();
  ex->matches = allowed ? allowed->cardinality() : live;
  ex->selectivity = live > 0 ? static_cast<double>(ex->matches) / static_cast<double>(live) : 0;
  std::vector<index::Neighbor> hits;
  if (config_.multivector) {
    VECTORD_ASSIGN_OR_RETURN(hits, SearchMultiRows(q, k, req, allowed_ptr, ex));
  } else {
    VECTORD_ASSIGN_OR_RETURN(hits, VectorSearch(Sources()).Run(q.data(), k, req, allowed_ptr, ex));
  }
  RecordSearchPlan(ex->plan);
  ex->us_search = std::chrono::duration<double, std::micro>(SteadyClock::now() - t1).count();
  // Chamfer is a similarity; single vectors follow their distance.
  const bool lower_better = !config_.multivector && LowerIsBetter(vectors_->metric());
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
    if (req.with_vector) VECTORD_RETURN_IF_ERROR(FillVector(h.row, &sp.vector, &sp.vector_count));
    out.push_back(std::move(sp));
  }
  return out;
}

Result<std::vector<std::vector<ScoredPoint>>> CollectionImpl::SearchBatch(
    const std::vector<SearchRequest>& reqs) const {
  std::vector<Result<std::vector<ScoredPoint>>> results(reqs.size(), Status::Internal("not run"));
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
    if (req.with_vector) {
      VECTORD_RETURN_IF_ERROR(FillVector(it->second, &r.vector, &r.vector_count));
    }
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
  MaybeStartWork();  // a first payload index on an indexed collection wants row codes
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
