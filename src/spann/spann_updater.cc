// The living SPANN index's updater (spann_updater.h; docs/spann.md "Living index").
#include "src/spann/spann_updater.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "index/distance.h"
#include "index/posting_codec.h"
#include "storage/posting_store.h"
#include "storage/record_log.h"
#include "storage/vector_file.h"

namespace vectord {
namespace {

double ThreadCpuSeconds() {
  timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

float L2(const float* a, const float* b, uint32_t dim) { return index::L2SqrF32(a, b, dim); }

// Balanced 2-means of n vectors (x: n x dim): the two centroids from balanced iterations (each
// gives the lower half of d(x, c0) - d(x, c1) to c0), then labels[i] in {0, 1}: the nearer one.
// Seeds: the point farthest from the mean and the point farthest from it; deterministic.
void BalancedTwoMeans(const float* x, uint32_t n, uint32_t dim, std::vector<uint8_t>* labels,
                      std::vector<float>* c0, std::vector<float>* c1) {
  std::vector<float> mean(dim, 0.0f);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t d = 0; d < dim; ++d) mean[d] += x[size_t{i} * dim + d];
  }
  for (float& v : mean) v /= static_cast<float>(n);
  auto farthest = [&](const float* from) {
    uint32_t best = 0;
    float bd = -1;
    for (uint32_t i = 0; i < n; ++i) {
      const float d = L2(from, x + size_t{i} * dim, dim);
      if (d > bd) {
        bd = d;
        best = i;
      }
    }
    return best;
  };
  const uint32_t a = farthest(mean.data());
  const uint32_t b = farthest(x + size_t{a} * dim);
  c0->assign(x + size_t{a} * dim, x + size_t{a + 1} * dim);
  c1->assign(x + size_t{b} * dim, x + size_t{b + 1} * dim);
  labels->assign(n, 0);
  std::vector<std::pair<float, uint32_t>> order(n);
  for (int iter = 0; iter < 8; ++iter) {
    for (uint32_t i = 0; i < n; ++i) {
      const float* xi = x + size_t{i} * dim;
      order[i] = {L2(xi, c0->data(), dim) - L2(xi, c1->data(), dim), i};
    }
    std::sort(order.begin(), order.end());
    bool changed = false;
    for (uint32_t j = 0; j < n; ++j) {
      const uint8_t lab = j < n / 2 ? 0 : 1;
      if ((*labels)[order[j].second] != lab) changed = true;
      (*labels)[order[j].second] = lab;
    }
    std::vector<float> s0(dim, 0.0f), s1(dim, 0.0f);
    uint32_t n0 = 0, n1 = 0;
    for (uint32_t i = 0; i < n; ++i) {
      std::vector<float>& s = (*labels)[i] == 0 ? s0 : s1;
      for (uint32_t d = 0; d < dim; ++d) s[d] += x[size_t{i} * dim + d];
      ((*labels)[i] == 0 ? n0 : n1)++;
    }
    for (uint32_t d = 0; d < dim; ++d) {
      (*c0)[d] = s0[d] / static_cast<float>(std::max(1u, n0));
      (*c1)[d] = s1[d] / static_cast<float>(std::max(1u, n1));
    }
    if (!changed && iter > 0) break;
  }
  // Each vector then goes to its nearer centroid, unless that leaves a side with less than a
  // quarter: the balanced cut is for the centroids, forcing vectors across it would only make
  // them candidates for reassignment (LIRE) right away.
  std::vector<uint8_t> nearest(n);
  uint32_t ones = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const float* xi = x + size_t{i} * dim;
    nearest[i] = L2(xi, c1->data(), dim) < L2(xi, c0->data(), dim) ? 1 : 0;
    ones += nearest[i];
  }
  if (ones >= n / 4 && n - ones >= n / 4) labels->swap(nearest);
}

}  // namespace

// One cycle's state.
struct SpannUpdater::Work {
  const Locks* locks = nullptr;
  uint64_t durable = 0;                  // rows in lists before the cycle
  uint64_t assigned = 0;                 // rows durable after it
  std::vector<uint8_t> pending_vectors;  // rows [durable, assigned)
  std::vector<uint8_t> versions;         // every row's version at the cycle's start (< assigned)
  Roaring live;
  std::shared_ptr<const index::CentroidIndex> nav;  // with the cycle's edits so far
  std::vector<storage::PostingListInfo> dir;        // with the cycle's writes so far
  // New entries per list: the pending rows, then the rows reassigned in this cycle.
  std::unordered_map<uint32_t, std::vector<Entry>> add;
  std::unordered_map<uint32_t, uint8_t> bumps;  // rows reassigned: their new version
  // Stored bytes of the rows reassigned in this cycle (rows below `durable`).
  std::unordered_map<uint32_t, std::vector<uint8_t>> extra;
  SpannEdit edit;
  std::vector<storage::PostingListInfo> freed;  // old extents, free once the edit is durable
  std::unordered_set<uint32_t> written, removed;
  Roaring sweep;                                             // lists the sweep checks in this cycle
  std::vector<std::pair<uint32_t, uint32_t>> next_reassign;  // (row, the list it was seen in)
  std::vector<uint32_t> next_merge;
  std::vector<uint32_t> freed_ids;  // list ids removed in this cycle
  // Lists that must be written in this cycle (they receive reassigned rows: the new versions
  // commit with their entries); the others with pending entries may wait for a later cycle.
  std::unordered_set<uint32_t> must;
  uint64_t next_durable = 0;  // rows durable after the cycle
  CycleStats stats;

