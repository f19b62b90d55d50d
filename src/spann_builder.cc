// Offline SPANN build (see spann_builder.h and docs/spann.md "Build").
#include "src/spann_builder.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <thread>
#include <vector>

#include "index/balanced_kmeans.h"
#include "index/centroid_batch.h"
#include "index/distance.h"
#include "index/pq.h"
#include "src/external_sort.h"
#include "src/row_codes.h"
#include "src/spann_meta.h"
#include "src/thread_pool.h"
#include "storage/posting_file.h"

namespace vectord {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

uint64_t PeakRssBytes() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

// Largest divisor of dim that is <= want (at least 1).
uint32_t DivisorAtMost(uint32_t dim, uint32_t want) {
  for (uint32_t m = std::max<uint32_t>(1, std::min(want, dim)); m > 1; --m) {
    if (dim % m == 0) return m;
  }
  return 1;
}

// Streams a Bernoulli sample of about `want` of src's rows (every row when want >= rows; the same
// rows for a given seed): fn(first, chunk, sel) for each chunk of chunk_rows rows that holds
// sampled rows, `chunk` its raw rows, `sel` the sampled rows' indices in it, ascending.
using SampledChunkFn = std::function<Status(uint64_t first, const std::vector<uint8_t>& chunk,
                                            const std::vector<uint32_t>& sel)>;
Status ForEachSampledChunk(const VectorSource& src, uint64_t want, uint64_t seed,
                           uint32_t chunk_rows, const SampledChunkFn& fn) {
  const uint64_t n = src.rows();
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution pick(static_cast<double>(std::min(want, n)) / n);
  std::vector<uint8_t> chunk;
  std::vector<uint32_t> sel;
  for (uint64_t first = 0; first < n; first += chunk_rows) {
    const uint64_t cnt = std::min<uint64_t>(chunk_rows, n - first);
    sel.clear();
    for (uint64_t i = 0; i < cnt; ++i) {
      if (want >= n || pick(rng)) sel.push_back(static_cast<uint32_t>(i));
    }
    if (sel.empty()) continue;
    chunk.resize(cnt * src.row_bytes());
    VECTORD_RETURN_IF_ERROR(src.Read(first, cnt, chunk.data()));
    VECTORD_RETURN_IF_ERROR(fn(first, chunk, sel));
  }
  return Status::OK();
}

// Accumulates one list's entries from the sorted stream and writes whole lists.
class ListWriter {
 public:
  ListWriter(storage::PostingFileWriter* w, const index::PostingCodec& codec, uint32_t lists)
      : w_(w), codec_(codec), counts_(lists, 0) {}
  Status Add(const uint8_t* rec) {
    uint32_t list, row;
    std::memcpy(&list, rec, 4);
    std::memcpy(&row, rec + 4, 4);
    if (list != cur_) VECTORD_RETURN_IF_ERROR(Flush());
    cur_ = list;
    ids_.push_back(row);
    codes_.insert(codes_.end(), rec + 8, rec + 8 + codec_.entry_bytes());
    return Status::OK();
  }
  Status Flush() {
    if (ids_.empty()) return Status::OK();
    codec_.Encode(ids_.data(), codes_.data(), static_cast<uint32_t>(ids_.size()), &payload_);
    VECTORD_RETURN_IF_ERROR(w_->AppendList(cur_, payload_.data(),
                                           static_cast<uint32_t>(payload_.size()),
                                           static_cast<uint32_t>(ids_.size())));
    counts_[cur_] = static_cast<uint32_t>(ids_.size());
    pages_ += storage::PostingPagesFor(static_cast<uint32_t>(payload_.size()));
    max_buffer_ = std::max(max_buffer_, payload_.size() + codes_.size() + ids_.size() * 4);
    ids_.clear();
    codes_.clear();
    return Status::OK();
  }
  const std::vector<uint32_t>& counts() const { return counts_; }
  uint64_t pages() const { return pages_; }

