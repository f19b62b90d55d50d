// PointStore: open (checkpoint + oplog replay, or one full scan), the prepare / apply write path,
// reads through the last applied read view, and background checkpoints. See point_store.h and
// docs/storage.md "Point store".
#include "src/points/point_store.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <unordered_set>

#include "src/points/oplog_record.h"
#include "src/points/point_checkpoint.h"

namespace vectord::points {
namespace {

// Rows read from RocksDB per MultiGet while replaying or scanning.
constexpr size_t kBatchRows = 4096;
// A scroll whose filter leaves at most this many rows may sort their ids instead of walking the id
// map (Scroll).
constexpr uint64_t kScrollByRows = 65536;

size_t RoaringBytes(const Roaring& r) { return sizeof(Roaring) + r.getSizeInBytes(false); }

bool HasPayload(const Json& p) { return p.is_object() && !p.empty(); }

void RemoveFrom(Roaring* r, uint64_t first, uint64_t end) {
  if (first < end) roaring_bitmap_remove_range(&r->roaring, first, end);
}

// Locks taken by Checkpoint: none without a mutex (at open, before any reader exists).
std::unique_lock<std::shared_mutex> Exclusive(std::shared_mutex* mu) {
  return mu ? std::unique_lock<std::shared_mutex>(*mu) : std::unique_lock<std::shared_mutex>();
}
std::shared_lock<std::shared_mutex> Shared(std::shared_mutex* mu) {
  return mu ? std::shared_lock<std::shared_mutex>(*mu) : std::shared_lock<std::shared_mutex>();
}

}  // namespace

uint64_t PointStoreMemory::total() const {
  uint64_t n = live_set + row_ids;
  for (const auto& [f, b] : payload_indexes) n += b;
  return n;
}

PointStore::PointStore(PointStoreOptions options)
    : options_(std::move(options)), meta_(options_.meta), cid_(options_.cid) {}

PointStore::~PointStore() = default;

Result<std::unique_ptr<PointStore>> PointStore::Open(PointStoreOptions options) {
  if (options.meta == nullptr) return Status::InvalidArgument("point store needs a metadata store");
  const std::string dir = options.dir;
  std::unique_ptr<PointStore> s(new PointStore(std::move(options)));
  VECTORD_RETURN_IF_ERROR(s->Init().WithContext("point store '" + dir + "'"));
  return s;
}

std::unique_ptr<index::NumericRangeIndex> PointStore::MakeRange() const {
  return std::make_unique<RangeRuns>(run_files_.get(), options_.range);
}

RangeRuns* PointStore::RangeOf(const std::string& field) const {
  const index::FieldIndex* f = indexes_.Get(field);
  return f ? dynamic_cast<RangeRuns*>(f->range_index()) : nullptr;
}

void PointStore::SetLive(InternalId row, bool live) {
  if (row >= rows_) return;
  const uint64_t bit = uint64_t{1} << (row & 63);
  if (live) {
    live_bits_[row >> 6] |= bit;
    live_.add(row);
  } else {
    live_bits_[row >> 6] &= ~bit;
    live_.remove(row);
  }
}

void PointStore::NewView() { view_ = meta_->NewReadView(); }

Status PointStore::Init() {
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) return Status::IOError("cannot create '" + options_.dir + "': " + ec.message());
  VECTORD_ASSIGN_OR_RETURN(const uint64_t committed, meta_->Rows(cid_));
  VECTORD_ASSIGN_OR_RETURN(row_ids_, storage::RowIdFile::Open(options_.dir + "/" + kRowIdFile));
  VECTORD_ASSIGN_OR_RETURN(const uint64_t last_seq, meta_->LastOplogSeq(cid_));
  auto ckpt = ReadCheckpoint(options_.dir + "/" + kCheckpointFile);
  next_seq_ = std::max(last_seq, ckpt.ok() ? ckpt->header.seq : 0) + 1;
  rows_ = committed;
  if (committed > options_.available_rows) VECTORD_RETURN_IF_ERROR(DropLostRows(committed));
  run_files_ = std::make_unique<RunFiles>(options_.dir, ckpt.ok() ? ckpt->header.next_run_id : 1);
  indexes_.set_range_factory([this](const std::string&, PayloadSchemaType) { return MakeRange(); });