  // The row's version in this cycle; rows without one (a crashed run's entries) never match.
  int Version(uint32_t row) const {
    if (!bumps.empty()) {
      auto it = bumps.find(row);
      if (it != bumps.end()) return it->second;
    }
    return row < versions.size() ? versions[row] : -1;
  }
  const uint8_t* Bytes(uint32_t row, size_t record_bytes) const {
    if (row >= durable) return pending_vectors.data() + (row - durable) * record_bytes;
    auto it = extra.find(row);
    return it == extra.end() ? nullptr : it->second.data();
  }
};

SpannUpdater::SpannUpdater(SpannIndex* index, const SpannUpdateParams& params)
    : index_(index), params_(params) {
  const SpannMeta& m = index->meta_;
  dim_ = m.dim;
  record_bytes_ = size_t{m.dim} * DataTypeSize(m.dtype);
  ip_ = m.metric != Distance::kEuclid;
  // The build's target list size (its build_info), else the lists' mean size now.
  double target = 0;
  const Json info = Json::parse(m.build_info, nullptr, false);
  if (info.is_object()) target = info.value("target_list_entries", 0.0);
  if (target <= 0) target = std::max(1.0, index->MeanListEntries());
  if (params_.split_entries == 0) {
    params_.split_entries = std::max<uint32_t>(8, static_cast<uint32_t>(std::ceil(1.5 * target)));
  }
  if (params_.merge_entries == 0) {
    params_.merge_entries = std::max<uint32_t>(1, static_cast<uint32_t>(target / 4));
  }
  params_.merge_entries = std::min(params_.merge_entries, params_.split_entries / 4);
  const auto& nav = *index->nav_;
  for (uint32_t id = 0; id < nav.size(); ++id) {
    if (!nav.alive(id)) free_ids_.push_back(id);
  }
  std::reverse(free_ids_.begin(), free_ids_.end());  // pop_back gives the lowest first
}

SpannUpdater::~SpannUpdater() = default;

uint32_t SpannUpdater::AssignRow(const index::CentroidIndex& nav, const float* x, uint32_t* out,
                                 uint32_t exclude) const {
  std::vector<index::CentroidHit> hits;
  nav.Search(x, params_.assign_candidates + (exclude != kNoList ? 1 : 0), {}, &hits);
  if (exclude != kNoList) {
    hits.erase(std::remove_if(hits.begin(), hits.end(),
                              [&](const index::CentroidHit& h) { return h.id == exclude; }),
               hits.end());
  }
  if (hits.empty()) return 0;
  // SPANN's closure + RNG rules (index/spann_assign.h), on decoded centroids (the navigation may
  // keep them as half floats).
  const index::AssignParams& p = params_.assign;
  const float slack = (1.0f + p.closure_eps) * (1.0f + p.closure_eps);
  const float limit = hits[0].dist * slack;
  const float f2 = p.rng_factor * p.rng_factor;
  // The chosen centroids are decoded once; a candidate is compared with them as stored.
  thread_local std::vector<float> chosen_vecs;
  chosen_vecs.resize(size_t{p.max_replicas} * dim_);
  uint32_t chosen = 0;
  out[chosen] = hits[0].id;
  nav.Decode(hits[0].id, chosen_vecs.data());
  ++chosen;
  for (size_t j = 1; j < hits.size() && chosen < p.max_replicas; ++j) {
    if (hits[j].dist > limit) break;
    bool keep = true;
    for (uint32_t i = 0; i < chosen && keep && f2 > 0; ++i) {
      if (f2 * nav.L2(chosen_vecs.data() + size_t{i} * dim_, hits[j].id) < hits[j].dist) {
        keep = false;
      }
    }
    if (keep) {
      out[chosen] = hits[j].id;
      nav.Decode(hits[j].id, chosen_vecs.data() + size_t{chosen} * dim_);
      ++chosen;
    }
  }
  return chosen;
}

SpannUpdater::Assignment SpannUpdater::Assign(
    uint64_t first, uint64_t n, const uint8_t* vectors,
    std::shared_ptr<const index::CentroidIndex> nav) const {
  const double cpu0 = ThreadCpuSeconds();
  Assignment a;
  a.first = first;
  a.n = n;
  a.vectors.assign(vectors, vectors + n * record_bytes_);
  const uint32_t r = params_.assign.max_replicas;
  a.lists.assign(n * r, kNoList);
  std::vector<float> x(dim_);
  for (uint64_t i = 0; i < n; ++i) {
    index::RowsToFloat(vectors + i * record_bytes_, 1, dim_, index_->meta_.dtype, x.data());
    AssignRow(*nav, x.data(), a.lists.data() + i * r);
  }
  a.nav = std::move(nav);
  a.cpu_seconds = ThreadCpuSeconds() - cpu0;
  return a;
}

