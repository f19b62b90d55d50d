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
}

CollectionIndex::~CollectionIndex() = default;

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
      index_ = std::shared_ptr<const SpannIndex>(std::move(idx).value());
      indexed_rows_ = indexed;
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
  return index_ ? indexed_rows_ : (error_.empty() ? 0 : manifest.value("rows", uint64_t{0}));
}

Status CollectionIndex::RestoreSideData() {
  if (index_) LoadSummaries();
  return Status::OK();
}

Json CollectionIndex::Manifest() const { return manifest_; }

Result<std::unique_ptr<ListSummaries>> CollectionIndex::BuildSummaries(const SpannIndex& index,
                                                                       bool locked,
                                                                       Roaring dirty) const {
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
  return b.Finish(std::move(dirty));
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
      return;
    }
  }
  // Missing (an index built before summaries existed) or damaged: rebuild from the payloads.
  if (st.code() != Status::Code::kNotFound) {
    std::cerr << "vectord: collection '" << host_->name() << "': " << st.ToString()
              << "; rebuilding the list summaries\n";
  }
  auto built = BuildSummaries(*index_, /*locked=*/true, Roaring());
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
  if (index_ && index_->row_codes() == nullptr && RowCodesWanted()) row_codes_job_->Request();
  if (index_ && summaries_ && dirty_log_ &&
      summary_dirty_.cardinality() >= std::max<uint64_t>(256, indexed_rows_ / 32)) {
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
  bp.threads = std::max(1u, pool_->size() > 1 ? pool_->size() - 1 : 1u);
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
  std::shared_ptr<const SpannIndex> index(std::move(idx).value());

  // List summaries from the payloads as they are now; payload changes from here on are recorded
  // (summary_pending_dirty_) and brute-forced by searches.
  {
    std::lock_guard<std::mutex> wl(host_->write_mu());
    std::unique_lock l(host_->mu());
    summary_tracking_ = true;
    summary_pending_dirty_ = Roaring();
  }
  auto summaries = BuildSummaries(*index, /*locked=*/false, Roaring());

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
  indexed_rows_ = rows;
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
  MaybeStartWork();  // a payload index created while the index was being built wants row codes
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
  {
    // Writers are held off (write_mu): every change from here on is tracked.
    std::lock_guard<std::mutex> wl(host_->write_mu());
    std::unique_lock l(host_->mu());
    if (!index_ || !summaries_ || !dirty_log_) return;
    index = index_;
    dir = GenDir(gen_);
    summary_tracking_ = true;
    summary_pending_dirty_ = Roaring();
  }
  const auto t0 = std::chrono::steady_clock::now();
  job.SetProgress(0, index->num_lists());
  auto built = BuildSummaries(*index, /*locked=*/false, Roaring());
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
  // summaries never hide a committed change, also after a restart. (indexed_rows_ only changes
  // under write_mu, which the caller holds.)
  std::vector<uint32_t> indexed;
  for (InternalId r : rows) {
    if (r < indexed_rows_) indexed.push_back(static_cast<uint32_t>(r));
  }
  return dirty_log_->Append(indexed, sync);
}

void CollectionIndex::AfterPayloadApply(const std::vector<InternalId>& rows) {
  for (InternalId r : rows) {
    if (summaries_ && r < indexed_rows_) summary_dirty_.add(static_cast<uint32_t>(r));
    if (summary_tracking_) summary_pending_dirty_.add(static_cast<uint32_t>(r));
  }
}

void CollectionIndex::FillSources(SearchSources* s) const {
  s->index = index_.get();
  s->indexed_rows = index_ ? indexed_rows_ : 0;
  s->summaries = summaries_.get();
  s->summary_dirty = &summary_dirty_;
  s->spann = config_.spann ? &*config_.spann : nullptr;
}

void CollectionIndex::FillInfo(CollectionInfo* info) const {
  if (building_) {
    info->status = "yellow";
    const JobStatus js = build_job_->Status();
    info->index_build_done = js.done;
    info->index_build_total = js.total;
  } else if (!error_.empty()) {
    info->status = "red";
    info->index_error = error_;
  } else {
    info->status = "green";
  }
}

uint64_t CollectionIndex::SummaryDirtyRows() const { return summary_dirty_.cardinality(); }

}  // namespace vectord