  Status loaded = ckpt.status();
  if (ckpt.ok() && ckpt->header.cid != cid_) {
    loaded = Status::Corruption("checkpoint belongs to collection id " +
                                std::to_string(ckpt->header.cid));
  }
  Roaring touched;
  if (loaded.ok()) loaded = LoadCheckpoint(&ckpt.value(), &touched);
  if (loaded.ok()) {
    open_stats_.checkpoint_loaded = true;
    VECTORD_RETURN_IF_ERROR(Replay(touched));
    touched_since_checkpoint_ = touched.cardinality();
  } else {
    // No checkpoint (a directory from before the point store, or a new collection) or an
    // unusable one: everything is derived again from RocksDB in one pass.
    if (loaded.code() != Status::Code::kNotFound) {
      std::cerr << "vectord: " << loaded.ToString()
                << "; rebuilding the point state with a full scan\n";
    }
    open_stats_.full_scan = true;
    open_stats_.scan_reason = loaded.ToString();
    live_ = Roaring();
    live_bits_.clear();
    indexes_ = index::PayloadIndexSet();
    indexes_.set_range_factory(
        [this](const std::string&, PayloadSchemaType) { return MakeRange(); });
    run_files_->SetCheckpointed({});
    VECTORD_RETURN_IF_ERROR(FullScan());
  }
  applied_seq_ = next_seq_ - 1;
  run_files_->Sweep();
  NewView();
  if (open_stats_.full_scan) {
    // The first checkpoint of this directory; the oplog it covers goes.
    VECTORD_RETURN_IF_ERROR(WriteCheckpoint(nullptr));
  }
  return Status::OK();
}

Status PointStore::DropLostRows(uint64_t committed) {
  // Rows [available, committed) were committed but their vectors are gone (fsync off, machine
  // down): their points are dropped, and every key of those rows removed, since the row numbers
  // will be given out again.
  const uint64_t first = options_.available_rows;
  std::cerr << "vectord: collection " << cid_ << ": vector file has " << first
            << " rows, metadata expects " << committed
            << "; points in the missing rows are dropped (fsync was off?)\n";
  storage::MetaBatch batch(cid_);
  std::vector<PointId> ids;
  std::vector<InternalId> id_rows;
  VECTORD_RETURN_IF_ERROR(meta_->ForEachRowId(nullptr, cid_, static_cast<InternalId>(first),
                                              committed, [&](InternalId row, const PointId& id) {
                                                ids.push_back(id);
                                                id_rows.push_back(row);
                                                return Status::OK();
                                              }));
  std::vector<InternalId> current;
  VECTORD_RETURN_IF_ERROR(meta_->GetRows(nullptr, cid_, ids, &current));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (current[i] == id_rows[i]) batch.ForgetId(ids[i]);
  }
  std::vector<InternalId> lost;
  for (uint64_t r = first; r < committed; ++r) {
    const InternalId row = static_cast<InternalId>(r);
    batch.UnmapRow(row);
    batch.DeletePayload(row);
    batch.DeleteTombstone(row);
    lost.push_back(row);
  }
  batch.SetRows(first);
  batch.PutOplog(next_seq_++, EncodeOplogRecord(std::move(lost)));
  VECTORD_RETURN_IF_ERROR(meta_->Commit(batch, true));
  rows_ = first;
  return Status::OK();
}