Status SpannUpdater::ApplyAssignment(Assignment a) {
  SpannIndex& idx = *index_;
  if (a.first != idx.assigned_rows_) {
    return Status::Internal("SPANN updater: assignment of rows from " + std::to_string(a.first) +
                            ", the index covers " + std::to_string(idx.assigned_rows_));
  }
  const uint32_t r = params_.assign.max_replicas;
  const bool same_nav = a.nav == idx.nav_;
  std::vector<float> x(dim_);
  for (uint64_t i = 0; i < a.n; ++i) {
    uint32_t* lists = a.lists.data() + i * r;
    bool ok = true;
    for (uint32_t j = 0; j < r && lists[j] != kNoList && !same_nav; ++j) {
      if (!idx.nav_->alive(lists[j])) ok = false;
    }
    if (!ok) {
      // A list was split or merged since: the row's lists over the current centroids.
      std::fill(lists, lists + r, kNoList);
      index::RowsToFloat(a.vectors.data() + i * record_bytes_, 1, dim_, idx.meta_.dtype, x.data());
      AssignRow(*idx.nav_, x.data(), lists);
    }
    const uint32_t row = static_cast<uint32_t>(a.first + i);
    for (uint32_t j = 0; j < r && lists[j] != kNoList; ++j) {
      idx.pending_[lists[j]].push_back(row);
      idx.pending_entries_++;
    }
  }
  idx.pending_vectors_.append(a.vectors.data(), a.vectors.size());
  idx.assigned_rows_ += a.n;
  idx.versions_.resize(idx.assigned_rows_, idx.assign_version_);
  idx.live_.cpu_seconds += a.cpu_seconds;
  idx.vec_file_bytes_ = std::max(
      idx.vec_file_bytes_,
      storage::VectorFile::RecordOffset(idx.assigned_rows_, static_cast<uint32_t>(record_bytes_)));
  if (RowCodes* codes = idx.row_codes_owned_.get(); codes != nullptr && codes->rows() == a.first) {
    codes->Append(a.vectors.data(), a.n, idx.meta_.dtype);
  }
  return Status::OK();
}

bool SpannUpdater::CycleDue() const {
  const SpannIndex& idx = *index_;
  if (idx.pending_entries_ > 0 || !reassign_queue_.empty() || !merge_queue_.empty()) return true;
  const double entries = std::max<double>(1, static_cast<double>(idx.live_.list_entries));
  return sweeping_ ||
         static_cast<double>(deleted_since_sweep_.load() * params_.assign.max_replicas / 2 +
                             stale_since_sweep_) > params_.gc_share * entries;
}

uint32_t SpannUpdater::NewListId(Work* w) {
  if (!free_ids_.empty()) {
    const uint32_t id = free_ids_.back();
    free_ids_.pop_back();
    return id;
  }
  // Never-used ids in order: the navigation's id space end, past those this cycle took.
  return w->nav->size();
}

Status SpannUpdater::RowVectors(Work* w, const std::vector<uint32_t>& rows, std::vector<float>* x) {
  const size_t base = x->size();
  x->resize(base + rows.size() * dim_);
  float* dst = x->data() + base;
  std::vector<uint32_t> from_file;
  std::vector<size_t> slot;
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint8_t* b = w->Bytes(rows[i], record_bytes_);
    if (b != nullptr) {
      index::RowsToFloat(b, 1, dim_, index_->meta_.dtype, dst + i * dim_);
    } else {
      from_file.push_back(rows[i]);
      slot.push_back(i);
    }
  }
  if (from_file.empty()) return Status::OK();
  std::vector<uint32_t> sorted = from_file;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<uint8_t> bytes(sorted.size() * record_bytes_);
  VECTORD_RETURN_IF_ERROR(index_->ReadRows(sorted, bytes.data(), nullptr));
  for (size_t i = 0; i < from_file.size(); ++i) {
    const size_t pos =
        std::lower_bound(sorted.begin(), sorted.end(), from_file[i]) - sorted.begin();
    index::RowsToFloat(bytes.data() + pos * record_bytes_, 1, dim_, index_->meta_.dtype,
                       dst + slot[i] * dim_);
  }
  return Status::OK();
}

Status SpannUpdater::ReadLists(Work* w, const std::vector<uint32_t>& lists, bool want_x,
                               std::vector<ListContent>* out) {
  const SpannIndex& idx = *index_;
  const index::PostingCodec& codec = *idx.codec_;
  const bool full = idx.meta_.layout == index::PostingLayout::kFull;
  const size_t eb = codec.entry_bytes();
  out->assign(lists.size(), ListContent());
  std::vector<uint8_t> payload;
  for (size_t i = 0; i < lists.size(); ++i) {
    const uint32_t l = lists[i];
    const storage::PostingListInfo& info = w->dir[l];
    if (info.count == 0) continue;
    VECTORD_RETURN_IF_ERROR(idx.store_->ReadList(l, info, &payload));
    index::PostingView v;
    VECTORD_RETURN_IF_ERROR(codec.View(payload.data(), payload.size(), l, &v));
    ListContent& c = (*out)[i];
    c.entries.reserve(v.count);
    c.codes.reserve(size_t{v.count} * eb);
    std::vector<uint32_t> rows;
    for (uint32_t e = 0; e < v.count; ++e) {
      const uint32_t row = v.id(e);
      if (!w->live.contains(row) || v.version(e) != w->Version(row)) {
        c.invalid++;
        continue;
      }
      c.entries.push_back({row, v.version(e)});
      const size_t at = c.codes.size();
      c.codes.resize(at + eb);
      codec.EntryCode(v, e, c.codes.data() + at);
      rows.push_back(row);
    }
    if (want_x) {
      if (full) {
        c.x.resize(c.entries.size() * dim_);
        index::RowsToFloat(c.codes.data(), c.entries.size(), dim_, idx.meta_.dtype, c.x.data());
      } else {
        VECTORD_RETURN_IF_ERROR(RowVectors(w, rows, &c.x));
      }
    }
  }
  return Status::OK();
}

void SpannUpdater::EncodeFor(Work* w, uint32_t list, const float* x, const uint8_t* const* raw,
                             size_t n, uint8_t* codes) const {
  const SpannIndex& idx = *index_;
  const size_t eb = idx.codec_->entry_bytes();
  if (idx.meta_.layout == index::PostingLayout::kFull) {
    for (size_t i = 0; i < n; ++i) std::memcpy(codes + i * eb, raw[i], record_bytes_);
    return;
  }
  // Residual PQ codes against the list's centroid as stored (the search decodes the same).
  std::vector<float> cent(dim_), res(dim_);
  w->nav->Decode(list, cent.data());
  for (size_t i = 0; i < n; ++i) {
    const float* xi = x + i * dim_;
    for (uint32_t d = 0; d < dim_; ++d) res[d] = xi[d] - cent[d];
    idx.meta_.pq->Encode(res.data(), 1, codes + i * eb);
  }
}

