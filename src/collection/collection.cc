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
#include "src/spann/spann_check.h"
#include "src/vectors/vector_codec.h"
#include "src/vectors/vector_store.h"

namespace vectord {

CollectionImpl::CollectionImpl(std::string name, uint32_t cid, std::string dir,
                               CollectionConfig config, const CollectionEnv& env)
    : name_(std::move(name)),
      cid_(cid),
      dir_(std::move(dir)),
      config_(std::move(config)),
      store_owner_(env.store),
      pool_owner_(env.pool),
      store_(env.store.get()),
      pool_(env.pool.get()),
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
  {
    CollectionImpl* self = c.get();
    c->checkpoint_job_ = c->jobs_->Add("points_checkpoint", JobPriority::kLow, [self](Job& j) {
      Status st = self->points_->Checkpoint(self->mu_);
      if (!st.ok()) {
        std::cerr << "vectord: collection '" << self->name_
                  << "': point store checkpoint failed: " << st.ToString() << "\n";
      }
    });
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

  // Ids, payloads, the live set and payload indexes: the point store's checkpoint + oplog.
  points::PointStoreOptions po;
  po.dir = dir_ + "/points";
  po.cid = cid_;
  po.meta = store_;
  po.available_rows = rows;
  const Json idx_list =
      catalog.is_object() ? catalog.value("payload_indexes", Json::array()) : Json::array();
  for (const auto& idx : idx_list) {
    auto type = ParsePayloadSchema(idx.value("type", ""));
    if (!type) return Status::Corruption("catalog entry has a bad payload index: " + idx.dump());
    po.indexes.emplace_back(idx.value("field", ""), *type);
  }
  VECTORD_ASSIGN_OR_RETURN(points_, points::PointStore::Open(std::move(po)));
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
    for (const auto& info : points_->IndexList()) {
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
  // The FDE PQ keeps serving beside the index up to muvera_config.fde_pq_max_rows documents.
  if (config_.multivector && !FdePqBesideIndex()) fde_pq_.reset();
}

std::vector<std::string> CollectionImpl::PayloadIndexFields() const {
  std::vector<std::string> fields;
  for (const auto& info : points_->IndexList()) fields.push_back(info.field);
  return fields;
}

Status CollectionImpl::ReadPayloads(const std::vector<uint32_t>& rows,
                                    std::vector<Json>* out) const {
  VECTORD_ASSIGN_OR_RETURN(*out, points_->Payloads(rows));
  return Status::OK();
}

void CollectionImpl::MaybeStartWork() {
  if (closed_) return;
  if (config_.multivector) MaybeTrainFdePq();
  if (index_) index_->MaybeStartWork();
  bool due;
  {
    std::shared_lock l(mu_);
    due = points_->CheckpointDue();
  }
  if (due) checkpoint_job_->Request();
}

bool CollectionImpl::WaitIdle(uint64_t timeout_ms) const { return jobs_->WaitIdle(timeout_ms); }

Result<Json> CollectionImpl::Verify() const {
  std::shared_lock l(mu_);
  if (closed_) return Closed();
  Json out{{"collection", name_}, {"points", points_->live_count()}};
  if (!index_ || !index_->has_index()) {
    out["ok"] = true;
    out["index"] = nullptr;
    return out;
  }
  VECTORD_ASSIGN_OR_RETURN(SpannCheckReport r, CheckSpannIndex(*index_->index(), points_->live()));
  out["ok"] = r.ok();
  out["index"] = {
      {"lists", r.lists},
      {"pages", r.pages},
      {"entries", r.entries},
      {"valid_entries", r.valid_entries},
      {"stale_entries", r.stale_entries},
      {"deleted_entries", r.dead_entries},
      {"points_in_index", r.live_rows},
      {"unreachable_points", r.unreachable},
      {"replicas_per_point",
       r.live_rows ? static_cast<double>(r.valid_entries) / static_cast<double>(r.live_rows) : 0.0},
      {"largest_list", r.max_list_entries},
      {"delta_points", vectors_->rows() - index_->durable_rows()}};
  out["problems"] = r.problems;
  return out;
}

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
  if (closed_) return Closed();
  if (dropped_) return Status::NotFound("collection '" + name_ + "' was deleted");
  return Status::OK();
}

Status CollectionImpl::Closed() const {
  if (dropped_) return Status::NotFound("collection '" + name_ + "' was deleted");
  return Status::FailedPrecondition("collection '" + name_ + "': its database is closed");
}

void CollectionImpl::Close() {
  if (index_) index_->Cancel();
  jobs_->Cancel();
  jobs_->WaitIdle();
  std::lock_guard<std::mutex> wl(write_mu_);
  if (!closed_ && !dropped_ && points_ && points_->touched_since_checkpoint() > 0) {
    // A clean close leaves nothing for the next open to replay (a crash replays at most
    // checkpoint_rows rows of the oplog).
    if (Status st = points_->Checkpoint(mu_); !st.ok()) {
      std::cerr << "vectord: collection '" << name_
                << "': point store checkpoint at close failed: " << st.ToString() << "\n";
    }
  }
  std::unique_lock l(mu_);
  closed_ = true;
  // What holds the metadata store (read views) goes now, so that the database can close it; the
  // object itself may live on in a caller's hands, refusing every call.
  points_.reset();
  store_owner_.reset();
}

CollectionInfo CollectionImpl::Info() const {
  CollectionInfo info;
  info.config = config_;
  std::shared_lock l(mu_);
  if (closed_) {
    info.status = "red";
    info.index_error = Closed().message();
    return info;
  }
  info.points_count = points_->live_count();
  if (index_) {
    index_->FillInfo(&info);
    index_->FillMemory(&info.memory);
  }
  info.memory.emplace_back("vectors_ram", vectors_->ram_bytes());
  info.open_replayed_rows = points_->open_stats().replayed_rows;
  // A new collection's first open scans nothing: only a scan of existing rows is reported.
  info.open_full_scan = points_->open_stats().full_scan && points_->open_stats().scanned_rows > 0;
  // Points inside the SSD index (exact search needs none: 0 without an index).
  const uint64_t indexed = index_ && index_->has_index() ? index_->durable_rows() : 0;
  info.indexed_vectors_count =
      indexed == 0 ? 0 : points_->live().rank(static_cast<uint32_t>(indexed - 1));
  for (const auto& i : points_->IndexList()) {
    info.payload_schema.emplace_back(i.field, i.type);
    info.payload_schema_points.emplace_back(i.field, i.points);
  }
  const points::PointStoreMemory pm = points_->MemoryBytes();
  info.memory.emplace_back("points_live_set", pm.live_set);
  info.memory.emplace_back("points_row_ids", pm.row_ids);
  for (const auto& [field, bytes] : pm.payload_indexes) {
    info.memory.emplace_back("payload_index:" + field, bytes);
  }
  return info;
}

SearchSources CollectionImpl::Sources() const {
  SearchSources s;
  s.vectors = vectors_.get();
  s.live = &points_->live();
  s.live_bits = points_->live_bits();
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
  if (first != points_->rows()) {
    return Status::Internal("collection '" + name_ + "': the vector file holds " +
                            std::to_string(first) + " rows, the point store " +
                            std::to_string(points_->rows()));
  }
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
  // Ids and payloads: the point store's records join the same batch (it replaces the points that
  // existed and records the row count).
  std::vector<PointId> ids(keep.size());
  std::vector<Json> payloads(keep.size());
  for (size_t j = 0; j < keep.size(); ++j) {
    ids[j] = points[keep[j]].id;
    payloads[j] = std::move(points[keep[j]].payload);
  }
  points::PointStore::Write pw;
  {
    std::shared_lock l(mu_);
    auto prepared = points_->PrepareUpsert(ids, std::move(payloads), &batch);
    if (!prepared.ok()) return undo(prepared.status());
    pw = std::move(prepared).value();
  }
  Status s = store_->Commit(batch, SyncOn(wait));
  if (!s.ok()) {
    points_->Abort(std::move(pw));
    return undo(s);
  }

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
  const std::vector<InternalId> replaced = pw.rows();
  points_->Apply(std::move(pw));
  if (index_) {
    index_->OnRowsWritten(rows);
    if (!replaced.empty()) index_->OnRowsDeleted(replaced);
  }
  l.unlock();
  MaybeStartWork();
  return ++op_seq_;
}

Result<std::vector<InternalId>> CollectionImpl::ResolveRows(const PointSelector& sel) const {
  std::vector<InternalId> rows;
  if (sel.filter) {
    VECTORD_ASSIGN_OR_RETURN(Roaring r, points_->Select(*sel.filter));
    rows.resize(r.cardinality());
    r.toUint32Array(rows.data());
    return rows;
  }
  VECTORD_ASSIGN_OR_RETURN(std::vector<InternalId> found, points_->RowsOf(sel.ids));
  for (InternalId r : found) {
    if (r != kInvalidInternalId) rows.push_back(r);
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
  points::PointStore::Write pw;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
    if (rows.empty()) return ++op_seq_;
    VECTORD_ASSIGN_OR_RETURN(pw, points_->PrepareDelete(rows, &batch));
  }
  Status s = store_->Commit(batch, SyncOn(wait));
  if (!s.ok()) {
    points_->Abort(std::move(pw));
    return s;
  }
  std::unique_lock l(mu_);
  points_->Apply(std::move(pw));
  if (index_) index_->OnRowsDeleted(rows);
  return ++op_seq_;
}

Result<uint64_t> CollectionImpl::CommitPayloads(const std::vector<InternalId>& rows,
                                                std::vector<Json> new_payloads, bool wait,
                                                std::vector<Json>* old) {
  if (rows.empty()) return ++op_seq_;
  if (index_) VECTORD_RETURN_IF_ERROR(index_->BeforePayloadCommit(rows, SyncOn(wait)));
  storage::MetaBatch batch(cid_);
  points::PointStore::Write pw;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(pw,
                             points_->PreparePayloads(rows, std::move(new_payloads), &batch, old));
  }
  Status s = store_->Commit(batch, SyncOn(wait));
  if (!s.ok()) {
    points_->Abort(std::move(pw));
    return s;
  }
  std::unique_lock l(mu_);
  points_->Apply(std::move(pw));
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
  std::vector<Json> updated, old;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
    VECTORD_ASSIGN_OR_RETURN(old, points_->Payloads(rows));
    for (size_t i = 0; i < rows.size(); ++i) updated.push_back(MergePayload(old[i], payload, key));
  }
  return CommitPayloads(rows, std::move(updated), wait, &old);
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
  std::vector<Json> updated, old;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
    VECTORD_ASSIGN_OR_RETURN(old, points_->Payloads(rows));
    for (size_t i = 0; i < rows.size(); ++i) updated.push_back(EraseKeys(old[i], keys));
  }
  return CommitPayloads(rows, std::move(updated), wait, &old);
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
  std::vector<PointId> unique;
  std::set<PointId> seen;
  for (const auto& id : ids) {
    if (seen.insert(id).second) unique.push_back(id);
  }
  std::shared_lock l(mu_);
  if (closed_) return Closed();
  VECTORD_ASSIGN_OR_RETURN(std::vector<InternalId> rows, points_->RowsOf(unique));
  std::vector<InternalId> found;
  for (size_t i = 0; i < unique.size(); ++i) {
    if (rows[i] != kInvalidInternalId) found.push_back(rows[i]);
  }
  std::vector<Json> payloads;
  if (with_payload) {
    VECTORD_ASSIGN_OR_RETURN(payloads, points_->Payloads(found));
  }
  size_t f = 0;
  for (size_t i = 0; i < unique.size(); ++i) {
    if (rows[i] == kInvalidInternalId) continue;
    Record r;
    r.id = unique[i];
    if (with_payload) r.payload = ProjectPayload(payloads[f], {}, {});
    if (with_vector) VECTORD_RETURN_IF_ERROR(FillVector(rows[i], &r.vector, &r.vector_count));
    out.push_back(std::move(r));
    ++f;
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
  if (closed_) return Closed();
  using SteadyClock = std::chrono::steady_clock;
  const auto t0 = SteadyClock::now();
  std::optional<Roaring> allowed;
  if (req.filter) {
    VECTORD_ASSIGN_OR_RETURN(allowed, points_->Select(*req.filter));
    ex->filtered = true;
    ex->count_source =
        FilterNeedsPayloadScan(*req.filter, points_->indexes()) ? "payload_scan" : "payload_index";
  }
  const auto t1 = SteadyClock::now();
  ex->us_select = std::chrono::duration<double, std::micro>(t1 - t0).count();
  const Roaring* allowed_ptr = allowed ? &*allowed : nullptr;
  const uint64_t live = points_->live_count();
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
  std::vector<InternalId> rows;
  for (size_t i = req.offset; i < hits.size(); ++i) {
    const auto& h = hits[i];
    if (req.score_threshold &&
        (lower_better ? h.score > *req.score_threshold : h.score < *req.score_threshold)) {
      break;
    }
    rows.push_back(h.row);
  }
  // Ids and payloads of the results only, in one batch each.
  VECTORD_ASSIGN_OR_RETURN(std::vector<PointId> ids, points_->IdsOf(rows));
  std::vector<Json> payloads;
  if (req.with_payload) {
    VECTORD_ASSIGN_OR_RETURN(payloads, points_->Payloads(rows));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    ScoredPoint sp;
    sp.id = ids[i];
    sp.version = rows[i];
    sp.score = hits[req.offset + i].score;
    if (req.with_payload) {
      sp.payload = ProjectPayload(payloads[i], req.payload_include, req.payload_exclude);
    }
    if (req.with_vector) {
      VECTORD_RETURN_IF_ERROR(FillVector(rows[i], &sp.vector, &sp.vector_count));
    }
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
  if (closed_) return Closed();
  std::optional<Roaring> allowed;
  if (req.filter) {
    VECTORD_ASSIGN_OR_RETURN(allowed, points_->Select(*req.filter));
  }
  VECTORD_ASSIGN_OR_RETURN(points::PointStore::ScrollPage page,
                           points_->Scroll(req.offset, allowed ? &*allowed : nullptr, req.limit));
  out.next_page_offset = page.next;
  std::vector<InternalId> rows;
  for (const auto& [id, row] : page.points) rows.push_back(row);
  std::vector<Json> payloads;
  if (req.with_payload) {
    VECTORD_ASSIGN_OR_RETURN(payloads, points_->Payloads(rows));
  }
  for (size_t i = 0; i < page.points.size(); ++i) {
    Record r;
    r.id = page.points[i].first;
    if (req.with_payload) {
      r.payload = ProjectPayload(payloads[i], req.payload_include, req.payload_exclude);
    }
    if (req.with_vector) VECTORD_RETURN_IF_ERROR(FillVector(rows[i], &r.vector, &r.vector_count));
    out.points.push_back(std::move(r));
  }
  return out;
}

Result<uint64_t> CollectionImpl::Count(const FilterPtr& filter) const {
  std::shared_lock l(mu_);
  if (closed_) return Closed();
  if (!filter) return points_->live_count();
  VECTORD_ASSIGN_OR_RETURN(Roaring r, points_->Select(*filter));
  return r.cardinality();
}

Result<uint64_t> CollectionImpl::CreatePayloadIndex(const std::string& field,
                                                    PayloadSchemaType type, bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  {
    std::shared_lock l(mu_);
    if (const auto* existing = points_->indexes().Get(field)) {
      if (existing->type() == type) return ++op_seq_;
    }
  }
  // Built aside from one scan of the payloads (writers wait on write_mu_, readers go on), made
  // durable in the catalog, then installed.
  VECTORD_ASSIGN_OR_RETURN(std::unique_ptr<index::FieldIndex> built,
                           points_->BuildIndex(field, type));
  Json catalog = CatalogJson();
  Json& list = catalog["payload_indexes"];
  for (auto it = list.begin(); it != list.end();) {
    it = it->value("field", "") == field ? list.erase(it) : it + 1;
  }
  list.push_back({{"field", field}, {"type", PayloadSchemaName(type)}});
  storage::MetaBatch batch(cid_);
  batch.PutCollectionConfig(catalog.dump());
  VECTORD_RETURN_IF_ERROR(store_->Commit(batch, true));
  {
    std::unique_lock l(mu_);
    points_->InstallIndex(std::move(built));
  }
  MaybeStartWork();  // a first payload index on an indexed collection wants row codes
  return ++op_seq_;
}

Result<uint64_t> CollectionImpl::DeletePayloadIndex(const std::string& field, bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  {
    std::unique_lock l(mu_);
    if (!points_->DropIndex(field)) {
      return Status::NotFound("collection '" + name_ + "' has no payload index on '" + field + "'");
    }
  }
  storage::MetaBatch batch(cid_);
  batch.PutCollectionConfig(CatalogJson().dump());
  VECTORD_RETURN_IF_ERROR(store_->Commit(batch, true));
  return ++op_seq_;
}

}  // namespace vectord
