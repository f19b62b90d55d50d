// SPANN search (see spann_index.h and docs/spann.md "Search").
#include "src/spann/spann_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>

#include "index/distance.h"
#include "index/fast_scan.h"
#include "storage/aligned_buffer.h"
#include "storage/io_reader.h"
#include "storage/posting_file.h"
#include "storage/posting_store.h"
#include "storage/record_log.h"
#include "storage/vector_file.h"

namespace vectord {
namespace {

using Clock = std::chrono::steady_clock;
double Us(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

// Open-addressing set of row ids, cleared in O(1) per query by a generation stamp.
class VisitedSet {
 public:
  void Reset(size_t expected) {
    size_t cap = 1024;
    while (cap < 2 * expected) cap <<= 1;
    if (cap > keys_.size()) {
      keys_.assign(cap, 0);
      gen_.assign(cap, 0);
      cur_ = 0;
    }
    mask_ = keys_.size() - 1;
    if (++cur_ == 0) {
      std::fill(gen_.begin(), gen_.end(), 0);
      cur_ = 1;
    }
  }
  // True when `k` was not in the set (and is now).
  bool Insert(uint32_t k) {
    size_t h = (k * 0x9E3779B1u) & mask_;
    while (gen_[h] == cur_) {
      if (keys_[h] == k) return false;
      h = (h + 1) & mask_;
    }
    gen_[h] = cur_;
    keys_[h] = k;
    return true;
  }

 private:
  std::vector<uint32_t> keys_, gen_;
  uint32_t cur_ = 0;
  size_t mask_ = 0;
};

// Per-thread search state: the IoReaders and every buffer, reused across queries.
struct Scratch {
  std::unique_ptr<storage::IoReader> reader[2];  // [0] io_uring (or its fallback), [1] pread
  storage::AlignedBuffer pages, rerank, rows;
  std::vector<storage::IoReader::Request> reqs;
  std::vector<uint64_t> page_off;   // offset in `pages` of each probed list (~0 when cached)
  std::vector<uint32_t> read_list;  // probe index of each read request
  std::vector<uint8_t> payload;
  std::vector<uint16_t> acc;
  std::vector<float> dist, lut, qr, cent;
  std::vector<index::CentroidHit> hits;
  VisitedSet visited;
};

Scratch& TlsScratch() {
  thread_local Scratch s;
  return s;
}

Result<storage::IoReader*> ReaderFor(Scratch* s, bool force_pread) {
  auto& r = s->reader[force_pread ? 1 : 0];
  if (!r) {
    storage::IoReaderOptions o;
    o.force_pread = force_pread;
    VECTORD_ASSIGN_OR_RETURN(r, storage::IoReader::Create(o));
  }
  return r.get();
}

bool Allowed(const SpannSearchParams& p, uint32_t row) {
  if (p.filter != nullptr) {
    if (p.filter->allowed != nullptr) {
      if (!p.filter->allowed->contains(row)) return false;
    } else if (p.filter->live_bits != nullptr) {
      if (((p.filter->live_bits[row >> 6] >> (row & 63)) & 1) == 0) return false;
    }
  }
  return !p.accept || p.accept(row);
}

// Bounded max-heap of (distance, row): keeps the `cap` smallest distances.
class TopHeap {
 public:
  explicit TopHeap(size_t cap) : cap_(cap) {}
  bool Full() const { return h_.size() >= cap_; }
  float Worst() const { return h_.front().first; }
  void Push(float d, uint32_t row) {
    if (h_.size() < cap_) {
      h_.emplace_back(d, row);
      std::push_heap(h_.begin(), h_.end());
    } else if (std::make_pair(d, row) < h_.front()) {
      std::pop_heap(h_.begin(), h_.end());
      h_.back() = {d, row};
      std::push_heap(h_.begin(), h_.end());
    }
  }
  // Best first (ties: lower row).
  std::vector<std::pair<float, uint32_t>> Sorted() {
    std::sort(h_.begin(), h_.end());
    return std::move(h_);
  }

 private:
  size_t cap_;
  std::vector<std::pair<float, uint32_t>> h_;
};

}  // namespace

void SpannSearchStats::Add(const SpannSearchStats& o) {
  lists_probed += o.lists_probed;
  lists_cached += o.lists_cached;
  pages_read += o.pages_read;
  rerank_pages += o.rerank_pages;
  candidates += o.candidates;
  distances += o.distances;
  us_navigate += o.us_navigate;
  us_io += o.us_io;
  us_scan += o.us_scan;
  us_rerank += o.us_rerank;
  us_total += o.us_total;
}

SpannIndex::~SpannIndex() {
  if (vec_fd_ >= 0) ::close(vec_fd_);
  if (vec_tail_fd_ >= 0) ::close(vec_tail_fd_);
}

Result<std::unique_ptr<SpannIndex>> SpannIndex::Open(const std::string& dir,
                                                     const SpannOpenOptions& options) {
  std::unique_ptr<SpannIndex> idx(new SpannIndex());
  idx->dir_path_ = dir;
  idx->options_ = options;
  VECTORD_ASSIGN_OR_RETURN(idx->meta_, ReadSpannMeta(dir));
  const SpannMeta& m = idx->meta_;
  std::vector<storage::PostingListInfo> v1_dir;
  VECTORD_ASSIGN_OR_RETURN(
      idx->store_,
      storage::PostingStore::Open(dir + "/" + kSpannPostingFile, &v1_dir, options.force_buffered));
  const storage::PostingStore& ps = *idx->store_;
  idx->record_bytes_ = m.dim * static_cast<uint32_t>(DataTypeSize(m.dtype));
  const uint32_t pq_m = m.pq ? m.pq->params().m : 0;
  if (ps.layout_tag() != static_cast<uint32_t>(m.layout)) {
    return Status::Corruption("SPANN index '" + dir + "': posting file holds layout " +
                              std::to_string(ps.layout_tag()) + ", centroid file " +
                              std::to_string(static_cast<uint32_t>(m.layout)));
  }
  idx->codec_ = std::make_unique<index::PostingCodec>(m.layout, ps.entry_bytes(), pq_m);
  if (m.layout != index::PostingLayout::kFull && options.vector_file.empty()) {
    return Status::InvalidArgument("SPANN index '" + dir +
                                   "' stores PQ codes: its vector file is needed to re-rank");
  }

  // The living state: the checkpoint when the updater has written one, else the build's
  // directory and centroids; then the journal's records after it.
  auto ckpt = ReadSpannCheckpoint(dir);
  if (ckpt.ok()) {
    VECTORD_ASSIGN_OR_RETURN(auto nav, index::CentroidIndex::Deserialize(ckpt->navigation));
    idx->nav_ = std::move(nav);
    idx->dir_ = std::move(ckpt->directory);
    idx->versions_ = std::move(ckpt->versions);
    idx->durable_rows_ = ckpt->durable_rows;
    idx->assign_version_ = ckpt->assign_version;
    idx->journal_next_seq_ = ckpt->next_seq;
    idx->live_.splits = ckpt->counters.size() > 0 ? ckpt->counters[0] : 0;
    idx->live_.merges = ckpt->counters.size() > 1 ? ckpt->counters[1] : 0;
    idx->live_.reassigned = ckpt->counters.size() > 2 ? ckpt->counters[2] : 0;
    idx->live_.lists_written = ckpt->counters.size() > 3 ? ckpt->counters[3] : 0;
    idx->live_.cycles = ckpt->counters.size() > 4 ? ckpt->counters[4] : 0;
    idx->live_.bytes_written = ckpt->counters.size() > 5 ? ckpt->counters[5] : 0;
    idx->live_.gc_lists = ckpt->counters.size() > 6 ? ckpt->counters[6] : 0;
    if (ps.header_version() == 1) {
      // The checkpoint holds the adopted directory: the version-1 footer may go.
      VECTORD_RETURN_IF_ERROR(idx->store_->UpgradeHeader());
    }
  } else if (ckpt.status().code() == Status::Code::kNotFound) {
    if (ps.header_version() != 1 || v1_dir.size() != m.num_lists()) {
      return Status::Corruption("SPANN index '" + dir + "': no checkpoint, and the posting file (" +
                                std::to_string(v1_dir.size()) + " lists) is not the build's (" +
                                std::to_string(m.num_lists()) + " lists)");
    }
    idx->nav_ = std::shared_ptr<const index::CentroidIndex>(std::move(idx->meta_.centroids));
    idx->dir_ = std::move(v1_dir);
    idx->versions_.assign(m.rows, 0);
    idx->durable_rows_ = m.rows;
  } else {
    return ckpt.status();
  }
  if (idx->dir_.size() != idx->nav_->size() || idx->nav_->dim() != m.dim) {
    return Status::Corruption("SPANN index '" + dir + "': directory of " +
                              std::to_string(idx->dir_.size()) + " lists, navigation of " +
                              std::to_string(idx->nav_->size()) + " centroids");
  }
  VECTORD_ASSIGN_OR_RETURN(
      idx->journal_,
      storage::RecordLog::Open(
          dir + "/" + kSpannJournalFile, [&](uint64_t seq, std::string_view rec) -> Status {
            if (seq < idx->journal_next_seq_) return Status::OK();  // in the checkpoint already
            VECTORD_ASSIGN_OR_RETURN(SpannEdit e, DecodeSpannEdit(rec, m.dim));
            return idx->ReplayEdit(e).WithContext("SPANN journal '" + dir + "' record " +
                                                  std::to_string(seq));
          }));
  idx->assigned_rows_ = idx->durable_rows_;
  // Rows past the durable ones are assigned again, with a version no entry of theirs that a
  // previous run wrote can carry.
  idx->assign_version_ = static_cast<uint8_t>(idx->assign_version_ + 1);
  VECTORD_RETURN_IF_ERROR(idx->store_->InitAllocator(idx->dir_));
  idx->RecomputeListMeans();

  // The vector file: re-ranking (PQ layouts) and ReadRows (every layout).
  if (!options.vector_file.empty()) {
    struct stat sb;
    if (::stat(options.vector_file.c_str(), &sb) != 0) {
      return Status::NotFound("vector file '" + options.vector_file + "' of SPANN index '" + dir +
                              "' is missing");
    }
    {
      VECTORD_ASSIGN_OR_RETURN(auto vf,
                               storage::VectorFile::Open(options.vector_file, m.dim, m.dtype));
      if (vf->rows() < idx->durable_rows_) {
        return Status::Corruption("vector file '" + options.vector_file + "' holds " +
                                  std::to_string(vf->rows()) + " rows, the SPANN index " +
                                  std::to_string(idx->durable_rows_));
      }
    }
    int fd = -1;
    if (!options.force_buffered) {
      fd = ::open(options.vector_file.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    }
    if (fd < 0) fd = ::open(options.vector_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return Status::IOError("open '" + options.vector_file + "': " + std::strerror(errno));
    }
    idx->vec_fd_ = fd;
    idx->vec_tail_fd_ = ::open(options.vector_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (idx->vec_tail_fd_ < 0) {
      return Status::IOError("open '" + options.vector_file + "': " + std::strerror(errno));
    }
    idx->vec_file_bytes_ = static_cast<uint64_t>(sb.st_size);
  }
  // Row codes: optional (a cache of what the vector file holds); a damaged file is reported and
  // the index serves without them. Rows assigned since the file was written are encoded again.
  {
    auto codes = RowCodes::Read(dir + "/" + kRowCodesFile, idx->durable_rows_);
    if (codes.ok()) {
      std::unique_ptr<RowCodes> rc = std::move(codes).value();
      Status st = idx->CatchUpRowCodes(rc.get(), idx->durable_rows_);
      if (st.ok()) {
        idx->InstallRowCodes(std::move(rc));
      } else {
        std::cerr << "vectord: SPANN index '" << dir << "': " << st.ToString()
                  << "; filtered searches run without the code scan\n";
      }
    } else if (codes.status().code() != Status::Code::kNotFound) {
      std::cerr << "vectord: SPANN index '" << dir << "': " << codes.status().ToString()
                << "; filtered searches run without the code scan\n";
    }
  }
  // Static cache of hot lists: highest build-time probe count per page first (lists the build did
  // not make have no count and are not cached).
  idx->cache_.resize(idx->dir_.size());
  if (options.cache_bytes > 0) {
    std::vector<std::pair<double, uint32_t>> order;
    for (uint32_t l = 0; l < idx->dir_.size() && l < m.list_hits.size(); ++l) {
      if (idx->dir_[l].bytes == 0 || !idx->nav_->alive(l)) continue;
      order.emplace_back(-static_cast<double>(m.list_hits[l]) / idx->dir_[l].pages, l);
    }
    std::sort(order.begin(), order.end());
    for (const auto& [score, l] : order) {
      if (idx->cache_bytes_ + idx->dir_[l].bytes > options.cache_bytes) continue;
      VECTORD_RETURN_IF_ERROR(ps.ReadList(l, idx->dir_[l], &idx->cache_[l]));
      index::PostingView v;
      VECTORD_RETURN_IF_ERROR(
          idx->codec_->View(idx->cache_[l].data(), idx->cache_[l].size(), l, &v));
      idx->cache_bytes_ += idx->cache_[l].size();
    }
  }
  return idx;
}

Status SpannIndex::ReplayEdit(const SpannEdit& e) {
  for (const auto& step : e.nav) {
    index::CentroidEdits ce;
    ce.removed = step.removed;
    ce.added_ids = step.added_ids;
    ce.added = step.added;
    VECTORD_ASSIGN_OR_RETURN(nav_, nav_->WithEdits(ce));
  }
  if (dir_.size() < nav_->size()) dir_.resize(nav_->size());
  for (const auto& [id, info] : e.lists) {
    if (id >= dir_.size()) {
      return Status::Corruption("list " + std::to_string(id) + " past the " +
                                std::to_string(dir_.size()) + " lists");
    }
    dir_[id] = info;
  }
  if (e.durable_rows < durable_rows_) {
    return Status::Corruption("durable rows go back from " + std::to_string(durable_rows_) +
                              " to " + std::to_string(e.durable_rows));
  }
  durable_rows_ = e.durable_rows;
  assign_version_ = e.assign_version;
  versions_.resize(durable_rows_, e.assign_version);
  for (const auto& [row, v] : e.versions) {
    if (row >= durable_rows_) return Status::Corruption("version of row " + std::to_string(row));
    versions_[row] = v;
  }
  uint64_t* counters[] = {&live_.splits,        &live_.merges,        &live_.reassigned,
                          &live_.lists_written, &live_.bytes_written, &live_.gc_lists};
  for (size_t i = 0; i < e.counters.size() && i < std::size(counters); ++i) {
    *counters[i] += e.counters[i];
  }
  live_.cycles++;
  return Status::OK();
}

Status SpannIndex::CatchUpRowCodes(RowCodes* codes, uint64_t rows) const {
  if (codes->rows() >= rows) return Status::OK();
  if (vec_tail_fd_ < 0) return Status::FailedPrecondition("no vector file to encode rows from");
  VECTORD_ASSIGN_OR_RETURN(auto vf,
                           storage::VectorFile::Open(options_.vector_file, meta_.dim, meta_.dtype));
  constexpr uint64_t kChunk = 4096;
  std::vector<uint8_t> buf;
  while (codes->rows() < rows) {
    const uint64_t first = codes->rows(), n = std::min(kChunk, rows - first);
    buf.resize(n * record_bytes_);
    VECTORD_RETURN_IF_ERROR(vf->Read(first, n, buf.data()));
    codes->Append(buf.data(), n, meta_.dtype);
  }
  return Status::OK();
}

void SpannIndex::RecomputeListMeans() {
  uint64_t entries = 0, pages = 0, lists = 0;
  for (uint32_t l = 0; l < dir_.size(); ++l) {
    if (!nav_->alive(l)) continue;
    entries += dir_[l].count;
    pages += dir_[l].pages;
    ++lists;
  }
  const double n = std::max<double>(1, static_cast<double>(lists));
  mean_entries_ = static_cast<double>(entries) / n;
  mean_pages_ = static_cast<double>(pages) / n;
  live_.lists = static_cast<uint32_t>(lists);
  live_.list_entries = entries;
}

bool SpannIndex::InstallRowCodes(std::unique_ptr<RowCodes> codes) const {
  std::lock_guard<std::mutex> l(row_codes_mu_);
  if (row_codes_owned_ || !codes || codes->rows() > assigned_rows_) return false;
  row_codes_owned_ = std::move(codes);
  row_codes_.store(row_codes_owned_.get(), std::memory_order_release);
  return true;
}

double SpannIndex::MeanReplicas() const {
  if (assigned_rows_ == 0) return 1;
  return std::max(1.0, static_cast<double>(live_.list_entries + pending_entries_) /
                           static_cast<double>(assigned_rows_));
}

size_t SpannIndex::ResidentBytes() const {
  return nav_->MemoryBytes() + (meta_.pq ? meta_.pq->centroids().size() * 4 : 0) +
         dir_.capacity() * sizeof(storage::PostingListInfo) + versions_.capacity() +
         (row_codes() ? row_codes()->MemoryBytes() : 0) + pending_vectors_.capacity() +
         pending_entries_ * sizeof(uint32_t) + pending_.size() * 48;
}

uint64_t SpannIndex::PostingFileBytes() const { return store_->stats().file_bytes; }
bool SpannIndex::direct_io() const { return store_->direct_io(); }

SpannLiveStats SpannIndex::LiveStats() const {
  SpannLiveStats st = live_;
  st.durable_rows = durable_rows_;
  st.assigned_rows = assigned_rows_;
  st.pending_entries = pending_entries_;
  const storage::PostingStoreStats ps = store_->stats();
  st.posting_file_bytes = ps.file_bytes;
  st.free_bytes = ps.free_pages * storage::kPostingPageBytes;
  return st;
}

Result<std::vector<index::Neighbor>> SpannIndex::Search(const float* q, uint32_t k,
                                                        const SpannSearchParams& params,
                                                        SpannSearchStats* stats) const {
  SpannSearchStats local;
  SpannSearchStats* st = stats != nullptr ? stats : &local;
  *st = SpannSearchStats();
  std::vector<index::Neighbor> out;
  if (k == 0 || assigned_rows_ == 0) return out;
  const auto t0 = Clock::now();
  Scratch& s = TlsScratch();
  nav_->Search(q, std::max<uint32_t>(1, params.nprobe), params.navigation, &s.hits);
  std::vector<uint32_t> probe;
  probe.reserve(s.hits.size());
  const float limit = params.eps > 0 && !s.hits.empty()
                          ? s.hits[0].dist * (1 + params.eps) * (1 + params.eps)
                          : std::numeric_limits<float>::infinity();
  uint64_t budget_pages = 0;
  for (const auto& h : s.hits) {
    if (h.dist > limit) break;
    const uint32_t pages = cache_[h.id].empty() ? dir_[h.id].pages : 0;
    if (params.max_pages > 0 && !probe.empty() && budget_pages + pages > params.max_pages) break;
    budget_pages += pages;
    probe.push_back(h.id);
  }
  const auto t1 = Clock::now();
  st->us_navigate = Us(t0, t1);
  Status status = ReadAndScan(q, k, params, probe, st, &out);
  st->us_total = Us(t0, Clock::now());
  if (!status.ok()) return status;
  return out;
}

Status SpannIndex::ListRows(uint32_t list, std::vector<uint32_t>* rows) const {
  rows->clear();
  if (list >= dir_.size()) {
    return Status::InvalidArgument("posting list " + std::to_string(list) + " of " +
                                   std::to_string(dir_.size()));
  }
  if (dir_[list].count == 0) return Status::OK();
  std::vector<uint8_t> own;
  const std::vector<uint8_t>* payload = &cache_[list];
  if (payload->empty()) {
    VECTORD_RETURN_IF_ERROR(store_->ReadList(list, dir_[list], &own));
    payload = &own;
  }
  index::PostingView v;
  VECTORD_RETURN_IF_ERROR(codec_->View(payload->data(), payload->size(), list, &v));
  rows->reserve(v.count);
  for (uint32_t e = 0; e < v.count; ++e) {
    const uint32_t row = v.id(e);
    if (row < versions_.size() && v.version(e) == versions_[row]) rows->push_back(row);
  }
  return Status::OK();
}

Status SpannIndex::ReadRows(const std::vector<uint32_t>& rows, uint8_t* out,
                            uint64_t* pages) const {
  if (vec_fd_ < 0) {
    return Status::FailedPrecondition("SPANN index was opened without its vector file");
  }
  Scratch& s = TlsScratch();
  VECTORD_ASSIGN_OR_RETURN(storage::IoReader * reader, ReaderFor(&s, options_.force_pread));
  const uint32_t rec = record_bytes_ + 4;
  // Rows at most about a page of records apart share one read (a run), up to 1024 rows a run.
  const uint64_t gap = std::max<uint64_t>(1, 4096 / rec);
  constexpr uint64_t kChunkBytes = uint64_t{16} << 20;  // buffer per batch
  struct Run {
    size_t first, last;  // rows[first, last)
    uint64_t begin;      // file offset of the buffer's first byte (4096-aligned)
    uint64_t buf;        // offset in s.rows
  };
  std::vector<Run> runs;
  size_t i = 0;
  while (i < rows.size()) {
    runs.clear();
    s.reqs.clear();
    uint64_t total = 0;
    // Plan a batch of runs.
    while (i < rows.size() && total < kChunkBytes) {
      if (rows[i] >= assigned_rows_) {
        return Status::InvalidArgument("row " + std::to_string(rows[i]) + " is not in the index");
      }
      size_t j = i + 1;
      while (j < rows.size() && rows[j] > rows[j - 1] && rows[j] - rows[j - 1] <= gap &&
             rows[j] - rows[i] < 1024 && rows[j] < assigned_rows_) {
        ++j;
      }
      const uint64_t begin =
          storage::VectorFile::RecordOffset(rows[i], record_bytes_) & ~uint64_t{4095};
      const uint64_t end =
          (storage::VectorFile::RecordOffset(rows[j - 1], record_bytes_) + rec + 4095) &
          ~uint64_t{4095};
      runs.push_back({i, j, begin, total});
      total += end - begin;
      i = j;
    }
    s.rows.Resize(total);
    for (size_t r = 0; r < runs.size(); ++r) {
      const Run& run = runs[r];
      const uint64_t len = (r + 1 < runs.size() ? runs[r + 1].buf : total) - run.buf;
      uint8_t* dst = s.rows.data() + run.buf;
      if (run.begin + len > vec_file_bytes_) {
        // The span passes the end of the file (O_DIRECT needs whole pages): buffered read.
        const uint64_t n = vec_file_bytes_ > run.begin ? vec_file_bytes_ - run.begin : 0;
        if (::pread(vec_tail_fd_, dst, n, static_cast<off_t>(run.begin)) !=
            static_cast<ssize_t>(n)) {
          return Status::IOError("read at offset " + std::to_string(run.begin) + " of '" +
                                 options_.vector_file + "' failed");
        }
        continue;
      }
      s.reqs.push_back({vec_fd_, run.begin, static_cast<uint32_t>(len), dst});
    }
    const uint64_t before = reader->pages_read();
    if (!s.reqs.empty()) VECTORD_RETURN_IF_ERROR(reader->ReadBatch(s.reqs.data(), s.reqs.size()));
    if (pages != nullptr) *pages += reader->pages_read() - before;
    for (const Run& run : runs) {
      for (size_t t = run.first; t < run.last; ++t) {
        const uint64_t off = storage::VectorFile::RecordOffset(rows[t], record_bytes_);
        const uint8_t* r = s.rows.data() + run.buf + (off - run.begin);
        if (!storage::VectorFile::VerifyRecord(rows[t], r, record_bytes_)) {
          return Status::Corruption("vector file '" + options_.vector_file +
                                    "': checksum mismatch in row " + std::to_string(rows[t]) +
                                    " at offset " + std::to_string(off));
        }
        std::memcpy(out + t * record_bytes_, r, record_bytes_);
      }
    }
  }
  return Status::OK();
}

Result<std::vector<index::Neighbor>> SpannIndex::SearchAdaptive(const float* q, uint32_t k,
                                                                const SpannSearchParams& params,
                                                                const SpannAdaptiveParams& ap,
                                                                SpannSearchStats* stats,
                                                                SpannAdaptiveStats* astats) const {
  SpannSearchStats local;
  SpannSearchStats* st = stats != nullptr ? stats : &local;
  SpannAdaptiveStats alocal;
  SpannAdaptiveStats* as = astats != nullptr ? astats : &alocal;
  *st = SpannSearchStats();
  *as = SpannAdaptiveStats();
  std::vector<index::Neighbor> best;
  if (k == 0 || assigned_rows_ == 0) return best;
  const auto t0 = Clock::now();
  const uint32_t max_lists = std::max<uint32_t>(1, std::min(ap.max_lists, nav_->alive_count()));
  std::vector<index::CentroidHit> hits;
  const Roaring* cand = ap.candidate_lists;
  const uint64_t ncand = cand != nullptr ? cand->cardinality() : nav_->alive_count();
  bool covers_all = false;  // `hits` holds every list that may be read
  if (cand != nullptr && ncand <= std::max<uint64_t>(4 * uint64_t{max_lists}, 256)) {
    // Few candidate lists: rank all of them by exact centroid distance.
    hits.reserve(ncand);
    for (uint32_t l : *cand) {
      if (l >= nav_->size()) break;
      if (nav_->alive(l)) hits.push_back({nav_->L2(q, l), l});
    }
    std::sort(hits.begin(), hits.end(),
              [](const index::CentroidHit& a, const index::CentroidHit& b) {
                return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
              });
    covers_all = true;
  } else {
    // Navigate to enough nearest lists that about max_lists of them are candidates.
    uint64_t want = max_lists;
    if (cand != nullptr) {
      want = std::min<uint64_t>(
          nav_->alive_count(),
          (uint64_t{max_lists} * nav_->alive_count() * 5 / 4 / std::max<uint64_t>(1, ncand)) + 16);
    }
    nav_->Search(q, static_cast<uint32_t>(want), params.navigation, &hits);
    covers_all = hits.size() >= nav_->alive_count();
    if (cand != nullptr) {
      hits.erase(
          std::remove_if(hits.begin(), hits.end(),
                         [cand](const index::CentroidHit& h) { return !cand->contains(h.id); }),
          hits.end());
    }
  }
  st->us_navigate = Us(t0, Clock::now());
  const bool ip = meta_.metric != Distance::kEuclid;
  auto better = [ip](const index::Neighbor& a, const index::Neighbor& b) {
    if (a.score != b.score) return ip ? a.score > b.score : a.score < b.score;
    return a.row < b.row;
  };
  const uint32_t first = std::max<uint32_t>(1, ap.first_lists);
  const uint32_t check = ap.check_lists > 0 ? ap.check_lists : std::max<uint32_t>(4, first / 2);
  size_t next = 0;
  uint32_t read = 0;
  uint64_t pages = 0;
  bool checking = false, converged = false;
  std::vector<uint32_t> probe;
  std::vector<index::Neighbor> round;
  while (next < hits.size()) {
    size_t want = as->rounds == 0 ? first : (checking ? check : std::max<size_t>(next, check));
    if (as->rounds == 0 && ap.first_rows > 0) {
      // Enough of the nearest lists to hold about first_rows rows.
      const double per_row = MeanReplicas();
      double rows = 0;
      size_t lists = 0;
      while (lists < hits.size() && rows < static_cast<double>(ap.first_rows)) {
        const uint32_t l = hits[lists].id;
        uint64_t entries = dir_[l].count;
        if (!pending_.empty()) {
          auto it = pending_.find(l);
          if (it != pending_.end()) entries += it->second.size();
        }
        rows += static_cast<double>(entries) / per_row;
        ++lists;
      }
      want = std::max(want, lists);
    }
    if (checking && ap.distance_stop && !ip && ap.batch_distance_round) {
      // The distance rule will read every list whose centroid is within r_k (+ slack) of q, r_k
      // only shrinking: read them all in this round instead of one check round at a time.
      const float r1 = std::sqrt(std::max(0.0f, hits[0].dist));
      const float reach = best[k - 1].score + ap.distance_slack * r1;
      const float reach2 = reach > 0 ? reach * reach : 0;
      size_t within = next;
      while (within < hits.size() && hits[within].dist <= reach2) ++within;
      want = std::max(want, within - next);
    }
    probe.clear();
    while (next < hits.size() && probe.size() < want && read < max_lists) {
      const uint32_t l = hits[next].id;
      const uint32_t p = cache_[l].empty() ? dir_[l].pages : 0;
      if (ap.max_pages > 0 && pages + p > ap.max_pages && !(pages == 0 && probe.empty())) break;
      pages += p;
      probe.push_back(l);
      ++next;
      ++read;
    }
    if (probe.empty()) break;
    SpannSearchStats rs;
    round.clear();
    VECTORD_RETURN_IF_ERROR(ReadAndScan(q, k, params, probe, &rs, &round));
    st->Add(rs);
    as->rounds++;
    // Merge: a row found again (a replica in a later round) has the same exact score.
    const std::vector<index::Neighbor> before(best.begin(),
                                              best.begin() + std::min<size_t>(k, best.size()));
    best.insert(best.end(), round.begin(), round.end());
    std::sort(best.begin(), best.end(), better);
    best.erase(std::unique(best.begin(), best.end(),
                           [](const index::Neighbor& a, const index::Neighbor& b) {
                             return a.row == b.row;
                           }),
               best.end());
    if (best.size() > k) best.resize(k);
    if (best.size() >= k) {
      bool same = before.size() == best.size();
      for (size_t i = 0; same && i < best.size(); ++i) same = before[i].row == best[i].row;
      bool far = true;
      if (ap.distance_stop && !ip && next < hits.size()) {
        const float r1 = std::sqrt(std::max(0.0f, hits[0].dist));
        far =
            std::sqrt(std::max(0.0f, hits[next].dist)) > best[k - 1].score + ap.distance_slack * r1;
      }
      if ((checking && same && far) || ap.stop_at_k) {
        converged = true;
        break;
      }
      checking = true;
    }
    if (ap.max_pages > 0 && pages >= ap.max_pages) break;
  }
  as->budget_hit = !converged && (next < hits.size() || !covers_all);
  st->us_total = Us(t0, Clock::now());
  return best;
}

Status SpannIndex::ReadAndScan(const float* q, uint32_t k, const SpannSearchParams& params,
                               const std::vector<uint32_t>& probe, SpannSearchStats* st,
                               std::vector<index::Neighbor>* out) const {
  Scratch& s = TlsScratch();
  VECTORD_ASSIGN_OR_RETURN(storage::IoReader * reader, ReaderFor(&s, options_.force_pread));
  const storage::PostingStore& pf = *store_;
  const bool ip = meta_.metric != Distance::kEuclid;
  const uint32_t dim = meta_.dim;

  // One batch for every probed list not in the cache.
  auto t = Clock::now();
  s.reqs.clear();
  s.page_off.assign(probe.size(), ~uint64_t{0});
  uint64_t total = 0, entries = 0;
  for (size_t i = 0; i < probe.size(); ++i) {
    const auto& info = dir_[probe[i]];
    entries += info.count;
    if (!cache_[probe[i]].empty() || info.pages == 0) continue;
    s.page_off[i] = total;
    total += uint64_t{info.pages} * storage::kPostingPageBytes;
  }
  s.pages.Resize(total);
  s.read_list.clear();  // request index -> probe index
  for (size_t i = 0; i < probe.size(); ++i) {
    if (s.page_off[i] == ~uint64_t{0}) continue;
    const auto& info = dir_[probe[i]];
    s.reqs.push_back({pf.direct_fd(), uint64_t{info.first_page} * storage::kPostingPageBytes,
                      info.pages * storage::kPostingPageBytes, s.pages.data() + s.page_off[i]});
    s.read_list.push_back(static_cast<uint32_t>(i));
  }
  // Scan.
  const bool pq = meta_.layout != index::PostingLayout::kFull;
  const uint32_t cap = pq && params.exact_rerank ? std::max(k, params.rerank) : k;
  TopHeap heap(cap);
  if (!pending_.empty()) {
    for (uint32_t l : probe) {
      auto it = pending_.find(l);
      if (it != pending_.end()) entries += it->second.size();
    }
  }
  s.visited.Reset(std::min<uint64_t>(entries, 1u << 22));
  const uint32_t m = pq ? meta_.pq->params().m : 0;
  const uint32_t ksub = pq ? meta_.pq->ksub() : 0;
  index::QuantizedLut ip_qlut;
  if (pq) {
    s.lut.resize(size_t{m} * ksub);
    s.qr.resize(dim);
    if (ip) {
      // Inner product: the tables depend on q alone (the list adds the bias <q, c_l>), so one set
      // serves every list.
      meta_.pq->ComputeLut(q, index::PqMetric::kIP, s.lut.data());
      if (meta_.layout == index::PostingLayout::kPq4) ip_qlut = index::QuantizeLut(s.lut.data(), m);
    }
  }
  // Scans probe[i] (from the cache or from its pages in s.pages).
  auto scan_list = [&](size_t i) -> Status {
    const uint32_t l = probe[i];
    const auto& info = dir_[l];
    if (info.count == 0) return Status::OK();
    const uint8_t* payload;
    size_t bytes;
    if (!cache_[l].empty()) {
      payload = cache_[l].data();
      bytes = cache_[l].size();
      st->lists_cached++;
    } else {
      s.payload.resize(info.bytes);
      VECTORD_RETURN_IF_ERROR(
          pf.DecodeList(l, info, s.pages.data() + s.page_off[i], s.payload.data()));
      payload = s.payload.data();
      bytes = info.bytes;
    }
    index::PostingView v;
    VECTORD_RETURN_IF_ERROR(codec_->View(payload, bytes, l, &v));
    st->lists_probed++;
    st->candidates += v.count;
    s.dist.resize(v.count);
    if (!pq) {
      index::ScanFull(v, q, dim, meta_.dtype, ip, s.dist.data());
      st->distances += v.count;
    } else {
      // Residual PQ: L2 tables for q - c_l; IP tables for q plus the <q, c_l> bias.
      float bias = 0;
      if (ip) {
        bias = nav_->Ip(q, l);  // from the stored precision: no decode (FDE centroids are long)
      } else {
        s.cent.resize(dim);
        nav_->Decode(l, s.cent.data());
        const float* c = s.cent.data();
        for (uint32_t j = 0; j < dim; ++j) s.qr[j] = q[j] - c[j];
        meta_.pq->ComputeLut(s.qr.data(), index::PqMetric::kL2, s.lut.data());
      }
      if (meta_.layout == index::PostingLayout::kPq4) {
        index::QuantizedLut list_qlut;
        if (!ip) list_qlut = index::QuantizeLut(s.lut.data(), m);
        const index::QuantizedLut& qlut = ip ? ip_qlut : list_qlut;
        s.acc.resize((size_t{v.count} + 31) / 32 * 32);
        index::ScanPq4(v, m, qlut, s.acc.data());
        for (uint32_t e = 0; e < v.count; ++e) s.dist[e] = index::FastScanToFloat(qlut, s.acc[e]);
      } else {
        index::ScanPq8(v, m, s.lut.data(), s.dist.data());
      }
      if (ip) {
        for (uint32_t e = 0; e < v.count; ++e) s.dist[e] = -(bias + s.dist[e]);
      }
    }
    for (uint32_t e = 0; e < v.count; ++e) {
      const float d = s.dist[e];
      if (heap.Full() && d >= heap.Worst()) continue;
      const uint32_t row = v.id(e);
      // A stale replica (its row was reassigned since, or a crashed run wrote it for a row that
      // is being assigned again) is skipped; so are rows filtered out.
      if (row >= versions_.size() || v.version(e) != versions_[row] || !Allowed(params, row) ||
          !s.visited.Insert(row)) {
        continue;
      }
      heap.Push(d, row);
    }
    return Status::OK();
  };
  // The entries of every probed list that wait in RAM for its next rewrite: exact distances.
  auto scan_pending = [&]() {
    if (pending_.empty()) return;
    for (uint32_t l : probe) {
      auto it = pending_.find(l);
      if (it == pending_.end()) continue;
      st->candidates += it->second.size();
      st->pending += it->second.size();
      st->distances += it->second.size();
      for (uint32_t row : it->second) {
        const float d = index::RowDistance(q, PendingVector(row), dim, meta_.dtype, ip);
        if (heap.Full() && d >= heap.Worst()) continue;
        if (!Allowed(params, row) || !s.visited.Insert(row)) continue;
        heap.Push(d, row);
      }
    }
  };

  // Full layout: the scan overlaps the reads (cached lists while they are in flight, each read
  // list as it arrives); the result does not depend on the order, since a row's replicas have
  // the same exact distance and ties go to the lower row. PQ layouts scan in probe order after
  // the batch: a replica's residual-PQ distance depends on its list, so the first one seen must
  // not depend on which read finished first.
  storage::IoReader::BatchCallbacks cb;
  double us_overlap = 0;
  if (!pq) {
    cb.in_flight = [&]() -> Status {
      const auto t0 = Clock::now();
      for (size_t i = 0; i < probe.size(); ++i) {
        if (s.page_off[i] == ~uint64_t{0}) VECTORD_RETURN_IF_ERROR(scan_list(i));
      }
      scan_pending();
      us_overlap += Us(t0, Clock::now());
      return Status::OK();
    };
    cb.on_read = [&](size_t r) -> Status {
      const auto t0 = Clock::now();
      Status status = scan_list(s.read_list[r]);
      us_overlap += Us(t0, Clock::now());
      return status;
    };
  }
  const uint64_t pages_before = reader->pages_read();
  VECTORD_RETURN_IF_ERROR(reader->ReadBatch(s.reqs.data(), s.reqs.size(), cb));
  st->pages_read += reader->pages_read() - pages_before;
  auto t2 = Clock::now();
  if (pq) {
    for (size_t i = 0; i < probe.size(); ++i) VECTORD_RETURN_IF_ERROR(scan_list(i));
    scan_pending();
  }
  auto t3 = Clock::now();
  // us_io: waiting for the disk (the batch's wall time less the scans run inside it).
  const double batch_us = Us(t, t2);
  st->us_io = batch_us > us_overlap ? batch_us - us_overlap : 0;
  st->us_scan = Us(t2, t3) + us_overlap;
  std::vector<std::pair<float, uint32_t>> cands = heap.Sorted();

  if (pq && !cands.empty() && params.exact_rerank) {
    // Re-rank: one read per candidate of the aligned page span holding its record.
    const uint32_t rec = record_bytes_ + 4;
    const uint32_t slot = static_cast<uint32_t>(storage::AlignedBuffer::RoundUp(rec) + 4096);
    s.rerank.Resize(size_t{slot} * cands.size());
    s.reqs.clear();
    for (size_t i = 0; i < cands.size(); ++i) {
      const uint64_t off = storage::VectorFile::RecordOffset(cands[i].second, record_bytes_);
      const uint64_t begin = off & ~uint64_t{4095};
      const uint64_t end = (off + rec + 4095) & ~uint64_t{4095};
      if (end > vec_file_bytes_) {
        // The span passes the end of the file (O_DIRECT needs whole pages): read just the record.
        uint8_t* dst = s.rerank.data() + size_t{slot} * i + (off & 4095);
        if (::pread(vec_tail_fd_, dst, rec, static_cast<off_t>(off)) != static_cast<ssize_t>(rec)) {
          return Status::IOError("read of row " + std::to_string(cands[i].second) + " from '" +
                                 options_.vector_file + "' failed");
        }
        continue;
      }
      s.reqs.push_back(
          {vec_fd_, begin, static_cast<uint32_t>(end - begin), s.rerank.data() + size_t{slot} * i});
    }
    const uint64_t before = reader->pages_read();
    VECTORD_RETURN_IF_ERROR(reader->ReadBatch(s.reqs.data(), s.reqs.size()));
    st->rerank_pages = reader->pages_read() - before;
    st->pages_read += st->rerank_pages;
    for (size_t i = 0; i < cands.size(); ++i) {
      const uint32_t row = cands[i].second;
      const uint64_t off = storage::VectorFile::RecordOffset(row, record_bytes_);
      const uint8_t* r = s.rerank.data() + size_t{slot} * i + (off & 4095);
      if (!storage::VectorFile::VerifyRecord(row, r, record_bytes_)) {
        return Status::Corruption("vector file '" + options_.vector_file +
                                  "': checksum mismatch in row " + std::to_string(row) +
                                  " at offset " + std::to_string(off));
      }
      cands[i].first = index::RowDistance(q, r, dim, meta_.dtype, ip);
    }
    st->distances += cands.size();
    std::sort(cands.begin(), cands.end());
    st->us_rerank = Us(t3, Clock::now());
  }
  const size_t n = std::min<size_t>(k, cands.size());
  out->resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float d = cands[i].first;
    (*out)[i] = {ip ? -d : std::sqrt(std::max(0.0f, d)), cands[i].second};
  }
  return Status::OK();
}

}  // namespace vectord