Status SpannUpdater::WriteOne(Work* w, uint32_t list, const ListContent& c) {
  const SpannIndex& idx = *index_;
  const uint32_t n = static_cast<uint32_t>(c.entries.size());
  std::vector<uint32_t> ids(n);
  std::vector<uint8_t> versions(n);
  for (uint32_t i = 0; i < n; ++i) {
    ids[i] = c.entries[i].row;
    versions[i] = c.entries[i].version;
  }
  std::vector<uint8_t> payload;
  idx.codec_->Encode(ids.data(), c.codes.data(), n, &payload, versions.data());
  VECTORD_ASSIGN_OR_RETURN(
      storage::PostingListInfo ext,
      idx.store_->WriteList(list, payload.data(), static_cast<uint32_t>(payload.size()), n));
  if (w->dir[list].pages > 0) w->freed.push_back(w->dir[list]);
  w->dir[list] = ext;
  w->edit.lists.emplace_back(list, ext);
  w->written.insert(list);
  w->stats.lists_written++;
  w->stats.bytes_written += uint64_t{ext.pages} * storage::kPostingPageBytes;
  return Status::OK();
}

Status SpannUpdater::SplitList(Work* w, uint32_t list, ListContent c) {
  const uint32_t n = static_cast<uint32_t>(c.entries.size());
  const size_t eb = index_->codec_->entry_bytes();
  const bool full = index_->meta_.layout == index::PostingLayout::kFull;
  std::vector<uint8_t> labels;
  std::vector<float> c0, c1, old(dim_);
  BalancedTwoMeans(c.x.data(), n, dim_, &labels, &c0, &c1);
  w->nav->Decode(list, old.data());
  // The two halves replace the list in the navigation.
  index::CentroidEdits ce;
  ce.removed = {list};
  const uint32_t a = NewListId(w);
  const uint32_t b = a == w->nav->size() ? a + 1 : NewListId(w);
  ce.added_ids = {a, b};
  ce.added = c0;
  ce.added.insert(ce.added.end(), c1.begin(), c1.end());
  VECTORD_ASSIGN_OR_RETURN(w->nav, w->nav->WithEdits(ce));
  w->edit.nav.push_back({ce.removed, ce.added_ids, ce.added});
  if (w->dir.size() < w->nav->size()) w->dir.resize(w->nav->size());
  if (w->dir[list].pages > 0) w->freed.push_back(w->dir[list]);
  w->dir[list] = storage::PostingListInfo();
  w->edit.lists.emplace_back(list, storage::PostingListInfo());
  w->removed.insert(list);
  w->written.insert(list);
  w->freed_ids.push_back(list);  // reusable from the next cycle on
  ListContent half[2];
  for (uint32_t i = 0; i < n; ++i) {
    ListContent& h = half[labels[i]];
    h.entries.push_back(c.entries[i]);
    h.x.insert(h.x.end(), c.x.begin() + size_t{i} * dim_, c.x.begin() + size_t{i + 1} * dim_);
    // Full layout: the rows' bytes move as they are; PQ codes are made again for the new centroid.
    if (full) {
      h.codes.insert(h.codes.end(), c.codes.begin() + size_t{i} * eb,
                     c.codes.begin() + size_t{i + 1} * eb);
    }
  }
  const uint32_t ids[2] = {a, b};
  const std::vector<float>* cs[2] = {&c0, &c1};
  w->stats.splits++;
  for (int h = 0; h < 2; ++h) {
    // LIRE, the split list's own rows: one now farther from its new centroid than it was from the
    // old one may belong to another list.
    for (size_t i = 0; i < half[h].entries.size(); ++i) {
      const float* xi = half[h].x.data() + i * dim_;
      if (L2(xi, cs[h]->data(), dim_) > L2(xi, old.data(), dim_)) {
        w->next_reassign.push_back({half[h].entries[i].row, ids[h]});
      }
    }
  }
  VECTORD_RETURN_IF_ERROR(CheckNeighbours(w, list, old.data(), {a, b}));
  for (int h = 0; h < 2; ++h) {
    if (half[h].entries.size() > params_.split_entries && half[h].entries.size() >= 4) {
      // Still too large (a dense new region): split again until every list is within bounds.
      VECTORD_RETURN_IF_ERROR(SplitList(w, ids[h], std::move(half[h])));
      continue;
    }
    if (!full) {
      half[h].codes.resize(half[h].entries.size() * eb);
      EncodeFor(w, ids[h], half[h].x.data(), nullptr, half[h].entries.size(), half[h].codes.data());
    }
    VECTORD_RETURN_IF_ERROR(WriteOne(w, ids[h], half[h]));
  }
  return Status::OK();
}