Status PointStore::LoadCheckpoint(CheckpointState* ckpt, Roaring* touched) {
  const CheckpointHeader& h = ckpt->header;
  // Run files first: a checkpoint whose files are missing or damaged is not used at all.
  std::set<uint64_t> referenced;
  std::vector<std::unique_ptr<index::FieldIndex>> fields;
  std::vector<std::pair<std::string, PayloadSchemaType>> to_build;
  for (const auto& [field, type] : options_.indexes) {
    auto it = std::find_if(ckpt->fields.begin(), ckpt->fields.end(),
                           [&](const CheckpointField& f) { return f.field == field; });
    if (it == ckpt->fields.end() || it->type != type) {
      to_build.emplace_back(field, type);
      continue;
    }
    auto path = JsonPath::Parse(field, "payload index field");
    if (!path.ok()) return Status::Corruption("catalog: " + path.status().message());
    std::unique_ptr<RangeRuns> range;
    if (type == PayloadSchemaType::kInteger || type == PayloadSchemaType::kFloat) {
      range = std::make_unique<RangeRuns>(run_files_.get(), options_.range);
      for (auto& ref : it->runs) {
        VECTORD_ASSIGN_OR_RETURN(auto run, OpenRun(run_files_.get(), ref.id));
        if (run->entries != ref.entries) {
          return Status::Corruption("run file '" + run_files_->Path(ref.id) + "' has " +
                                    std::to_string(run->entries) + " entries, the checkpoint " +
                                    std::to_string(ref.entries));
        }
        referenced.insert(ref.id);
        range->AddRestoredRun(std::move(run), std::move(ref.dead));
      }
    }
    auto fi = std::make_unique<index::FieldIndex>(std::move(path).value(), type, std::move(range));
    fi->RestoreValues(std::move(it->values));
    fields.push_back(std::move(fi));
  }
  run_files_->SetCheckpointed(referenced);

  // The live set as of the checkpoint, cut to the rows that exist now.
  live_ = std::move(ckpt->live);
  RemoveFrom(&live_, rows_, uint64_t{1} << 32);
  live_bits_.assign((rows_ + 63) / 64, 0);
  for (uint32_t r : live_) live_bits_[r >> 6] |= uint64_t{1} << (r & 63);
  for (auto& f : fields) indexes_.Install(std::move(f));
  if (h.rows > rows_) {
    Roaring gone;
    gone.addRange(rows_, h.rows);
    indexes_.EraseRows(gone);
  }

  // Rows to re-read: every row an oplog record after the checkpoint names, and rows written
  // after it (also covered by records; listed again in case).
  VECTORD_RETURN_IF_ERROR(meta_->ForEachOplog(cid_, h.seq, [&](uint64_t seq, std::string_view rec) {
    ++open_stats_.oplog_records;
    return DecodeOplogRecord(
        seq, rec, [&](InternalId first, uint64_t n) { touched->addRange(first, first + n); });
  }));
  if (h.rows < rows_) touched->addRange(h.rows, rows_);
  RemoveFrom(touched, rows_, uint64_t{1} << 32);

  // The row id file is durable up to the checkpoint's rows (fsynced before it was written); the
  // rest is rewritten from RocksDB's row -> id keys.
  VECTORD_RETURN_IF_ERROR(RebuildRowIds(std::min({h.rows, rows_, row_ids_->rows()})));

  if (!to_build.empty()) {
    std::vector<std::unique_ptr<index::FieldIndex>> built;
    for (const auto& [field, type] : to_build) {
      auto path = JsonPath::Parse(field, "payload index field");
      if (!path.ok()) return Status::Corruption("catalog: " + path.status().message());
      built.push_back(std::make_unique<index::FieldIndex>(std::move(path).value(), type,
                                                          indexes_.MakeRange(field, type)));
    }
    // Built from the current payloads: the touched rows are then re-read by the replay as well,
    // which changes nothing.
    VECTORD_RETURN_IF_ERROR(ScanInto(built, nullptr));
    for (auto& f : built) indexes_.Install(std::move(f));
    open_stats_.built_indexes = to_build.size();
    checkpoint_needed_ = true;
  }
  return Status::OK();
}

Status PointStore::ScanInto(const std::vector<std::unique_ptr<index::FieldIndex>>& fields,
                            const storage::ReadView* view) const {
  if (fields.empty()) return Status::OK();
  for (const auto& f : fields) {
    if (f->range_index()) f->range_index()->BeginBulk();
  }
  Status scan = meta_->ForEachPayloadBytes(view, cid_, [&](InternalId row, std::string_view b) {
    if (!IsLive(row)) return Status::OK();
    VECTORD_ASSIGN_OR_RETURN(Json p, storage::MetadataStore::DecodePayload(b, row));
    for (const auto& f : fields) f->Insert(row, p);
    return Status::OK();
  });
  for (const auto& f : fields) {
    if (f->range_index()) {
      Status st = f->range_index()->EndBulk();
      if (scan.ok()) scan = st;
    }
  }
  return scan;
}

Status PointStore::FullScan() {
  // Live rows: every row below the committed count that has no tombstone.
  live_.addRange(0, rows_);
  Roaring dead;
  VECTORD_RETURN_IF_ERROR(meta_->ForEachTombstone(nullptr, cid_, [&](InternalId r) {
    dead.add(r);
    return Status::OK();
  }));
  live_ -= dead;
  live_.runOptimize();
  live_bits_.assign((rows_ + 63) / 64, 0);
  for (uint32_t r : live_) live_bits_[r >> 6] |= uint64_t{1} << (r & 63);
  VECTORD_RETURN_IF_ERROR(RebuildRowIds(0));
  std::vector<std::unique_ptr<index::FieldIndex>> fields;
  for (const auto& [field, type] : options_.indexes) {
    auto path = JsonPath::Parse(field, "payload index field");
    if (!path.ok()) return Status::Corruption("catalog: " + path.status().message());
    fields.push_back(std::make_unique<index::FieldIndex>(std::move(path).value(), type,
                                                         indexes_.MakeRange(field, type)));
  }
  VECTORD_RETURN_IF_ERROR(ScanInto(fields, nullptr));
  for (auto& f : fields) indexes_.Install(std::move(f));
  open_stats_.built_indexes = options_.indexes.size();
  open_stats_.scanned_rows = rows_;
  return Status::OK();
}

