// A collection's SPANN index over its life (collection_index.h).
#include "src/spann/collection_index.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "src/jobs/thread_pool.h"
#include "src/search/vector_search.h"
#include "src/spann/list_summary.h"
#include "src/spann/row_codes.h"
#include "src/spann/spann_builder.h"
#include "src/spann/spann_index.h"
#include "src/spann/spann_updater.h"
#include "src/vectors/vector_source.h"
#include "src/vectors/vector_store.h"
#include "storage/vector_file.h"

namespace vectord {
namespace {

index::PostingLayout LayoutOf(const SpannConfig& sc) {
  return sc.layout == "pq4"   ? index::PostingLayout::kPq4
         : sc.layout == "pq8" ? index::PostingLayout::kPq8
                              : index::PostingLayout::kFull;
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

CollectionIndex::CollectionIndex(IndexHost* host, const CollectionConfig& config,
                                 const VectorStore* vectors, std::string dir, ThreadPool* pool,
                                 JobSet* jobs)
    : host_(host), config_(config), vectors_(vectors), dir_(std::move(dir)), pool_(pool) {
  build_job_ = jobs->Add("spann_build", JobPriority::kNormal, [this](Job& j) { BuildJob(j); });
  row_codes_job_ = jobs->Add("row_codes", JobPriority::kNormal, [this](Job& j) { RowCodesJob(j); });
  summaries_job_ =
      jobs->Add("list_summaries", JobPriority::kNormal, [this](Job& j) { SummariesJob(j); });
  // The living index: assigning new rows keeps the delta's exact scan short (high priority);
  // cycles make them durable and reshape the lists.
  assign_job_ = jobs->Add("index_assign", JobPriority::kHigh, [this](Job& j) { AssignJob(j); });
  update_job_ = jobs->Add("index_update", JobPriority::kHigh, [this](Job& j) { UpdateJob(j); });
}

CollectionIndex::~CollectionIndex() { Cancel(); }

void CollectionIndex::Cancel() {
  cancel_ = true;
  {
    std::lock_guard<std::mutex> l(room_mu_);
    updating_ = false;
  }
  room_cv_.notify_all();
}

uint64_t CollectionIndex::indexed_rows() const { return index_ ? index_->assigned_rows() : 0; }
uint64_t CollectionIndex::durable_rows() const { return index_ ? index_->durable_rows() : 0; }

std::shared_ptr<void> CollectionIndex::LockShared() {
  return std::make_shared<std::shared_lock<std::shared_mutex>>(host_->mu());
}

std::shared_ptr<void> CollectionIndex::LockExclusive() {
  return std::make_shared<std::unique_lock<std::shared_mutex>>(host_->mu());
}

void CollectionIndex::StartUpdater() {
  const SpannConfig& sc = *config_.spann;
  SpannUpdateParams p;
  p.assign.max_replicas = sc.max_replicas;
  p.assign.closure_eps = sc.closure_eps;
  p.assign.rng_factor = sc.update_rng_factor;
  p.split_entries = sc.split_entries;
  p.merge_entries = sc.merge_entries;
  p.reassign_neighbors = sc.reassign_neighbors;
  updater_ = std::make_unique<SpannUpdater>(index_.get(), p);
  durable_ = index_->durable_rows();
  updating_ = true;
}

void CollectionIndex::WaitForRoom(uint64_t incoming) {
  if (!config_.spann) return;
  const uint64_t max = config_.spann->max_delta_points;
  auto room = [&] {
    if (!updating_ || cancel_) return true;
    const uint64_t rows = rows_.load(), durable = durable_.load();
    const uint64_t delta = rows > durable ? rows - durable : 0;
    return delta == 0 || delta + incoming <= max;
  };
  if (room()) return;
  assign_job_->Request();
  std::unique_lock<std::mutex> l(room_mu_);
  room_cv_.wait(l, room);
}

void CollectionIndex::OnRowsDeleted(const std::vector<InternalId>& rows) {
  if (!updater_) return;
  const uint64_t durable = index_->durable_rows();
  uint64_t n = 0;
  for (InternalId r : rows) n += r < durable;
  if (n > 0) {
    updater_->NoteDeleted(n);
    update_job_->Request();
  }
}

void CollectionIndex::AssignJob(Job& job) {
  constexpr uint64_t kBatch = 4096;
  std::vector<uint8_t> bytes;
  for (;;) {
    if (cancel_) return;
    uint64_t first, n;
    std::shared_ptr<const index::CentroidIndex> nav;
    {
      std::shared_lock l(host_->mu());
      if (!updater_) return;
      first = index_->assigned_rows();
      const uint64_t rows = vectors_->rows();
      n = rows > first ? std::min(kBatch, rows - first) : 0;
      if (n == 0) break;
      bytes.assign(vectors_->ram_row(first), vectors_->ram_row(first) + n * vectors_->row_bytes());
      nav = updater_->Navigation();
      job.SetProgress(first, rows);
    }
    SpannUpdater::Assignment a = updater_->Assign(first, n, bytes.data(), std::move(nav));
    {
      std::unique_lock l(host_->mu());
      Status st = updater_->ApplyAssignment(std::move(a));
      if (!st.ok()) {
        error_ = st.ToString();
        std::cerr << "vectord: collection '" << host_->name() << "': " << error_ << "\n";
        return;
      }
      host_->OnRowsAssigned(index_->assigned_rows());
    }
    update_job_->Request();
  }
}

void CollectionIndex::UpdateJob(Job& job) {
  SpannUpdater::Locks locks;
  locks.shared = [this] { return LockShared(); };
  locks.exclusive = [this] { return LockExclusive(); };
  locks.live = [this] { return host_->LiveRows(); };
  for (;;) {
    if (cancel_) return;
    {
      std::shared_lock l(host_->mu());
      if (!updater_ || !updater_->CycleDue()) break;
    }
    auto r = updater_->RunCycle(locks);
    if (!r.ok()) {
      // The index keeps serving what it committed; the delta grows in RAM (no back-pressure).
      {
        std::unique_lock l(host_->mu());
        error_ = "living index update failed: " + r.status().ToString();
      }
      std::cerr << "vectord: collection '" << host_->name() << "': " << r.status().ToString()
                << "\n";
      {
        std::lock_guard<std::mutex> g(room_mu_);
        updating_ = false;
      }
      room_cv_.notify_all();
      return;
    }
    {
      std::unique_lock l(host_->mu());
      if (r->seconds > 0 && r->rows > 0) {
        const double rate = static_cast<double>(r->rows) / r->seconds;
        recent_rate_ = recent_rate_ == 0 ? rate : 0.7 * recent_rate_ + 0.3 * rate;
      }
      job.SetProgress(index_->durable_rows(), vectors_->rows());
    }
    {
      std::lock_guard<std::mutex> g(room_mu_);
      durable_ = index_->durable_rows();
    }
    room_cv_.notify_all();
    assign_job_->Request();  // rows that waited for room
  }
  if (!cancel_) MaybeStartWork();  // summaries stale for many rewritten lists
}

Result<uint64_t> CollectionIndex::Restore(const Json& manifest, uint64_t rows) {
  if (manifest.is_object() && config_.spann) {
    const uint64_t gen = manifest.value("gen", uint64_t{0});
    const uint64_t indexed = manifest.value("rows", uint64_t{0});
    if (indexed > rows) {
      return Status::Corruption("SPANN index covers " + std::to_string(indexed) +
                                " rows, the vector file has " + std::to_string(rows));
    }
    gen_ = gen;
    manifest_ = manifest;
    SpannOpenOptions oo;
    oo.vector_file = vectors_->path();
    oo.cache_bytes = config_.spann->cache_bytes;
    auto idx = SpannIndex::Open(GenDir(gen), oo);
    if (idx.ok()) {
      index_ = std::shared_ptr<SpannIndex>(std::move(idx).value());
      if (index_->durable_rows() > rows) {
        return Status::Corruption("SPANN index holds " + std::to_string(index_->durable_rows()) +
                                  " rows, the vector file " + std::to_string(rows));
      }
      StartUpdater();
    } else {
      // Still serves every point, exactly, from the vector file.
      error_ = idx.status().ToString();
      std::cerr << "vectord: collection '" << host_->name() << "': cannot open its SPANN index ("
                << error_ << "); serving exact search from the vector file\n";
    }
  }
  // Remove index directories of other generations (interrupted or superseded builds).
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string fname = e.path().filename().string();
    if (fname.rfind("spann-", 0) == 0 &&
        (!manifest_.is_object() || fname != "spann-" + std::to_string(gen_))) {
      std::filesystem::remove_all(e.path(), ec);
    }
  }
  // Without an open index every row is read into RAM (exact search over all of them is served
  // from the file for a red collection: see VectorSearch).
  return index_ ? index_->durable_rows()
                : (error_.empty() ? 0 : manifest.value("rows", uint64_t{0}));
}

Status CollectionIndex::RestoreSideData() {
  if (index_) LoadSummaries();
  return Status::OK();
}

Json CollectionIndex::Manifest() const { return manifest_; }

Result<std::unique_ptr<ListSummaries>> CollectionIndex::BuildSummaries(
    const SpannIndex& index, bool locked, Roaring dirty, uint64_t lists_written) const {
  std::vector<std::string> fields;
  {
    std::shared_lock l(host_->mu(), std::defer_lock);
    if (!locked) l.lock();
    fields = host_->PayloadIndexFields();
  }
  ListSummaries::Builder b(fields, index.num_lists());
  VECTORD_RETURN_IF_ERROR(b.status());
  std::vector<uint32_t> rows;
  std::vector<Json> payloads;
  for (uint32_t list = 0; list < index.num_lists(); ++list) {
    if (cancel_) {
      return Status::Unavailable("collection '" + host_->name() + "' is being closed");
    }
    VECTORD_RETURN_IF_ERROR(index.ListRows(list, &rows));
    std::shared_lock l(host_->mu(), std::defer_lock);
    if (!locked) l.lock();
    VECTORD_RETURN_IF_ERROR(host_->ReadPayloads(rows, &payloads));
    b.BeginList(list);
    for (const Json& p : payloads) b.Add(p.is_null() ? nullptr : &p);
  }
  std::unique_ptr<ListSummaries> out = b.Finish(std::move(dirty));
  out->set_lists_written(lists_written);
  return out;
}

void CollectionIndex::LoadSummaries() {
  const std::string idx_dir = GenDir(gen_);
  auto read = ListSummaries::Read(idx_dir + "/" + kListSummaryFile, index_->num_lists());
  Status st = read.status();
  if (read.ok()) {
    Roaring logged;
    auto log = DirtyLog::Open(idx_dir + "/" + kListSummaryDirtyLog, &logged);
    st = log.status();
    if (log.ok()) {
      summary_dirty_ = (*read)->build_dirty() | logged;
      summaries_ = std::move(read).value();
      dirty_log_ = std::move(log).value();
      // Lists rewritten by the updater after the summaries began reading them are not vouched
      // for: if any was (the index's counter moved on), every list is stale until the
      // summaries are rebuilt in the background; lists split off after them are stale anyway.
      const uint32_t n = index_->num_lists();
      const uint64_t written = index_->lists_written();
      if (summaries_->lists_written() != written) {
        summary_stale_.addRange(0, n);
        std::cerr << "vectord: collection '" << host_->name()
                  << "': posting lists were rewritten after the list summaries; filtered "
                     "searches read every list until they are rebuilt (background)\n";
      } else if (summaries_->num_lists() < n) {
        summary_stale_.addRange(summaries_->num_lists(), n);
      }
      return;
    }
  }
  // Missing (an index built before summaries existed) or damaged: rebuild from the payloads.
  if (st.code() != Status::Code::kNotFound) {
    std::cerr << "vectord: collection '" << host_->name() << "': " << st.ToString()
              << "; rebuilding the list summaries\n";
  }
  auto built = BuildSummaries(*index_, /*locked=*/true, Roaring(), index_->lists_written());
  st = built.status();
  if (built.ok()) {
    auto log = WriteSummariesAndEmptyLog(**built, Roaring(), idx_dir);
    st = log.status();
    if (log.ok()) {
      summaries_ = std::move(built).value();
      summary_dirty_ = Roaring();
      dirty_log_ = std::move(log).value();
      return;
    }
  }
  std::cerr << "vectord: collection '" << host_->name() << "': cannot build list summaries ("
            << st.ToString() << "); filtered searches read lists without them\n";
}

bool CollectionIndex::RowCodesWanted() const {
  const SpannConfig& sc = *config_.spann;
  if (sc.row_codes == "off") return false;
  // "auto": single-vector collections with a payload index (multi-vector collections index
  // MUVERA encodings of thousands of dimensions: "on" only).
  return sc.row_codes == "on" || (!host_->PayloadIndexFields().empty() && !config_.multivector);
}

void CollectionIndex::MaybeStartWork() {
  if (!config_.spann || cancel_) return;
  std::shared_lock l(host_->mu());
  if (!index_ && !building_ && !build_failed_ && !manifest_.is_object() &&
      host_->LivePoints() >= config_.spann->indexing_threshold) {
    l.unlock();
    {
      std::unique_lock x(host_->mu());
      building_ = true;
      build_rows_ = vectors_->rows();
    }
    build_job_->Request();
    return;
  }
  if (!index_) return;
  if (index_->row_codes() == nullptr && RowCodesWanted()) row_codes_job_->Request();
  if (updater_ && vectors_->rows() > index_->assigned_rows()) assign_job_->Request();
  // Summaries are refreshed once the rows changed after them, or the lists the updater rewrote
  // since, pass a share of the index — when they summarize a field or one is indexed now (a
  // refresh reads every list and its rows' payloads: without fields it would buy nothing).
  const uint64_t durable = index_->durable_rows();
  const uint64_t stale = updater_ ? updater_->changed_lists().cardinality() : 0;
  if (summaries_ && dirty_log_ &&
      (summaries_->num_fields() > 0 || !host_->PayloadIndexFields().empty()) &&
      (summary_dirty_.cardinality() >= std::max<uint64_t>(256, durable / 32) ||
       stale + summary_stale_.cardinality() >=
           std::min<uint64_t>(std::max<uint64_t>(1, index_->num_lists()),
                              std::max<uint64_t>(64, index_->alive_lists() / 4)))) {
    summaries_job_->Request();
  }
}

void CollectionIndex::BuildJob(Job& job) {
  uint64_t rows, gen;
  bool codes;
  {
    std::lock_guard<std::mutex> wl(host_->write_mu());
    std::shared_lock l(host_->mu());
    if (!building_) return;
    rows = build_rows_;
    gen = gen_ + 1;
    codes = RowCodesWanted();
  }
  const std::string idx_dir = GenDir(gen);
  auto fail = [&](const Status& s) {
    if (!cancel_) {
      std::cerr << "vectord: collection '" << host_->name()
                << "': SPANN build failed: " << s.ToString() << "\n";
    }
    std::error_code ec;
    std::filesystem::remove_all(idx_dir, ec);
    std::lock_guard<std::mutex> wl(host_->write_mu());
    std::unique_lock l(host_->mu());
    building_ = false;
    if (!cancel_) {
      build_failed_ = true;
      error_ = s.ToString();
    }
  };
  auto reader = storage::VectorFile::Open(vectors_->path(), vectors_->dim(), vectors_->type());
  if (!reader.ok()) return fail(reader.status());
  std::unique_ptr<storage::VectorFile> vf = std::move(reader).value();
  auto source = MakeVectorFileSource(*vf, vectors_->dim(), vectors_->type(), rows);
  const SpannConfig& sc = *config_.spann;
  SpannBuildParams bp;
  bp.metric = vectors_->metric();
  bp.layout = LayoutOf(sc);
  bp.pq_m = sc.pq_m;
  bp.target_list_entries = sc.target_list_entries;
  bp.centroid_precision = sc.centroid_precision == "f32" ? index::CentroidPrecision::kF32
                                                         : index::CentroidPrecision::kF16;
  bp.assign.max_replicas = sc.max_replicas;
  bp.assign.closure_eps = sc.closure_eps;
  bp.assign.rng_factor = sc.rng_factor;
  // The build has its own threads: all but an eighth of the cores (all of them below 8 cores,
  // where leaving one out would halve the build), searches share the cores with it.
  bp.threads = std::max(1u, pool_->size() - pool_->size() / 8);
  bp.sort_buffer_bytes = size_t{64} << 20;
  bp.row_code_bytes = codes ? sc.row_code_bytes : 0;
  bp.cancel = &cancel_;
  std::error_code ec;
  std::filesystem::remove_all(idx_dir, ec);
  auto built = BuildSpannIndex(*source, idx_dir, bp, [&job](uint64_t done, uint64_t total) {
    job.SetProgress(done, total);
  });
  if (!built.ok()) return fail(built.status());
  SpannOpenOptions oo;
  oo.vector_file = vectors_->path();
  oo.cache_bytes = sc.cache_bytes;
  auto idx = SpannIndex::Open(idx_dir, oo);
  if (!idx.ok()) return fail(idx.status());
  std::shared_ptr<SpannIndex> index(std::move(idx).value());

  // List summaries from the payloads as they are now; payload changes from here on are recorded
  // (summary_pending_dirty_) and brute-forced by searches.
  {
    std::lock_guard<std::mutex> wl(host_->write_mu());
    std::unique_lock l(host_->mu());
    summary_tracking_ = true;
    summary_pending_dirty_ = Roaring();
  }
  auto summaries = BuildSummaries(*index, /*locked=*/false, Roaring(), index->lists_written());

  std::lock_guard<std::mutex> wl(host_->write_mu());
  Roaring dirty;
  {
    std::unique_lock l(host_->mu());
    summary_tracking_ = false;
    dirty.swap(summary_pending_dirty_);
    if (cancel_) {
      building_ = false;
      return;
    }
  }
  std::shared_ptr<const ListSummaries> sums;
  std::unique_ptr<DirtyLog> dirty_log;
  Status sst = summaries.status();
  if (sst.ok()) {
    auto log = WriteSummariesAndEmptyLog(**summaries, dirty, idx_dir);
    sst = log.status();
    if (log.ok()) {
      dirty_log = std::move(log).value();
      sums = std::move(summaries).value();
    }
  }
  if (!sst.ok()) {
    std::cerr << "vectord: collection '" << host_->name() << "': no list summaries ("
              << sst.ToString() << "); filtered searches read lists without them\n";
  }
  {
    std::unique_lock l(host_->mu());
    manifest_ = Json{{"gen", gen}, {"rows", rows}};
  }
  Status s = host_->CommitCatalog();
  std::unique_lock l(host_->mu());
  building_ = false;
  if (!s.ok()) {
    manifest_ = Json();
    build_failed_ = true;
    error_ = s.ToString();
    return;
  }
  // Installed: rows below `rows` are now served from SSD.
  index_ = std::move(index);
  gen_ = gen;
  StartUpdater();
  summaries_ = std::move(sums);
  summary_dirty_ = std::move(dirty);
  dirty_log_ = std::move(dirty_log);
  error_.clear();
  host_->OnIndexInstalled(rows);
  std::ostringstream msg;
  msg << "vectord: collection '" << host_->name() << "': SPANN index over " << rows
      << " rows installed (" << built->lists << " lists, " << built->seconds_total << " s)\n";
  std::cerr << msg.str();
  l.unlock();
  MaybeStartWork();  // rows written during the build; row codes a payload index wants
}

void CollectionIndex::RowCodesJob(Job& job) {
  std::shared_ptr<const SpannIndex> index;
  std::string dir;
  {
    std::shared_lock l(host_->mu());
    if (!index_ || index_->row_codes() != nullptr || !RowCodesWanted()) return;
    index = index_;
    dir = GenDir(gen_);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const uint32_t m = RowCodeSubquantizers(vectors_->dim(), config_.spann->row_code_bytes);
  Status st =
      m == 0 ? Status::InvalidArgument("row_code_bytes gives no subquantizer count") : Status::OK();
  std::unique_ptr<RowCodes> codes;
  if (st.ok()) {
    // The index's rows never change: read them through a descriptor of our own.
    auto vf = storage::VectorFile::Open(vectors_->path(), vectors_->dim(), vectors_->type());
    st = vf.status();
    if (vf.ok()) {
      auto source = MakeVectorFileSource(**vf, vectors_->dim(), vectors_->type(), index->rows());
      job.SetProgress(0, index->rows());
      auto built = RowCodes::Build(*source, vectors_->metric(), m, 1234,
                                   std::max(1u, pool_->size()), &cancel_);
      st = built.status();
      if (built.ok()) codes = std::move(built).value();
    }
  }
  if (st.ok()) st = codes->Write(dir + "/" + kRowCodesFile);
  if (st.ok()) {
    // Served from the file just written (mapped, not heap); the heap copy goes.
    auto mapped = RowCodes::Read(dir + "/" + kRowCodesFile, codes->rows());
    st = mapped.status();
    if (mapped.ok()) codes = std::move(mapped).value();
  }
  if (!st.ok()) {
    if (!cancel_) {
      std::cerr << "vectord: collection '" << host_->name() << "': cannot build row codes ("
                << st.ToString() << "); filtered searches run without the code scan\n";
    }
    return;
  }
  const uint64_t rows = codes->rows();
  index->InstallRowCodes(std::move(codes));
  job.SetProgress(rows, rows);
  std::ostringstream msg;
  msg << "vectord: collection '" << host_->name() << "': row codes (" << m << " bytes) for " << rows
      << " indexed rows built in " << SecondsSince(t0) << " s, in the background\n";
  std::cerr << msg.str();
}

void CollectionIndex::SummariesJob(Job& job) {
  std::shared_ptr<const SpannIndex> index;
  std::string dir;
  uint64_t lists_written = 0;  // the index's counter when the lists are read (ListSummaries)
  {
    // Writers are held off (write_mu): every change from here on is tracked.
    std::lock_guard<std::mutex> wl(host_->write_mu());
    std::unique_lock l(host_->mu());
    if (!index_ || !summaries_ || !dirty_log_) return;
    index = index_;
    dir = GenDir(gen_);
    summary_tracking_ = true;
    summary_pending_dirty_ = Roaring();
    // Lists rewritten from here on are marked again; those before stay stale until the new
    // summaries are installed.
    if (updater_) summary_stale_ |= updater_->TakeChangedLists();
    lists_written = index->lists_written();
  }
  const auto t0 = std::chrono::steady_clock::now();
  job.SetProgress(0, index->num_lists());
  auto built = BuildSummaries(*index, /*locked=*/false, Roaring(), lists_written);
  std::lock_guard<std::mutex> wl(host_->write_mu());
  Roaring dirty;
  uint64_t before;
  {
    std::unique_lock l(host_->mu());
    summary_tracking_ = false;
    dirty.swap(summary_pending_dirty_);
    before = summary_dirty_.cardinality();
    if (cancel_ || index != index_) return;
  }
  // The new summary file (with the changes made while it was built), then an empty log.
  Status st = built.status();
  std::unique_ptr<DirtyLog> log;
  if (st.ok()) {
    auto written = WriteSummariesAndEmptyLog(**built, dirty, dir);
    st = written.status();
    if (written.ok()) log = std::move(written).value();
  }
  std::unique_lock l(host_->mu());
  if (!st.ok()) {
    // The summary file may be new already: its changed rows are in the old log too, so the
    // summaries in RAM (with their dirty rows) still describe a superset. Nothing to undo.
    std::cerr << "vectord: collection '" << host_->name()
              << "': cannot refresh the list summaries (" << st.ToString()
              << "); searches keep checking the changed rows\n";
    summary_dirty_ |= dirty;
    return;
  }
  summaries_ = std::move(built).value();
  summary_dirty_ = dirty;
  summary_stale_ = Roaring();
  dirty_log_ = std::move(log);
  job.SetProgress(index->num_lists(), index->num_lists());
  std::ostringstream msg;
  msg << "vectord: collection '" << host_->name() << "': list summaries refreshed (" << before
      << " changed rows -> " << dirty.cardinality() << ") in " << SecondsSince(t0) << " s\n";
  std::cerr << msg.str();
}

Status CollectionIndex::BeforePayloadCommit(const std::vector<InternalId>& rows, bool sync) {
  if (!dirty_log_) return Status::OK();
  // Rows the list summaries describe: logged as changed before the change is committed, so that
  // summaries never hide a committed change, also after a restart. (Rows assigned later are in
  // lists the updater rewrites after this: stale for the summaries anyway.)
  uint64_t covered;
  {
    std::shared_lock l(host_->mu());
    covered = indexed_rows();
  }
  std::vector<uint32_t> indexed;
  for (InternalId r : rows) {
    if (r < covered) indexed.push_back(static_cast<uint32_t>(r));
  }
  return dirty_log_->Append(indexed, sync);
}

void CollectionIndex::AfterPayloadApply(const std::vector<InternalId>& rows) {
  for (InternalId r : rows) {
    if (summaries_ && r < indexed_rows()) summary_dirty_.add(static_cast<uint32_t>(r));
    if (summary_tracking_) summary_pending_dirty_.add(static_cast<uint32_t>(r));
  }
}

void CollectionIndex::FillSources(SearchSources* s) const {
  s->index = index_.get();
  s->indexed_rows = indexed_rows();
  s->summaries = summaries_.get();
  s->summary_dirty = &summary_dirty_;
  // Lists rewritten since the summaries were built may hold rows they do not describe, and rows
  // not yet in SSD lists are in none: both are checked apart (VectorSearch).
  s->stale_lists = updater_ ? &updater_->changed_lists() : nullptr;
  s->stale_lists_too = &summary_stale_;
  s->unsummarized_from = durable_rows();
  s->spann = config_.spann ? &*config_.spann : nullptr;
}

void CollectionIndex::FillInfo(CollectionInfo* info) const {
  info->status = "green";
  if (building_) {
    info->status = "yellow";
    const JobStatus js = build_job_->Status();
    info->index_build_done = js.done;
    info->index_build_total = js.total;
  } else if (!error_.empty()) {
    info->status = "red";
    info->index_error = error_;
  }
  if (!index_ || !updater_) return;
  const SpannLiveStats st = index_->LiveStats();
  CollectionInfo::IndexUpdates u;
  const uint64_t rows = vectors_->rows();
  u.delta_points = rows - std::min(rows, st.durable_rows);
  u.unassigned_points = rows - std::min(rows, st.assigned_rows);
  u.pending_entries = st.pending_entries;
  u.lists = st.lists;
  u.cycles = st.cycles;
  u.splits = st.splits;
  u.merges = st.merges;
  u.reassigned = st.reassigned;
  u.lists_written = st.lists_written;
  u.gc_lists = st.gc_lists;
  u.bytes_written = st.bytes_written;
  u.cpu_seconds = st.cpu_seconds;
  u.points_per_second = recent_rate_;
  u.posting_file_bytes = st.posting_file_bytes;
  u.free_bytes = st.free_bytes;
  info->index_updates = u;
  // Yellow while the updater has work queued or running: the delta is not in the index yet.
  const JobStatus a = assign_job_->Status(), b = update_job_->Status();
  if (info->status == "green" && (u.delta_points > 0 || updater_->CycleDue() || a.running ||
                                  a.queued || b.running || b.queued)) {
    info->status = "yellow";
  }
}

void CollectionIndex::FillMemory(std::vector<std::pair<std::string, uint64_t>>* out) const {
  if (index_) {
    out->emplace_back("spann_index", index_->ResidentBytes());
    out->emplace_back("spann_list_cache", index_->CacheBytes());
  }
  if (summaries_) out->emplace_back("list_summaries", summaries_->MemoryBytes());
}

uint64_t CollectionIndex::SummaryDirtyRows() const { return summary_dirty_.cardinality(); }

}  // namespace vectord