Status SpannUpdater::CheckNeighbours(Work* w, uint32_t old_list, const float* old_centroid,
                                     const std::vector<uint32_t>& new_lists) {
  // LIRE, the neighbours: a row of a nearby list is nearer one of the new centroids than its own
  // list's centroid -> checked for reassignment in the next cycle.
  std::vector<index::CentroidHit> hits;
  w->nav->Search(old_centroid, params_.reassign_neighbors + 2, {}, &hits);
  std::vector<uint32_t> neigh;
  for (const auto& h : hits) {
    if (std::find(new_lists.begin(), new_lists.end(), h.id) == new_lists.end() &&
        h.id != old_list && neigh.size() < params_.reassign_neighbors) {
      neigh.push_back(h.id);
    }
  }
  if (neigh.empty()) return Status::OK();
  std::vector<ListContent> content;
  VECTORD_RETURN_IF_ERROR(ReadLists(w, neigh, /*want_x=*/true, &content));
  std::vector<std::vector<float>> nc(new_lists.size(), std::vector<float>(dim_));
  for (size_t j = 0; j < new_lists.size(); ++j) w->nav->Decode(new_lists[j], nc[j].data());
  std::vector<float> own(dim_);
  for (size_t i = 0; i < neigh.size(); ++i) {
    w->nav->Decode(neigh[i], own.data());
    for (size_t e = 0; e < content[i].entries.size(); ++e) {
      const float* xe = content[i].x.data() + e * dim_;
      const float d_own = L2(xe, own.data(), dim_);
      for (const auto& c : nc) {
        if (L2(xe, c.data(), dim_) < d_own) {
          w->next_reassign.push_back({content[i].entries[e].row, neigh[i]});
          break;
        }
      }
    }
  }
  return Status::OK();
}

Status SpannUpdater::ProcessMerges(Work* w) {
  // Lists found small in the last cycle: removed, their rows reassigned (with a new version, so
  // their replicas elsewhere go stale) in this one — both in this cycle's record.
  std::vector<uint32_t> lists, queued;
  {
    auto g = w->locks->shared();  // CycleDue reads the queue under the shared lock
    queued = std::move(merge_queue_);
    merge_queue_.clear();
  }
  for (uint32_t l : queued) {
    if (l < w->dir.size() && w->nav->alive(l) && w->nav->alive_count() > lists.size() + 1 &&
        std::find(lists.begin(), lists.end(), l) == lists.end()) {
      lists.push_back(l);
    }
  }
  if (lists.empty()) return Status::OK();
  std::vector<ListContent> content;
  VECTORD_RETURN_IF_ERROR(ReadLists(w, lists, /*want_x=*/true, &content));
  index::CentroidEdits ce;
  ce.removed = lists;
  VECTORD_ASSIGN_OR_RETURN(w->nav, w->nav->WithEdits(ce));
  w->edit.nav.push_back({ce.removed, {}, {}});
  const bool full = index_->meta_.layout == index::PostingLayout::kFull;
  for (size_t i = 0; i < lists.size(); ++i) {
    const uint32_t l = lists[i];
    if (w->dir[l].pages > 0) w->freed.push_back(w->dir[l]);
    w->dir[l] = storage::PostingListInfo();
    w->edit.lists.emplace_back(l, storage::PostingListInfo());
    w->removed.insert(l);
    w->written.insert(l);
    w->freed_ids.push_back(l);
  }
  // Pending entries (new rows) of the removed lists go to the nearest remaining list: the row's
  // other lists hold it already, one replica keeps it reachable.
  std::vector<float> xr(dim_);
  std::vector<uint32_t> out(params_.assign.max_replicas);
  for (uint32_t l : lists) {
    auto it = w->add.find(l);
    if (it == w->add.end()) continue;
    std::vector<Entry> moved = std::move(it->second);
    w->add.erase(it);
    for (const Entry& e : moved) {
      index::RowsToFloat(w->Bytes(e.row, record_bytes_), 1, dim_, index_->meta_.dtype, xr.data());
      const uint32_t c = AssignRow(*w->nav, xr.data(), out.data());
      if (c > 0) {
        w->add[out[0]].push_back(e);
        w->must.insert(out[0]);
      }
    }
  }
  // Their valid rows: reassigned over the remaining centroids.
  for (size_t i = 0; i < lists.size(); ++i) {
    const ListContent& c = content[i];
    for (size_t e = 0; e < c.entries.size(); ++e) {
      const uint32_t row = c.entries[e].row;
      if (w->bumps.count(row)) continue;  // a replica in another merged list, done already
      const uint32_t n = AssignRow(*w->nav, c.x.data() + e * dim_, out.data());
      if (row >= w->durable) {
        // A row not yet durable (some of its entries still pending): the entry moves, as is, to
        // its nearest remaining list; its version changes only once it is durable.
        if (n > 0) {
          w->add[out[0]].push_back(c.entries[e]);
          w->must.insert(out[0]);
        }
        continue;
      }
      const uint8_t v = static_cast<uint8_t>(w->Version(row) + 1);
      w->bumps[row] = v;
      for (uint32_t j = 0; j < n; ++j) w->must.insert(out[j]);
      if (full) {
        const size_t eb = index_->codec_->entry_bytes();
        w->extra[row].assign(c.codes.data() + e * eb, c.codes.data() + (e + 1) * eb);
      }
      for (uint32_t j = 0; j < n; ++j) w->add[out[j]].push_back({row, v});
      w->stats.reassigned++;
    }
  }
  w->stats.merges += lists.size();
  return Status::OK();
}