 private:
  storage::PostingFileWriter* w_;
  const index::PostingCodec& codec_;
  uint32_t cur_ = 0;
  std::vector<uint32_t> ids_;
  std::vector<uint8_t> codes_;
  std::vector<uint8_t> payload_;
  std::vector<uint32_t> counts_;
  uint64_t pages_ = 0;
  size_t max_buffer_ = 0;
};

}  // namespace

std::string SpannBuildStats::ToJson() const {
  nlohmann::json j = {{"rows", rows},
                      {"lists", lists},
                      {"entries", entries},
                      {"avg_replicas", avg_replicas},
                      {"list_min", list_min},
                      {"list_max", list_max},
                      {"list_p99", list_p99},
                      {"list_mean", list_mean},
                      {"posting_pages", posting_pages},
                      {"posting_file_bytes", posting_file_bytes},
                      {"centroid_file_bytes", centroid_file_bytes},
                      {"row_code_file_bytes", row_code_file_bytes},
                      {"row_code_bytes", row_code_bytes},
                      {"sort_runs", sort_runs},
                      {"sample_rows", sample_rows},
                      {"ram_formula_bytes", ram_formula_bytes},
                      {"peak_rss_bytes", peak_rss_bytes},
                      {"seconds_sample", seconds_sample},
                      {"seconds_kmeans", seconds_kmeans},
                      {"seconds_navigation", seconds_navigation},
                      {"seconds_pq", seconds_pq},
                      {"seconds_assign", seconds_assign},
                      {"seconds_write", seconds_write},
                      {"seconds_row_codes", seconds_row_codes},
                      {"seconds_total", seconds_total}};
  return j.dump();
}