Status PointStore::RebuildRowIds(uint64_t from) {
  VECTORD_RETURN_IF_ERROR(row_ids_->Truncate(from));
  std::vector<uint64_t> entries;
  uint64_t next = from;
  auto flush = [&]() -> Status {
    Status st = row_ids_->Append(entries);
    entries.clear();
    return st;
  };
  VECTORD_RETURN_IF_ERROR(meta_->ForEachRowId(
      nullptr, cid_, static_cast<InternalId>(from), rows_, [&](InternalId row, const PointId& id) {
        // Rows without a row -> id key: dead rows of a directory written before this file.
        for (; next < row; ++next) entries.push_back(storage::RowIdFile::kUnknown);
        entries.push_back(storage::RowIdFile::Encode(id));
        next = uint64_t{row} + 1;
        return entries.size() >= 65536 ? flush() : Status::OK();
      }));
  for (; next < rows_; ++next) entries.push_back(storage::RowIdFile::kUnknown);
  return flush();
}

Status PointStore::Replay(const Roaring& touched) {
  if (touched.isEmpty()) return Status::OK();
  open_stats_.replayed_rows = touched.cardinality();
  std::vector<uint32_t> rows(touched.cardinality());
  touched.toUint32Array(rows.data());
  std::vector<InternalId> live_rows;
  for (size_t at = 0; at < rows.size(); at += kBatchRows) {
    const std::span<const InternalId> chunk(rows.data() + at,
                                            std::min(kBatchRows, rows.size() - at));
    std::vector<bool> dead;
    VECTORD_RETURN_IF_ERROR(meta_->GetTombstones(nullptr, cid_, chunk, &dead));
    for (size_t i = 0; i < chunk.size(); ++i) {
      SetLive(chunk[i], !dead[i]);
      if (!dead[i]) live_rows.push_back(chunk[i]);
    }
  }
  // Whatever the checkpoint indexed for these rows goes; their current payloads come in.
  indexes_.EraseRows(touched);
  if (indexes_.empty()) return Status::OK();
  for (size_t at = 0; at < live_rows.size(); at += kBatchRows) {
    const std::span<const InternalId> chunk(live_rows.data() + at,
                                            std::min(kBatchRows, live_rows.size() - at));
    VECTORD_ASSIGN_OR_RETURN(auto payloads, ReadPayloads(nullptr, chunk));
    for (size_t i = 0; i < chunk.size(); ++i) {
      if (HasPayload(payloads[i])) indexes_.Insert(chunk[i], payloads[i]);
    }
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// Reads

Result<std::vector<Json>> PointStore::ReadPayloads(const storage::ReadView* view,
                                                   std::span<const InternalId> rows) const {
  std::vector<std::string> bytes;
  VECTORD_RETURN_IF_ERROR(meta_->GetPayloads(view, cid_, rows, &bytes));
  std::vector<Json> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (bytes[i].empty()) continue;
    VECTORD_ASSIGN_OR_RETURN(out[i], storage::MetadataStore::DecodePayload(bytes[i], rows[i]));
  }
  return out;
}

Result<PointId> PointStore::IdOf(InternalId row) const {
  VECTORD_ASSIGN_OR_RETURN(auto ids, IdsOf(std::span<const InternalId>(&row, 1)));
  return ids[0];
}

Result<std::vector<PointId>> PointStore::IdsOf(std::span<const InternalId> rows) const {
  for (InternalId r : rows) {
    if (r >= rows_) {
      return Status::Internal("collection " + std::to_string(cid_) + ": row " + std::to_string(r) +
                              " is past the last row " + std::to_string(rows_));
    }
  }
  std::vector<uint64_t> entries;
  VECTORD_RETURN_IF_ERROR(row_ids_->GetMany(rows, &entries));
  std::vector<PointId> out(rows.size());
  std::vector<InternalId> in_meta;
  std::vector<size_t> at;
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint64_t e = entries[i];
    if (e == storage::RowIdFile::kUnknown) {
      return Status::Internal("collection " + std::to_string(cid_) + ": row " +
                              std::to_string(rows[i]) + " has no recorded point id");
    }
    if (e == storage::RowIdFile::kInMetadata) {
      in_meta.push_back(rows[i]);
      at.push_back(i);
    } else {
      out[i] = PointId::Num(e);
    }
  }
  if (!in_meta.empty()) {
    std::vector<std::optional<PointId>> ids;
    VECTORD_RETURN_IF_ERROR(meta_->GetIds(view_.get(), cid_, in_meta, &ids));
    for (size_t j = 0; j < in_meta.size(); ++j) {
      if (!ids[j]) {
        return Status::Corruption("collection " + std::to_string(cid_) + ": row " +
                                  std::to_string(in_meta[j]) + " has no row -> id key");
      }
      out[at[j]] = *ids[j];
    }
  }
  return out;
}

Result<std::optional<InternalId>> PointStore::RowOf(const PointId& id) const {
  VECTORD_ASSIGN_OR_RETURN(auto rows, RowsOf(std::span<const PointId>(&id, 1)));
  if (rows[0] == kInvalidInternalId) return std::optional<InternalId>();
  return std::optional<InternalId>(rows[0]);
}