Status SpannUpdater::ProcessReassignments(Work* w) {
  // Rows LIRE flagged in the last cycle, each with the list it was seen in: a row whose lists over
  // the current centroids no longer include that list is reassigned, with a new version that
  // makes every old replica stale; the others stay where they are.
  std::vector<std::pair<uint32_t, uint32_t>> flagged;
  {
    auto g = w->locks->shared();  // CycleDue reads the queue under the shared lock
    flagged = std::move(reassign_queue_);
    reassign_queue_.clear();
  }
  std::sort(flagged.begin(), flagged.end());
  flagged.erase(std::unique(flagged.begin(), flagged.end()), flagged.end());
  std::vector<uint32_t> rows;
  for (const auto& [row, list] : flagged) {
    if (row < w->durable && w->live.contains(row) && !w->bumps.count(row) &&
        (rows.empty() || rows.back() != row)) {
      rows.push_back(row);
    }
  }
  if (rows.empty()) return Status::OK();
  std::vector<uint8_t> bytes(rows.size() * record_bytes_);
  VECTORD_RETURN_IF_ERROR(index_->ReadRows(rows, bytes.data(), nullptr));
  std::vector<float> x(dim_);
  std::vector<uint32_t> out(params_.assign.max_replicas);
  size_t f = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint32_t row = rows[i];
    index::RowsToFloat(bytes.data() + i * record_bytes_, 1, dim_, index_->meta_.dtype, x.data());
    const uint32_t c = AssignRow(*w->nav, x.data(), out.data());
    if (c == 0) continue;
    // Where it was seen: kept when every such list is still one of its lists.
    while (f < flagged.size() && flagged[f].first < row) ++f;
    bool moved = false;
    for (size_t j = f; j < flagged.size() && flagged[j].first == row; ++j) {
      if (std::find(out.begin(), out.begin() + c, flagged[j].second) == out.begin() + c) {
        moved = true;
      }
    }
    if (!moved) continue;
    const uint8_t v = static_cast<uint8_t>(w->Version(row) + 1);
    w->bumps[row] = v;
    w->extra[row].assign(bytes.data() + i * record_bytes_, bytes.data() + (i + 1) * record_bytes_);
    for (uint32_t j = 0; j < c; ++j) {
      w->add[out[j]].push_back({row, v});
      w->must.insert(out[j]);
    }
    w->stats.reassigned++;
  }
  return Status::OK();
}

Status SpannUpdater::WriteLists(Work* w) {
  // Which lists this cycle writes: those that must be, then the others with pending entries,
  // those holding the oldest rows first (so that rows become durable in order), then the sweep's,
  // within a budget of a share of the lists: a cycle that rewrote every list would need room
  // for two copies of the index in the posting file.
  const uint64_t budget = std::max<uint64_t>(
      256, static_cast<uint64_t>(params_.cycle_share * static_cast<double>(w->nav->alive_count())));
  std::vector<uint32_t> lists(w->must.begin(), w->must.end());
  std::vector<std::pair<uint32_t, uint32_t>> optional;  // (oldest pending row, list)
  for (const auto& [l, e] : w->add) {
    if (w->must.count(l)) continue;
    uint32_t oldest = UINT32_MAX;
    for (const Entry& x : e) oldest = std::min(oldest, x.row);
    optional.emplace_back(oldest, l);
  }
  std::sort(optional.begin(), optional.end());
  size_t take = 0;
  while (take < optional.size() && lists.size() < budget) lists.push_back(optional[take++].second);
  // Pending entries of the lists left for later stay pending; the oldest row among them bounds
  // the rows that become durable.
  w->next_durable = w->assigned;
  for (size_t i = take; i < optional.size(); ++i) {
    w->next_durable = std::min<uint64_t>(w->next_durable, optional[i].first);
    w->add.erase(optional[i].second);
  }
  // The sweep (after many deletes or reassignments): the budget left checks the next lists.
  if (sweeping_) {
    const uint32_t end = w->nav->size();
    while (sweep_cursor_ < end && lists.size() < budget) {
      const uint32_t l = static_cast<uint32_t>(sweep_cursor_++);
      if (w->nav->alive(l) && !w->add.count(l)) {
        lists.push_back(l);
        w->sweep.add(l);
      }
    }
    if (sweep_cursor_ >= end) {
      auto g = w->locks->exclusive();
      sweeping_ = false;
    }
  }
  std::sort(lists.begin(), lists.end());
  lists.erase(std::unique(lists.begin(), lists.end()), lists.end());
  constexpr size_t kBatch = 256;
  const bool full = index_->meta_.layout == index::PostingLayout::kFull;
  const size_t eb = index_->codec_->entry_bytes();
  std::vector<uint32_t> batch;
  for (size_t b = 0; b < lists.size(); b += kBatch) {
    batch.assign(lists.begin() + b, lists.begin() + std::min(lists.size(), b + kBatch));
    batch.erase(
        std::remove_if(batch.begin(), batch.end(), [&](uint32_t l) { return !w->nav->alive(l); }),
        batch.end());
    std::vector<ListContent> content;
    // Vectors as floats only where a PQ encoding needs them; a split reads what it lacks.
    VECTORD_RETURN_IF_ERROR(ReadLists(w, batch, /*want_x=*/!full, &content));
    for (size_t i = 0; i < batch.size(); ++i) {
      const uint32_t l = batch[i];
      ListContent& c = content[i];
      auto it = w->add.find(l);
      if (it == w->add.end()) {
        // Checked by the sweep only: rewritten when enough of it is dead or stale.
        const double old_entries = static_cast<double>(c.entries.size() + c.invalid);
        if (c.invalid == 0 || static_cast<double>(c.invalid) < params_.gc_share * old_entries) {
          if (c.entries.size() < params_.merge_entries) w->next_merge.push_back(l);
          continue;
        }
        w->stats.gc_lists++;
      } else {
        // The new entries: their bytes (full) or vectors (PQ), then their codes for this list.
        std::vector<uint32_t> rows;
        std::vector<const uint8_t*> raw;
        for (const Entry& e : it->second) {
          c.entries.push_back(e);
          rows.push_back(e.row);
          raw.push_back(w->Bytes(e.row, record_bytes_));
          if (full && raw.back() == nullptr) {
            return Status::Internal("SPANN updater: no bytes for row " + std::to_string(e.row));
          }
        }
        const size_t before = c.x.size();
        if (!full) VECTORD_RETURN_IF_ERROR(RowVectors(w, rows, &c.x));
        const size_t at = c.codes.size();
        c.codes.resize(at + rows.size() * eb);
        EncodeFor(w, l, full ? nullptr : c.x.data() + before, raw.data(), rows.size(),
                  c.codes.data() + at);
      }
      if (c.entries.size() > params_.split_entries && c.entries.size() >= 4) {
        if (full) {
          c.x.resize(c.entries.size() * dim_);
          index::RowsToFloat(c.codes.data(), c.entries.size(), dim_, index_->meta_.dtype,
                             c.x.data());
        }
        VECTORD_RETURN_IF_ERROR(SplitList(w, l, std::move(c)));
        continue;
      }
      VECTORD_RETURN_IF_ERROR(WriteOne(w, l, c));
      if (c.entries.size() < params_.merge_entries) w->next_merge.push_back(l);
    }
  }
  return Status::OK();
}