Result<SpannBuildStats> BuildSpannIndex(const VectorSource& src, const std::string& dir,
                                        const SpannBuildParams& p, const SpannProgress& progress) {
  const auto t_start = Clock::now();
  SpannBuildStats st;
  const uint64_t n = src.rows();
  const uint32_t dim = src.dim();
  const DataType dtype = src.dtype();
  const size_t row_bytes = src.row_bytes();
  if (n == 0 || dim == 0) return Status::InvalidArgument("SPANN build: the source holds no rows");
  if (n > 0xFFFFFFFEull) {
    return Status::InvalidArgument("SPANN build: " + std::to_string(n) +
                                   " rows exceed the 32-bit internal id range");
  }
  if (p.metric == Distance::kManhattan) {
    return Status::InvalidArgument("SPANN build: metric Manhattan is not supported");
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::IOError("SPANN build: cannot create directory '" + dir +
                           "': " + std::strerror(errno));
  }
  const bool pq = p.layout != index::PostingLayout::kFull;
  uint32_t m = 0;
  if (pq) {
    m = p.pq_m != 0
            ? p.pq_m
            : DivisorAtMost(dim, p.layout == index::PostingLayout::kPq4 ? dim / 2 : dim / 4);
    if (dim % m != 0) {
      return Status::InvalidArgument("SPANN build: pq_m " + std::to_string(m) +
                                     " does not divide dimension " + std::to_string(dim));
    }
  }
  const uint32_t code_bytes = !pq ? static_cast<uint32_t>(row_bytes)
                                  : (p.layout == index::PostingLayout::kPq4 ? (m + 1) / 2 : m);
  index::PostingCodec codec(p.layout, code_bytes, m);
  // Auto list size (docs/spann.md "Tuning"): full lists hold 1.75 pages of entries on average,
  // so that most fit in 2 pages (with half centroids the fewest pages per query at recall 0.95
  // for ~17 B/vector of RAM on SIFT); PQ lists 2 pages (there re-rank reads dominate the pages).
  const double target_pages = pq ? 2.0 : 1.75;
  const uint32_t target =
      p.target_list_entries != 0
          ? p.target_list_entries
          : std::max<uint32_t>(16,
                               static_cast<uint32_t>(target_pages * storage::kPostingPagePayload /
                                                     codec.BytesPerEntry()));
  const uint32_t max_list = p.max_list_entries != 0 ? p.max_list_entries : 4 * target;
  const uint32_t num_c = static_cast<uint32_t>(
      std::clamp<double>(std::llround(static_cast<double>(n) * p.expected_replicas / target), 1.0,
                         static_cast<double>(n)));
  // Clustering sample S: 20 points per centroid (the second level's points), and its top level's
  // subset (256 points per group, also the PQ training rows). Only the top level's subset is held
  // in RAM; the second level streams S group by group through a sorted spill file.
  const uint64_t sample_n = std::min<uint64_t>(
      n, p.sample_rows != 0 ? p.sample_rows : std::max<uint64_t>(100000, uint64_t{20} * num_c));
  const uint32_t k1 = index::TopLevelGroups(num_c);
  const uint64_t top_n =
      std::min<uint64_t>(sample_n, std::max<uint64_t>(65536, uint64_t{256} * k1));
  const unsigned threads =
      p.threads != 0 ? p.threads : std::max(1u, std::thread::hardware_concurrency());
  ThreadPool pool(threads);
  const index::ParallelForFn parallel_for =
      [&pool](size_t n, const std::function<void(size_t)>& fn) { pool.ParallelFor(n, fn); };

  // (a) Top-level sample: Bernoulli selection of each row, read chunk by chunk.
  auto t = Clock::now();
  std::vector<float> sample;
  sample.reserve((top_n + top_n / 10 + 16) * dim);
  VECTORD_RETURN_IF_ERROR(ForEachSampledChunk(
      src, top_n, p.seed, p.chunk_rows,
      [&](uint64_t, const std::vector<uint8_t>& chunk, const std::vector<uint32_t>& sel) {
        for (uint32_t i : sel) {
          sample.resize(sample.size() + dim);
          index::RowsToFloat(chunk.data() + size_t{i} * row_bytes, 1, dim, dtype,
                             sample.data() + sample.size() - dim);
        }
        return Status::OK();
      }));
  const size_t top_rows = sample.size() / dim;
  st.seconds_sample = Since(t);

  // (b) Hierarchical balanced k-means (index/balanced_kmeans.h), level by level.
  t = Clock::now();
  index::KMeansParams kp;
  kp.num_centroids = num_c;
  kp.niter = p.kmeans_iters;
  kp.seed = p.seed;
  kp.threads = threads;
  index::KMeansResult km;
  km.dim = dim;
  VECTORD_RETURN_IF_ERROR(
      index::TrainTopLevel(sample.data(), top_rows, dim, k1, kp, &km.group_centroids));
  const uint32_t groups = km.num_groups();
  // The clustering sample, each row labelled with its nearest group, as records
  // [u32 group][u32 row][row bytes] sorted by (group, row) within the sort buffer.
  auto by_group =
      std::make_unique<ExternalSorter>(dir, "spann_groups", 8 + row_bytes, p.sort_buffer_bytes);
  {
    std::vector<uint8_t> rec(8 + row_bytes);
    std::vector<uint32_t> label;
    std::vector<float> sel_f;
    VECTORD_RETURN_IF_ERROR(ForEachSampledChunk(
        src, sample_n, p.seed + 1, p.chunk_rows,
        [&](uint64_t first, const std::vector<uint8_t>& chunk,
            const std::vector<uint32_t>& sel) -> Status {
          sel_f.resize(sel.size() * dim);
          constexpr size_t kConvert = 1024;
          parallel_for((sel.size() + kConvert - 1) / kConvert, [&](size_t b) {
            for (size_t i = b * kConvert; i < std::min(sel.size(), (b + 1) * kConvert); ++i) {
              index::RowsToFloat(chunk.data() + size_t{sel[i]} * row_bytes, 1, dim, dtype,
                                 sel_f.data() + i * dim);
            }
          });
          label.resize(sel.size());
          VECTORD_RETURN_IF_ERROR(index::AssignNearest(sel_f.data(), sel.size(),
                                                       km.group_centroids.data(), groups, dim,
                                                       label.data(), nullptr, threads));
          for (size_t i = 0; i < sel.size(); ++i) {
            const uint32_t row = static_cast<uint32_t>(first + sel[i]);
            std::memcpy(rec.data(), &label[i], 4);
            std::memcpy(rec.data() + 4, &row, 4);
            std::memcpy(rec.data() + 8, chunk.data() + size_t{sel[i]} * row_bytes, row_bytes);
            VECTORD_RETURN_IF_ERROR(by_group->Add(rec.data()));
          }
          st.sample_rows += sel.size();
          if (p.cancel && p.cancel->load()) return Status::Unavailable("index build cancelled");
          return Status::OK();
        }));
    VECTORD_RETURN_IF_ERROR(by_group->Finish());
  }
  // Level 2, group by group from the sorted stream, `threads` groups clustered at once; the
  // centroids are appended in group order (the result does not depend on the thread count).
  kp.max_cluster_points = static_cast<uint32_t>(std::max<double>(
      1.0, static_cast<double>(max_list) / p.expected_replicas * st.sample_rows / n));
  size_t max_group_rows = 0;
  {
    struct Pending {
      uint32_t g = 0;
      std::vector<float> x;
      std::vector<float> out;
      Status status;
    };
    std::vector<Pending> batch(threads);
    size_t in_batch = 0;
    auto run_batch = [&]() -> Status {
      parallel_for(in_batch, [&](size_t i) {
        Pending& b = batch[i];
        const size_t gn = b.x.size() / dim;
        b.status = index::ClusterGroup(
            b.x.data(), gn, dim, index::GroupShare(num_c, gn, st.sample_rows), b.g, kp, &b.out);
      });
      for (size_t i = 0; i < in_batch; ++i) {
        VECTORD_RETURN_IF_ERROR(batch[i].status);
        const uint32_t ks = static_cast<uint32_t>(batch[i].out.size() / dim);
        km.centroids.insert(km.centroids.end(), batch[i].out.begin(), batch[i].out.end());
        km.group.insert(km.group.end(), ks, batch[i].g);
      }
      in_batch = 0;
      return Status::OK();
    };
    int64_t cur = -1;
    for (const uint8_t* r; (r = by_group->Next()) != nullptr;) {
      uint32_t g;
      std::memcpy(&g, r, 4);
      if (static_cast<int64_t>(g) != cur) {
        if (in_batch == threads) VECTORD_RETURN_IF_ERROR(run_batch());
        cur = g;
        batch[in_batch].g = g;
        batch[in_batch].x.clear();
        ++in_batch;
      }
      std::vector<float>& x = batch[in_batch - 1].x;
      x.resize(x.size() + dim);
      index::RowsToFloat(r + 8, 1, dim, dtype, x.data() + x.size() - dim);
      max_group_rows = std::max(max_group_rows, x.size() / dim);
    }
    if (in_batch > 0) VECTORD_RETURN_IF_ERROR(run_batch());
  }
  const size_t ram_group_sort = by_group->MemoryBytes();
  by_group.reset();  // its spill files go
  if (km.k() == 0) return Status::Internal("SPANN build: clustering produced no centroids");
  st.seconds_kmeans = Since(t);
  const uint32_t lists = km.k();
  st.lists = lists;

  // (c) Navigation structure. Half centroids are rounded first, so that assignment, residual PQ
  // and search all see the centroids the index keeps.
  t = Clock::now();
  const index::CentroidPrecision precision = p.navigation == index::CentroidIndexKind::kHnsw
                                                 ? index::CentroidPrecision::kF32
                                                 : p.centroid_precision;
  if (precision == index::CentroidPrecision::kF16) {
    for (float& x : km.centroids) x = index::HalfToFloat(index::FloatToHalf(x));
  }
  SpannMeta meta;
  meta.dim = dim;
  meta.dtype = dtype;
  meta.metric = p.metric;
  meta.layout = p.layout;
  meta.residual = pq;
  meta.rows = n;
  VECTORD_ASSIGN_OR_RETURN(
      meta.centroids, index::CentroidIndex::Build(p.navigation, km.centroids.data(), lists, dim,
                                                  km.group, km.group_centroids));
  st.seconds_navigation = Since(t);
  // Clustering RAM: the top-level sample, the group sort (its buffer), one chunk as read and as
  // floats, the groups in flight (at most `threads`, each up to the largest group), the centroids
  // and their navigation copy. Nothing here grows with N but through C.
  const size_t ram_cluster = sample.size() * 4 + ram_group_sort +
                             size_t{p.chunk_rows} * (row_bytes + size_t{dim} * 4 + 8) +
                             size_t{threads} * max_group_rows * dim * 4 * 2 +
                             km.centroids.size() * 4 * 2;
  km = index::KMeansResult();

  // (d) PQ on residuals of (at most 65536) sample rows to their nearest centroid.
  t = Clock::now();
  if (pq) {
    // 4-bit codebooks (16 centroids per subspace) need far fewer training rows than 8-bit ones.
    const size_t pp_train_rows = p.layout == index::PostingLayout::kPq4 ? 32768 : 65536;
    const size_t tn = std::min<size_t>(top_rows, pp_train_rows);
    std::vector<float> train(tn * dim);
    std::vector<uint32_t> label(tn);
    const std::vector<float> all_cents = meta.centroids->DecodeAll();
    const float* cents = all_cents.data();
    VECTORD_RETURN_IF_ERROR(
        index::AssignNearest(sample.data(), tn, cents, lists, dim, label.data(), nullptr, threads));
    for (size_t i = 0; i < tn; ++i) {
      for (uint32_t j = 0; j < dim; ++j) {
        train[i * dim + j] = sample[i * dim + j] - cents[size_t{label[i]} * dim + j];
      }
    }
    index::PqParams pp;
    pp.dim = dim;
    pp.m = m;
    pp.nbits = p.layout == index::PostingLayout::kPq4 ? 4 : 8;
    VECTORD_ASSIGN_OR_RETURN(auto trained,
                             index::ProductQuantizer::Train(pp, train.data(), tn, p.seed, 1));
    meta.pq = std::make_unique<index::ProductQuantizer>(std::move(trained));
  }
  st.seconds_pq = Since(t);
  std::vector<float>().swap(sample);

  // (e) Assignment pass over all rows, into sorted runs.
  t = Clock::now();
  const size_t rec = 8 + code_bytes;
  const size_t run_cap = std::max<size_t>(1024, p.sort_buffer_bytes / (rec + 16));
  std::vector<uint8_t> run;
  size_t run_n = 0;
  std::vector<std::pair<uint64_t, uint32_t>> keys;
  std::vector<std::string> run_paths;
  const uint32_t max_rep = std::max<uint32_t>(1, std::min<uint32_t>(p.assign.max_replicas, 8));
  const uint32_t ncand = std::max(p.assign_candidates, max_rep);
  // Per-thread sort buffers (run_cap records in all): each worker appends its rows' records to
  // its own buffer and, when it is full, sorts it and writes it as a run itself, so building the
  // runs runs on every thread (runs are merged by (list, row) below: the same file either way).
  const size_t trun_cap = std::max<size_t>(256, run_cap / threads);
  std::vector<std::vector<uint8_t>> trun(threads);
  std::vector<size_t> trun_n(threads, 0);
  std::vector<uint64_t> trun_entries(threads, 0);
  std::vector<Status> trun_status(threads);
  std::mutex run_mu;  // run_paths
  std::vector<std::vector<uint32_t>> thread_hits(threads, std::vector<uint32_t>(lists, 0));
  std::vector<uint8_t> chunk;
  index::CentroidSearchParams csp;
  csp.tree_groups = 8;  // assignment wants the true nearest lists: search wider than queries do
  csp.ef = 96;
  // Tree navigation: rows are searched a chunk at a time by the blocked batch search (the same
  // lists, computed group by group while each group's centroids are in cache); other kinds row by
  // row.
  std::unique_ptr<index::BatchTreeSearch> batch;
  if (index::BatchTreeSearch::Supports(*meta.centroids)) {
    batch = std::make_unique<index::BatchTreeSearch>(*meta.centroids);
  }
  std::vector<float> chunk_f;
  std::vector<index::CentroidHit> chunk_hits;
  std::vector<uint32_t> chunk_nhits;
  // Packed centroid copy, search scratch, the chunk as floats and its lists (docs/spann.md).
  const size_t ram_batch =
      !batch ? 0
             : batch->MemoryBytes() +
                   index::BatchTreeSearch::ScratchBytes(p.chunk_rows, ncand, csp.tree_groups) +
                   size_t{p.chunk_rows} * (dim * 4 + ncand * 8 + 4);

  auto sort_run = [&]() {
    keys.resize(run_n);
    for (size_t i = 0; i < run_n; ++i)
      keys[i] = {RecordKey(&run[i * rec]), static_cast<uint32_t>(i)};
    std::sort(keys.begin(), keys.end());
  };
  // Sorts `cnt` records at `buf` by (list, row) and writes them as one run file. Thread-safe.
  auto write_run = [&](const uint8_t* buf, size_t cnt) -> Status {
    std::string path;
    {
      std::lock_guard<std::mutex> l(run_mu);
      path = dir + "/spann_sort." + std::to_string(run_paths.size()) + ".tmp";
      run_paths.push_back(path);
    }
    return WriteSortedRun(buf, cnt, rec, path);
  };

  for (uint64_t first = 0; first < n; first += p.chunk_rows) {
    const uint64_t cnt = std::min<uint64_t>(p.chunk_rows, n - first);
    chunk.resize(cnt * row_bytes);
    VECTORD_RETURN_IF_ERROR(src.Read(first, cnt, chunk.data()));
    if (batch) {
      constexpr size_t kConvert = 1024;
      chunk_f.resize(cnt * dim);
      parallel_for((cnt + kConvert - 1) / kConvert, [&](size_t b) {
        index::RowsToFloat(chunk.data() + b * kConvert * row_bytes,
                           std::min<size_t>(kConvert, cnt - b * kConvert), dim, dtype,
                           chunk_f.data() + b * kConvert * dim);
      });
      batch->Search(chunk_f.data(), cnt, ncand, csp.tree_groups, parallel_for, &chunk_hits,
                    &chunk_nhits);
    }
    auto work = [&](unsigned ti) {
      std::vector<float> x(dim), resid(dim);
      std::vector<index::CentroidHit> hits;
      uint32_t chosen[8];
      std::vector<uint8_t>& out = trun[ti];
      if (out.size() != trun_cap * rec) out.resize(trun_cap * rec);
      size_t on = trun_n[ti];
      std::vector<uint32_t>& hc = thread_hits[ti];
      const uint64_t b = cnt * ti / threads, e = cnt * (ti + 1) / threads;
      index::AssignParams ap = p.assign;
      ap.max_replicas = max_rep;
      for (uint64_t i = b; i < e; ++i) {
        const uint8_t* raw = chunk.data() + i * row_bytes;
        const float* xr;
        const index::CentroidHit* hp;
        uint32_t nh;
        if (batch) {
          xr = chunk_f.data() + i * dim;
          hp = chunk_hits.data() + i * ncand;
          nh = chunk_nhits[i];
        } else {
          index::RowsToFloat(raw, 1, dim, dtype, x.data());
          meta.centroids->Search(x.data(), ncand, csp, &hits);
          xr = x.data();
          hp = hits.data();
          nh = static_cast<uint32_t>(hits.size());
        }
        for (uint32_t h = 0; h < nh && h < 8; ++h) hc[hp[h].id]++;
        const uint32_t nc = index::SelectReplicas(hp, nh, *meta.centroids, ap, chosen);
        const uint32_t row = static_cast<uint32_t>(first + i);
        if (on + nc > trun_cap) {
          trun_status[ti] = write_run(out.data(), on);
          on = 0;
          if (!trun_status[ti].ok()) break;
        }
        trun_entries[ti] += nc;
        for (uint32_t c = 0; c < nc; ++c) {
          const size_t at = (on++) * rec;
          std::memcpy(&out[at], &chosen[c], 4);
          std::memcpy(&out[at + 4], &row, 4);
          if (!pq) {
            std::memcpy(&out[at + 8], raw, row_bytes);
          } else {
            const float* cent = meta.centroids->centroid(chosen[c]);
            for (uint32_t j = 0; j < dim; ++j) resid[j] = xr[j] - cent[j];
            meta.pq->Encode(resid.data(), 1, &out[at + 8]);
          }
        }
      }
      trun_n[ti] = on;
    };
    parallel_for(threads, [&](size_t ti) { work(static_cast<unsigned>(ti)); });
    for (unsigned ti = 0; ti < threads; ++ti) VECTORD_RETURN_IF_ERROR(trun_status[ti]);
    if (progress) progress(first + cnt, n);
    if (p.cancel && p.cancel->load()) return Status::Unavailable("index build cancelled");
  }
  // The records left in the thread buffers: more runs, or (nothing spilled) the one in-memory run.
  for (unsigned ti = 0; ti < threads; ++ti) st.entries += trun_entries[ti];
  if (!run_paths.empty()) {
    parallel_for(threads, [&](size_t ti) {
      if (trun_n[ti] > 0) trun_status[ti] = write_run(trun[ti].data(), trun_n[ti]);
      std::vector<uint8_t>().swap(trun[ti]);
    });
    for (unsigned ti = 0; ti < threads; ++ti) VECTORD_RETURN_IF_ERROR(trun_status[ti]);
  } else {
    run.resize(st.entries * rec);
    for (unsigned ti = 0; ti < threads; ++ti) {
      std::memcpy(run.data() + run_n * rec, trun[ti].data(), trun_n[ti] * rec);
      run_n += trun_n[ti];
      std::vector<uint8_t>().swap(trun[ti]);
    }
  }
  meta.list_hits.assign(lists, 0);
  for (const auto& hc : thread_hits) {
    for (uint32_t l = 0; l < lists; ++l) meta.list_hits[l] += hc[l];
  }
  st.seconds_assign = Since(t);

  // (f) Merge runs by (list, row) and write the posting file.
  t = Clock::now();
  const std::string post_path = dir + "/" + kSpannPostingFile;
  VECTORD_ASSIGN_OR_RETURN(auto writer,
                           storage::PostingFileWriter::Create(post_path, lists, code_bytes,
                                                              static_cast<uint32_t>(p.layout), ""));
  ListWriter lw(writer.get(), codec, lists);
  Status ws;
  if (run_paths.empty()) {
    sort_run();
    for (const auto& k : keys) {
      ws = lw.Add(&run[size_t{k.second} * rec]);
      if (!ws.ok()) break;
    }
  } else {
    std::vector<uint8_t>().swap(run);
    std::vector<std::pair<uint64_t, uint32_t>>().swap(keys);
    {
      RunMerger merger;
      ws = merger.Open(run_paths, rec, p.sort_buffer_bytes / 2);
      for (const uint8_t* r; ws.ok() && (r = merger.Next()) != nullptr;) ws = lw.Add(r);
    }
    for (const auto& path : run_paths) std::remove(path.c_str());
  }
  st.sort_runs = run_paths.size();
  if (ws.ok()) ws = lw.Flush();
  VECTORD_RETURN_IF_ERROR(ws.WithContext("SPANN build '" + dir + "'"));
  VECTORD_RETURN_IF_ERROR(writer->Finish());
  st.posting_file_bytes = writer->bytes_written();
  st.posting_pages = lw.pages();

  // List statistics.
  std::vector<uint32_t> counts = lw.counts();
  std::sort(counts.begin(), counts.end());
  st.rows = n;
  st.list_min = counts.front();
  st.list_max = counts.back();
  st.list_p99 = counts[std::min<size_t>(counts.size() - 1, counts.size() * 99 / 100)];
  st.list_mean = static_cast<double>(st.entries) / lists;
  st.avg_replicas = static_cast<double>(st.entries) / n;

  // Build RAM formula: max(clustering phase, assignment phase); docs/spann.md "Build RAM".
  const size_t ram_assign = meta.centroids->MemoryBytes() +
                            (meta.pq ? meta.pq->centroids().size() * 4 : 0) +
                            size_t{threads} * lists * 4 +       // probe counters
                            size_t{p.chunk_rows} * row_bytes +  // the chunk read
                            // per-thread sort buffers + their keys + run-write blocks
                            run_cap * (rec + 16) + size_t{threads} * (1u << 20) +
                            size_t{lists} * 16;  // posting directory
  st.ram_formula_bytes = std::max(ram_cluster, ram_assign + ram_batch);

  st.seconds_write = Since(t);

  // (g) Row codes for the filtered code scan (src/row_codes.h).
  t = Clock::now();
  const std::string codes_path = dir + "/" + kRowCodesFile;
  std::remove(codes_path.c_str());
  if (const uint32_t cm = RowCodeSubquantizers(dim, p.row_code_bytes); cm != 0 && n >= 256) {
    VECTORD_ASSIGN_OR_RETURN(auto codes,
                             RowCodes::Build(src, p.metric, cm, p.seed, threads, p.cancel));
    VECTORD_RETURN_IF_ERROR(codes->Write(codes_path));
    struct stat cs;
    if (::stat(codes_path.c_str(), &cs) == 0) st.row_code_file_bytes = cs.st_size;
    st.row_code_bytes = cm;
    // This phase holds every row's code (what the index keeps resident when serving) plus one
    // chunk per thread as read and as floats.
    st.ram_formula_bytes = std::max<uint64_t>(
        st.ram_formula_bytes, n * cm + uint64_t{threads} * 8192 * (row_bytes + size_t{dim} * 4));
  }
  st.seconds_row_codes = Since(t);

  nlohmann::json info = {{"layout", index::PostingLayoutName(p.layout)},
                         {"pq_m", m},
                         {"navigation", index::CentroidIndexKindName(p.navigation)},
                         {"centroid_precision", index::CentroidPrecisionName(precision)},
                         {"target_list_entries", target},
                         {"max_list_entries", max_list},
                         {"closure_eps", p.assign.closure_eps},
                         {"rng_factor", p.assign.rng_factor},
                         {"max_replicas", max_rep},
                         {"assign_candidates", ncand},
                         {"seed", p.seed}};
  st.seconds_total = Since(t_start);
  st.peak_rss_bytes = PeakRssBytes();
  info["stats"] = nlohmann::json::parse(st.ToJson());
  meta.build_info = info.dump();
  VECTORD_RETURN_IF_ERROR(meta.centroids->SetPrecision(precision));
  VECTORD_RETURN_IF_ERROR(WriteSpannMeta(dir, meta));
  struct stat sb;
  if (::stat((dir + "/" + kSpannCentroidFile).c_str(), &sb) == 0) {
    st.centroid_file_bytes = static_cast<uint64_t>(sb.st_size);
  }
  return st;
}

}  // namespace vectord