Result<std::vector<InternalId>> PointStore::RowsOf(std::span<const PointId> ids) const {
  std::vector<InternalId> rows;
  VECTORD_RETURN_IF_ERROR(meta_->GetRows(view_.get(), cid_, ids, &rows));
  for (InternalId& r : rows) {
    if (r != kInvalidInternalId && !IsLive(r)) {
      return Status::Corruption("collection " + std::to_string(cid_) + ": the id map names row " +
                                std::to_string(r) + ", which is not live");
    }
  }
  return rows;
}

Result<Json> PointStore::Payload(InternalId row) const {
  VECTORD_ASSIGN_OR_RETURN(auto p, Payloads(std::span<const InternalId>(&row, 1)));
  return std::move(p[0]);
}

Result<std::vector<Json>> PointStore::Payloads(std::span<const InternalId> rows) const {
  return ReadPayloads(view_.get(), rows);
}

Result<PointStore::ScrollPage> PointStore::Scroll(const std::optional<PointId>& from,
                                                  const Roaring* allowed, size_t limit) const {
  ScrollPage page;
  // Few matches: their ids read and sorted (a row id read each), when that costs less than the
  // walk over the id map's keys (a step each, ~8x cheaper) that finds limit + 1 of them.
  const uint64_t matches = allowed != nullptr ? allowed->cardinality() : 0;
  const double walk = static_cast<double>(limit + 1) * static_cast<double>(live_count()) /
                      static_cast<double>(std::max<uint64_t>(1, matches));
  if (allowed != nullptr && matches <= kScrollByRows && static_cast<double>(matches) * 8 <= walk) {
    std::vector<uint32_t> rows;
    rows.reserve(allowed->cardinality());
    for (uint32_t r : *allowed) {
      if (IsLive(r)) rows.push_back(r);
    }
    VECTORD_ASSIGN_OR_RETURN(auto ids, IdsOf(rows));
    std::vector<std::pair<PointId, InternalId>> all(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) all[i] = {ids[i], rows[i]};
    std::sort(all.begin(), all.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    auto it = from ? std::lower_bound(all.begin(), all.end(), *from,
                                      [](const auto& a, const PointId& id) { return a.first < id; })
                   : all.begin();
    for (; it != all.end(); ++it) {
      if (page.points.size() == limit) {
        page.next = it->first;
        break;
      }
      page.points.push_back(*it);
    }
    return page;
  }
  auto cursor = meta_->NewIdCursor(view_.get(), cid_, from);
  for (; cursor->Valid(); cursor->Next()) {
    const InternalId row = cursor->row();
    if (!IsLive(row) || (allowed != nullptr && !allowed->contains(row))) continue;
    if (page.points.size() == limit) {
      page.next = cursor->id();
      break;
    }
    page.points.emplace_back(cursor->id(), row);
  }
  VECTORD_RETURN_IF_ERROR(cursor->status());
  return page;
}

index::FilterContext PointStore::MakeFilterContext(Status* error) const {
  // The cursor is made at the first payload read: most filters are answered by indexes alone.
  struct Lazy {
    const storage::MetadataStore* meta;
    std::shared_ptr<const storage::ReadView> view;
    uint32_t cid;
    std::unique_ptr<storage::PayloadCursor> cursor;
    std::string bytes;
    Json current;
  };
  auto lazy = std::make_shared<Lazy>();
  lazy->meta = meta_;
  lazy->view = view_;
  lazy->cid = cid_;
  auto fail = [error](const Status& st) {
    if (error != nullptr && error->ok()) *error = st;
  };
  index::FilterContext ctx;
  ctx.payload = [lazy, fail](InternalId row) -> const Json* {
    if (!lazy->cursor) lazy->cursor = lazy->meta->NewPayloadCursor(lazy->view.get(), lazy->cid);
    auto found = lazy->cursor->Read(row, &lazy->bytes);
    if (!found.ok()) {
      fail(found.status());
      return nullptr;
    }
    if (!*found) return nullptr;
    auto p = storage::MetadataStore::DecodePayload(lazy->bytes, row);
    if (!p.ok()) {
      fail(p.status());
      return nullptr;
    }
    lazy->current = std::move(p).value();
    return &lazy->current;
  };
  ctx.point_id = [this, fail](InternalId row) {
    auto id = IdOf(row);
    if (!id.ok()) {
      fail(id.status());
      return PointId();
    }
    return *id;
  };
  ctx.lookup = [this, fail](const PointId& id) -> std::optional<InternalId> {
    auto row = RowOf(id);
    if (!row.ok()) {
      fail(row.status());
      return std::nullopt;
    }
    return *row;
  };
  ctx.indexes = &indexes_;
  ctx.error = error;
  return ctx;
}

Result<Roaring> PointStore::Select(const Filter& filter) const {
  Status error;
  Roaring rows = index::Select(&filter, live_, MakeFilterContext(&error));
  if (!error.ok()) return error;
  return rows;
}

PointStoreMemory PointStore::MemoryBytes() const {
  PointStoreMemory m;
  m.live_set = RoaringBytes(live_) + live_bits_.capacity() * sizeof(uint64_t);
  m.row_ids = sizeof(storage::RowIdFile) +
              storage::RowIdFile::kRowsPerBlock * sizeof(uint64_t);  // at most one block's tail
  for (const auto& info : indexes_.List())
    m.payload_indexes.emplace_back(info.field, info.memory_bytes);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Writes

Result<PointStore::Write> PointStore::PrepareUpsert(std::span<const PointId> ids,
                                                    std::vector<Json> payloads,
                                                    storage::MetaBatch* batch) {
  const size_t n = ids.size();
  if (payloads.size() != n) {
    return Status::InvalidArgument(std::to_string(n) + " point ids but " +
                                   std::to_string(payloads.size()) + " payloads");
  }
  if (rows_ + n >= kInvalidInternalId) {
    return Status::FailedPrecondition("collection is full (2^32 rows)");
  }
  std::unordered_set<PointId, PointIdHash> seen;
  seen.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!seen.insert(ids[i]).second) {
      return Status::InvalidArgument("point " + ids[i].ToString() + " appears twice in one upsert");
    }
    if (!payloads[i].is_null() && !payloads[i].is_object()) {
      return Status::InvalidArgument("point " + std::to_string(i) +
                                     ": payload must be a JSON object or null");
    }
  }
  Write w;
  w.kind_ = Write::Kind::kUpsert;
  w.first_ = static_cast<InternalId>(rows_);
  w.count_ = static_cast<uint32_t>(n);
  if (n == 0) return w;
  VECTORD_ASSIGN_OR_RETURN(auto old, RowsOf(ids));
  for (InternalId r : old) {
    if (r != kInvalidInternalId) w.rows_.push_back(r);
  }
  if (!indexes_.empty()) {
    VECTORD_ASSIGN_OR_RETURN(w.old_payloads_, ReadPayloads(view_.get(), w.rows_));
  }
  std::vector<uint64_t> entries(n);
  for (size_t i = 0; i < n; ++i) entries[i] = storage::RowIdFile::Encode(ids[i]);
  // Rows of an earlier write that was neither applied nor aborted must not shift these.
  Status st = row_ids_->rows() != rows_ ? row_ids_->Truncate(rows_) : Status::OK();
  if (st.ok()) st = row_ids_->Append(entries);
  if (!st.ok()) {
    (void)row_ids_->Truncate(w.first_);
    return st;
  }
  std::vector<InternalId> touched = w.rows_;
  for (size_t i = 0; i < n; ++i) {
    const InternalId row = w.first_ + static_cast<InternalId>(i);
    if (old[i] != kInvalidInternalId) {
      batch->Tombstone(old[i]);
      batch->DeletePayload(old[i]);
    }
    batch->MapId(ids[i], row);
    if (HasPayload(payloads[i])) batch->PutPayload(row, payloads[i]);
    touched.push_back(row);
  }
  batch->SetRows(rows_ + n);
  w.seq_ = next_seq_++;
  w.touched_ = touched.size();
  batch->PutOplog(w.seq_, EncodeOplogRecord(std::move(touched)));
  if (!indexes_.empty()) w.new_payloads_ = std::move(payloads);
  w.pending_ = true;
  return w;
}