Status SpannUpdater::CompactFile(Work* w) {
  // Lists placed last in the file move into free runs further down, so that the file's end can
  // be given back once the cycle's record is durable: without it, rewritten lists (which grow,
  // split and shrink) leave holes of the wrong sizes and the file keeps growing.
  const storage::PostingStoreStats st = index_->store_->stats();
  if (st.free_pages * 4 < st.file_bytes / storage::kPostingPageBytes) return Status::OK();
  const uint64_t budget = std::max<uint64_t>(
      64, static_cast<uint64_t>(params_.cycle_share * static_cast<double>(w->nav->alive_count())));
  std::vector<std::pair<uint32_t, uint32_t>> by_place;  // (first page, list), last first
  for (uint32_t l = 0; l < w->dir.size(); ++l) {
    if (w->dir[l].pages > 0 && !w->written.count(l) && w->nav->alive(l)) {
      by_place.emplace_back(w->dir[l].first_page, l);
    }
  }
  std::sort(by_place.rbegin(), by_place.rend());
  std::vector<uint8_t> payload;
  uint64_t moved = 0;
  for (const auto& [first, l] : by_place) {
    if (moved >= budget) break;
    const storage::PostingListInfo old = w->dir[l];
    VECTORD_RETURN_IF_ERROR(index_->store_->ReadList(l, old, &payload));
    auto ext = index_->store_->WriteList(l, payload.data(), old.bytes, old.count, first);
    if (!ext.ok()) {
      if (ext.status().code() == Status::Code::kNotFound) continue;  // no room below it
      return ext.status();
    }
    w->freed.push_back(old);
    w->dir[l] = *ext;
    w->edit.lists.emplace_back(l, *ext);
    w->written.insert(l);
    w->stats.bytes_written += uint64_t{ext->pages} * storage::kPostingPageBytes;
    ++moved;
  }
  return Status::OK();
}

Result<SpannUpdater::CycleStats> SpannUpdater::RunCycle(const Locks& locks) {
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = ThreadCpuSeconds();
  SpannIndex& idx = *index_;
  if (idx.store_->header_version() == 1) {
    // The build's file still has its directory in its footer: the first checkpoint takes it over,
    // then the footer's pages become free space.
    VECTORD_RETURN_IF_ERROR(MaybeCheckpoint(locks, /*force=*/true));
    VECTORD_RETURN_IF_ERROR(idx.store_->UpgradeHeader());
  }
  Work w;
  w.locks = &locks;
  {
    auto g = locks.shared();
    w.durable = idx.durable_rows_;
    w.assigned = idx.assigned_rows_;
    w.pending_vectors.assign(
        idx.pending_vectors_.data(),
        idx.pending_vectors_.data() + (w.assigned - w.durable) * record_bytes_);
    w.versions.assign(idx.versions_.begin(), idx.versions_.begin() + w.assigned);
    for (const auto& [l, rows] : idx.pending_) {
      auto& out = w.add[l];
      for (uint32_t r : rows) {
        if (r < w.assigned) out.push_back({r, w.versions[r]});
      }
      if (out.empty()) w.add.erase(l);
    }
    w.live = locks.live();
  }
  // Only this thread changes the navigation, the directory and the versions.
  w.nav = idx.nav_;
  w.dir = idx.dir_;
  // The sweep: once many entries went dead or stale, every list is checked, a slice per cycle.
  const double entries = std::max<double>(1, static_cast<double>(idx.live_.list_entries));
  {
    auto g = locks.exclusive();  // CycleDue reads these under the shared lock
    if (!sweeping_ &&
        static_cast<double>(deleted_since_sweep_.load() * params_.assign.max_replicas / 2 +
                            stale_since_sweep_) > params_.gc_share * entries) {
      sweeping_ = true;
      sweep_cursor_ = 0;
      deleted_since_sweep_ = 0;
      stale_since_sweep_ = 0;
    }
  }
  VECTORD_RETURN_IF_ERROR(ProcessMerges(&w));
  VECTORD_RETURN_IF_ERROR(ProcessReassignments(&w));
  VECTORD_RETURN_IF_ERROR(WriteLists(&w));
  VECTORD_RETURN_IF_ERROR(CompactFile(&w));

  // Commit: the new blocks, then the record that names them.
  w.edit.durable_rows = w.next_durable;
  w.edit.assign_version = idx.assign_version_;
  for (const auto& [row, v] : w.bumps) w.edit.versions.emplace_back(row, v);
  std::sort(w.edit.versions.begin(), w.edit.versions.end());
  w.edit.counters = {w.stats.splits,        w.stats.merges,        w.stats.reassigned,
                     w.stats.lists_written, w.stats.bytes_written, w.stats.gc_lists};
  VECTORD_RETURN_IF_ERROR(idx.store_->Sync());
  VECTORD_RETURN_IF_ERROR(idx.journal_->Append(EncodeSpannEdit(w.edit, dim_), /*sync=*/true));

  // Install.
  {
    auto g = locks.exclusive();
    idx.nav_ = w.nav;
    idx.dir_ = std::move(w.dir);
    for (const auto& [row, v] : w.bumps) idx.versions_[row] = v;
    idx.pending_entries_ = 0;
    std::vector<uint32_t> reroute;  // pending rows of lists removed in this cycle
    for (auto it = idx.pending_.begin(); it != idx.pending_.end();) {
      std::vector<uint32_t>& rows = it->second;
      if (w.written.count(it->first)) {
        // Written: the entries the cycle took are on SSD now.
        rows.erase(
            std::remove_if(rows.begin(), rows.end(), [&](uint32_t r) { return r < w.assigned; }),
            rows.end());
      }
      if (!rows.empty() && !idx.nav_->alive(it->first)) {
        reroute.insert(reroute.end(), rows.begin(), rows.end());
        rows.clear();
      }
      if (rows.empty()) {
        it = idx.pending_.erase(it);
      } else {
        idx.pending_entries_ += rows.size();
        ++it;
      }
    }
    idx.pending_vectors_.erase_front((w.next_durable - w.durable) * record_bytes_);
    idx.durable_rows_ = w.next_durable;
    std::vector<float> xr(dim_);
    std::vector<uint32_t> out(params_.assign.max_replicas);
    for (uint32_t row : reroute) {
      index::RowsToFloat(idx.PendingVector(row), 1, dim_, idx.meta_.dtype, xr.data());
      const uint32_t c = AssignRow(*idx.nav_, xr.data(), out.data());
      for (uint32_t j = 0; j < c; ++j) {
        auto& rows = idx.pending_[out[j]];
        if (std::find(rows.begin(), rows.end(), row) == rows.end()) {
          rows.push_back(row);
          idx.pending_entries_++;
        }
      }
    }
    if (idx.cache_.size() < idx.dir_.size()) idx.cache_.resize(idx.dir_.size());
    for (uint32_t l : w.written) {
      if (l < idx.cache_.size() && !idx.cache_[l].empty()) {
        idx.cache_bytes_ -= idx.cache_[l].size();
        std::vector<uint8_t>().swap(idx.cache_[l]);
      }
      changed_lists_.add(l);
    }
    idx.RecomputeListMeans();
    w.stats.rows = w.next_durable - w.durable;
    idx.live_.splits += w.stats.splits;
    idx.live_.merges += w.stats.merges;
    idx.live_.reassigned += w.stats.reassigned;
    idx.live_.lists_written += w.stats.lists_written;
    idx.live_.bytes_written += w.stats.bytes_written;
    idx.live_.gc_lists += w.stats.gc_lists;
    idx.live_.cycles++;
    reassign_queue_ = std::move(w.next_reassign);
    merge_queue_ = std::move(w.next_merge);
    // Every reassigned row leaves stale replicas behind (about the mean replica count each).
    stale_since_sweep_ += w.stats.reassigned * params_.assign.max_replicas / 2;
  }
  for (const auto& ext : w.freed) VECTORD_RETURN_IF_ERROR(idx.store_->Free(ext));
  VECTORD_RETURN_IF_ERROR(idx.store_->TrimTail());
  for (uint32_t id : w.freed_ids) free_ids_.insert(free_ids_.begin(), id);
  VECTORD_RETURN_IF_ERROR(MaybeCheckpoint(locks, /*force=*/false));
  w.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  w.stats.cpu_seconds = ThreadCpuSeconds() - cpu0;
  {
    auto g = locks.exclusive();
    idx.live_.cpu_seconds += w.stats.cpu_seconds;
  }
  return w.stats;
}

Status SpannUpdater::MaybeCheckpoint(const Locks& locks, bool force) {
  SpannIndex& idx = *index_;
  if (!force && idx.journal_->bytes() < params_.checkpoint_bytes) return Status::OK();
  SpannCheckpoint c;
  c.next_seq = idx.journal_->next_seq();
  {
    auto g = locks.shared();  // the assign step grows versions_
    c.durable_rows = idx.durable_rows_;
    c.assign_version = idx.assign_version_;
    c.versions.assign(idx.versions_.begin(), idx.versions_.begin() + idx.durable_rows_);
  }
  c.directory = idx.dir_;
  c.navigation = idx.nav_->Serialize();
  const SpannLiveStats& s = idx.live_;
  c.counters = {s.splits, s.merges,        s.reassigned, s.lists_written,
                s.cycles, s.bytes_written, s.gc_lists};
  VECTORD_RETURN_IF_ERROR(WriteSpannCheckpoint(idx.dir_path_, c));
  // The row codes as they are now (rows assigned after the next open are encoded again).
  const RowCodes* codes = idx.row_codes();
  if (codes != nullptr) {
    auto g = locks.shared();
    VECTORD_RETURN_IF_ERROR(codes->Write(idx.dir_path_ + "/" + kRowCodesFile));
  }
  return idx.journal_->Reset();
}

Roaring SpannUpdater::TakeChangedLists() {
  Roaring out;
  out.swap(changed_lists_);
  return out;
}

}  // namespace vectord