Result<PointStore::Write> PointStore::PrepareDelete(std::span<const InternalId> rows_in,
                                                    storage::MetaBatch* batch) {
  Write w;
  w.kind_ = Write::Kind::kDelete;
  w.rows_.assign(rows_in.begin(), rows_in.end());
  std::sort(w.rows_.begin(), w.rows_.end());
  w.rows_.erase(std::unique(w.rows_.begin(), w.rows_.end()), w.rows_.end());
  for (InternalId r : w.rows_) {
    if (!IsLive(r)) {
      return Status::InvalidArgument("row " + std::to_string(r) + " holds no live point");
    }
  }
  if (w.rows_.empty()) return w;
  VECTORD_ASSIGN_OR_RETURN(auto ids, IdsOf(w.rows_));
  if (!indexes_.empty()) {
    VECTORD_ASSIGN_OR_RETURN(w.old_payloads_, ReadPayloads(view_.get(), w.rows_));
  }
  for (size_t i = 0; i < w.rows_.size(); ++i) {
    batch->ForgetId(ids[i]);
    batch->Tombstone(w.rows_[i]);
    batch->DeletePayload(w.rows_[i]);
  }
  w.seq_ = next_seq_++;
  w.touched_ = w.rows_.size();
  batch->PutOplog(w.seq_, EncodeOplogRecord(w.rows_));
  w.pending_ = true;
  return w;
}

Result<PointStore::Write> PointStore::PreparePayloads(std::span<const InternalId> rows,
                                                      std::vector<Json> payloads,
                                                      storage::MetaBatch* batch,
                                                      std::vector<Json>* old) {
  if (payloads.size() != rows.size() || (old != nullptr && old->size() != rows.size())) {
    return Status::InvalidArgument(std::to_string(rows.size()) + " rows but " +
                                   std::to_string(payloads.size()) + " payloads");
  }
  Write w;
  w.kind_ = Write::Kind::kPayloads;
  w.rows_.assign(rows.begin(), rows.end());
  {
    std::vector<InternalId> sorted = w.rows_;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      return Status::InvalidArgument("a row appears twice in one payload update");
    }
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!IsLive(rows[i])) {
      return Status::InvalidArgument("row " + std::to_string(rows[i]) + " holds no live point");
    }
    if (!payloads[i].is_null() && !payloads[i].is_object()) {
      return Status::InvalidArgument("payload " + std::to_string(i) +
                                     " must be a JSON object or null");
    }
    if (!HasPayload(payloads[i])) payloads[i] = Json();
  }
  if (rows.empty()) return w;
  if (!indexes_.empty()) {
    if (old != nullptr) {
      w.old_payloads_ = std::move(*old);
    } else {
      VECTORD_ASSIGN_OR_RETURN(w.old_payloads_, ReadPayloads(view_.get(), w.rows_));
    }
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    if (payloads[i].is_null()) {
      batch->DeletePayload(rows[i]);
    } else {
      batch->PutPayload(rows[i], payloads[i]);
    }
  }
  w.seq_ = next_seq_++;
  w.touched_ = rows.size();
  batch->PutOplog(w.seq_, EncodeOplogRecord(w.rows_));
  if (!indexes_.empty()) w.new_payloads_ = std::move(payloads);
  w.pending_ = true;
  return w;
}

void PointStore::Apply(Write&& w) {
  if (!w.pending_) return;
  w.pending_ = false;
  const bool indexed = !w.old_payloads_.empty() || !w.new_payloads_.empty();
  auto erase_old = [&](size_t j) {
    if (indexed && j < w.old_payloads_.size() && HasPayload(w.old_payloads_[j])) {
      indexes_.Erase(w.rows_[j], w.old_payloads_[j]);
    }
  };
  switch (w.kind_) {
    case Write::Kind::kUpsert: {
      rows_ = uint64_t{w.first_} + w.count_;
      live_bits_.resize((rows_ + 63) / 64, 0);
      for (size_t j = 0; j < w.rows_.size(); ++j) {
        SetLive(w.rows_[j], false);
        erase_old(j);
      }
      live_.addRange(w.first_, rows_);
      for (uint64_t r = w.first_; r < rows_; ++r) live_bits_[r >> 6] |= uint64_t{1} << (r & 63);
      for (size_t i = 0; i < w.new_payloads_.size(); ++i) {
        if (HasPayload(w.new_payloads_[i])) {
          indexes_.Insert(w.first_ + static_cast<InternalId>(i), w.new_payloads_[i]);
        }
      }
      break;
    }
    case Write::Kind::kDelete:
      for (size_t j = 0; j < w.rows_.size(); ++j) {
        SetLive(w.rows_[j], false);
        erase_old(j);
      }
      break;
    case Write::Kind::kPayloads:
      for (size_t j = 0; j < w.rows_.size(); ++j) {
        erase_old(j);
        if (j < w.new_payloads_.size() && HasPayload(w.new_payloads_[j])) {
          indexes_.Insert(w.rows_[j], w.new_payloads_[j]);
        }
      }
      break;
  }
  applied_seq_ = w.seq_;
  touched_since_checkpoint_.fetch_add(w.touched_, std::memory_order_relaxed);
  NewView();
}

void PointStore::Abort(Write&& w) {
  if (!w.pending_) return;
  w.pending_ = false;
  if (w.kind_ == Write::Kind::kUpsert) {
    Status st = row_ids_->Truncate(w.first_);
    if (!st.ok()) {
      // The next open truncates the file to the committed rows anyway.
      std::cerr << "vectord: " << st.ToString() << "\n";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Payload index DDL

Result<std::unique_ptr<index::FieldIndex>> PointStore::BuildIndex(const std::string& field,
                                                                  PayloadSchemaType type) const {
  auto path = JsonPath::Parse(field, "payload index field");
  if (!path.ok()) return path.status();
  std::vector<std::unique_ptr<index::FieldIndex>> one;
  one.push_back(std::make_unique<index::FieldIndex>(std::move(path).value(), type,
                                                    indexes_.MakeRange(field, type)));
  VECTORD_RETURN_IF_ERROR(ScanInto(one, view_.get()));
  return std::move(one[0]);
}

void PointStore::InstallIndex(std::unique_ptr<index::FieldIndex> index) {
  indexes_.Install(std::move(index));
  checkpoint_needed_ = true;
}

bool PointStore::DropIndex(const std::string& field) { return indexes_.Drop(field); }

// ---------------------------------------------------------------------------------------------
// Checkpoints

bool PointStore::CheckpointDue() const {
  if (checkpoint_needed_ || touched_since_checkpoint_ >= options_.checkpoint_rows) return true;
  for (const std::string& f : indexes_.Fields()) {
    if (const RangeRuns* r = RangeOf(f); r != nullptr && r->NeedsMaintenance()) return true;
  }
  return false;
}

Status PointStore::Checkpoint(std::shared_mutex& mu) {
  if (checkpointing_.exchange(true)) return Status::OK();  // one is running
  Status st = WriteCheckpoint(&mu);
  checkpointing_ = false;
  if (!st.ok()) checkpoint_needed_ = true;
  return st.WithContext("point store '" + options_.dir + "': checkpoint");
}

Status PointStore::WriteCheckpoint(std::shared_mutex* mu) {
  // A fuzzy checkpoint: pieces are copied at different moments while writers go on, which is
  // correct because the replay after it re-derives every row a later record names from RocksDB
  // (whatever the pieces hold for it), and every change after `seq` has such a record.
  CheckpointHeader h;
  h.cid = cid_;
  struct FieldJob {
    std::string field;
    uint64_t uid;
    RangeRuns::Job job;
  };
  uint64_t touched = 0;
  // Maintenance rounds: the first freezes the tails (the cut), later ones merge what the earlier
  // ones made (a merge may fill the next size class).
  constexpr int kMaxRounds = 8;
  for (int round = 0; round < kMaxRounds; ++round) {
    std::vector<FieldJob> jobs;
    {
      auto l = Exclusive(mu);
      if (round == 0) {
        // 1. The cut: every change up to `seq` is in RAM; range tails (which a checkpoint does
        // not hold) become runs, to be written now.
        h.seq = applied_seq_;
        h.rows = rows_;
        touched = touched_since_checkpoint_;
        checkpoint_needed_ = false;
      }
      for (const std::string& f : indexes_.Fields()) {
        RangeRuns* r = RangeOf(f);
        if (r == nullptr) continue;
        if (round == 0) r->FreezeTail();
        if (round == 0 || r->NeedsMaintenance()) {
          jobs.push_back(FieldJob{f, r->uid(), r->PlanMaintenance()});
        }
      }
    }
    if (round == 0) {
      // 2. The row id file is durable up to the checkpoint's rows.
      VECTORD_RETURN_IF_ERROR(row_ids_->Sync());
    }
    if (jobs.empty()) break;
    // 3. Runs written and merged with no lock (their inputs are immutable), then installed.
    for (FieldJob& j : jobs) VECTORD_RETURN_IF_ERROR(RangeRuns::RunJob(run_files_.get(), &j.job));
    auto l = Exclusive(mu);
    for (FieldJob& j : jobs) {
      RangeRuns* r = RangeOf(j.field);
      if (r != nullptr && r->uid() == j.uid) r->Install(std::move(j.job));
    }
  }
  // 4. The state, a piece at a time under the shared lock.
  h.next_run_id = run_files_->next_id();
  const std::string path = options_.dir + "/" + kCheckpointFile;
  VECTORD_ASSIGN_OR_RETURN(auto writer, CheckpointWriter::Create(path, h));
  std::vector<std::string> fields;
  {
    auto l = Shared(mu);
    VECTORD_RETURN_IF_ERROR(writer->AddLive(live_));
    fields = indexes_.Fields();
  }
  std::set<uint64_t> referenced;
  for (const std::string& f : fields) {
    auto l = Shared(mu);
    const index::FieldIndex* fi = indexes_.Get(f);
    if (fi == nullptr) continue;  // dropped meanwhile
    std::vector<RangeRuns::FileRun> runs;
    if (const RangeRuns* r = RangeOf(f)) runs = r->FileRuns();
    for (const auto& run : runs) referenced.insert(run.id);
    VECTORD_RETURN_IF_ERROR(writer->AddField(*fi, runs));
  }
  VECTORD_RETURN_IF_ERROR(writer->Finish());
  // 5. Durable: run files it does not name may go, and the oplog it covers.
  run_files_->SetCheckpointed(std::move(referenced));
  VECTORD_RETURN_IF_ERROR(meta_->DeleteOplog(cid_, h.seq));
  touched_since_checkpoint_.fetch_sub(touched, std::memory_order_relaxed);
  return Status::OK();
}

}  // namespace vectord::points
