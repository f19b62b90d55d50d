// CentroidIndex::WithEdits (see centroid_graph.h): the next snapshot of a living navigation index
// after list splits and merges (SPFresh's LIRE, SOSP 2023), built beside the current one and
// sharing every storage piece (index/centroid_store.h) it does not change. docs/spann.md "Living
// navigation" describes the rules.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "index/centroid_graph.h"
#include "index/centroid_store.h"
#include "index/distance.h"

namespace vectord::index {

using centroid_store::Group;
using centroid_store::GroupBlock;
using centroid_store::kGroupBits;
using centroid_store::kGroupsPerBlock;
using centroid_store::kNoGroup;
using centroid_store::kPlaceBits;
using centroid_store::kPlacesPerChunk;
using centroid_store::MemberChunk;
using centroid_store::Place;
using centroid_store::PlaceChunk;

namespace {

constexpr int kTwoMeansIterations = 10;
constexpr uint32_t kMinSplitBound = 16;

// Squared L2 in plain scalar code with a fixed order of operations: the edits' decisions (nearest
// group, 2-means) use it so that they do not depend on the CPU's kernel level (distance.h picks
// AVX-512, AVX2 or scalar at run time, and their sums round differently). Eight partial sums keep
// it reasonably fast without letting the compiler reassociate.
float PortableL2(const float* a, const float* b, uint32_t d) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  uint32_t j = 0;
  for (; j + 8 <= d; j += 8) {
    for (uint32_t t = 0; t < 8; ++t) {
      const float x = a[j + t] - b[j + t];
      s[t] += x * x;
    }
  }
  for (; j < d; ++j) {
    const float x = a[j] - b[j];
    s[0] += x * x;
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// floor(sqrt(x)) exactly.
uint32_t ISqrt(uint32_t x) {
  uint64_t r = static_cast<uint64_t>(std::sqrt(static_cast<double>(x)));
  while (r * r > x) --r;
  while ((r + 1) * (r + 1) <= x) ++r;
  return static_cast<uint32_t>(r);
}

}  // namespace

// Applies one batch of edits to a private copy of the base index's top-level tables. A piece of
// storage is copied the first time the batch changes it and changed in place afterwards (the
// `own_*` tables remember which copies are this batch's); everything else stays shared with the
// base.
class CentroidEditor {
 public:
  explicit CentroidEditor(const CentroidIndex& base);
  static Status Validate(const CentroidIndex& base, const CentroidEdits& e);
  std::shared_ptr<const CentroidIndex> Apply(const CentroidEdits& e);

 private:
  // A group this batch changes: its chunks, either still the base's (shared[c]) or this batch's
  // copy (own[c]); exactly one of the two is set for each chunk.
  struct Draft {
    uint32_t size = 0;
    std::vector<std::shared_ptr<const MemberChunk>> shared;
    std::vector<std::shared_ptr<MemberChunk>> own;
  };

  const void* RowIn(const MemberChunk& c, uint32_t j) const {
    return precision_f16_ ? static_cast<const void*>(c.f16.data() + size_t{j} * dim_)
                          : static_cast<const void*>(c.f32.data() + size_t{j} * dim_);
  }
  void DecodeRow(const void* row, float* out) const;
  void EncodeRow(const float* v, std::vector<uint8_t>* row) const;

  Place GetPlace(uint32_t id) const { return ci_->PlaceOf(id); }
  void SetPlace(uint32_t id, Place p);
  GroupBlock& MutableBlock(uint32_t g);
  float* MutableCentroid(uint32_t g) {
    return MutableBlock(g).centroids.data() + size_t{g & (kGroupsPerBlock - 1)} * dim_;
  }

  // The draft of group slot g, made on first use (a group laid out as built is re-chunked to the
  // index's chunk size then: once per group, O(its size)).
  Draft& Touch(uint32_t g);
  const MemberChunk& ChunkOf(const Draft& d, size_t c) const {
    return d.own[c] ? *d.own[c] : *d.shared[c];
  }
  MemberChunk& MutableChunk(Draft* d, size_t c);
  void Append(Draft* d, uint32_t g, uint32_t id, const void* row);
  void Remove(uint32_t id);
  void Add(uint32_t id, const float* v);
  // Whether slot g holds a group now (a draft, possibly emptied in this batch, or a base group).
  bool Live(uint32_t g) const { return drafts_.count(g) > 0 || ci_->group(g) != nullptr; }
  uint32_t NearestGroup(const float* v) const;
  uint32_t NewSlot();
  // Members of a draft in order: ids and decoded rows.
  void Members(const Draft& d, std::vector<uint32_t>* ids, std::vector<float>* x) const;
  void SetMeanCentroid(uint32_t g);
  uint32_t Split(uint32_t g);
  void Finish();

  const CentroidIndex& base_;
  std::shared_ptr<CentroidIndex> ci_;  // the new index, private until Apply returns
  const uint32_t dim_;
  const bool precision_f16_;
  const size_t row_bytes_;
  const uint32_t cm_;                                    // members per chunk of a touched group
  std::vector<std::shared_ptr<PlaceChunk>> own_places_;  // by chunk; null: still the base's
  std::vector<std::shared_ptr<GroupBlock>> own_blocks_;  // by block; null: still the base's
  std::map<uint32_t, Draft> drafts_;                     // by group slot (ordered: deterministic)
};

CentroidEditor::CentroidEditor(const CentroidIndex& base)
    : base_(base),
      ci_(new CentroidIndex()),
      dim_(base.dim_),
      precision_f16_(base.precision_ == CentroidPrecision::kF16),
      row_bytes_(size_t{base.dim_} * (precision_f16_ ? 2 : 4)),
      cm_(base.chunk_members_) {
  CentroidIndex& c = *ci_;
  c.kind_ = base.kind_;
  c.n_ = base.n_;
  c.alive_ = base.alive_;
  c.dim_ = base.dim_;
  c.precision_ = base.precision_;
  c.chunk_members_ = base.chunk_members_;
  c.group_slots_ = base.group_slots_;
  c.live_groups_ = base.live_groups_;
  c.build_group_size_ = base.build_group_size_;
  c.edited_ = true;
  // O(size() / 256 + groups / 8) pointer copies: the only cost that grows with the index.
  c.blocks_ = base.blocks_;
  c.places_ = base.places_;
  c.build_start_ = base.build_start_;
  own_places_.resize(c.places_.size());
  own_blocks_.resize(c.blocks_.size());
}

Status CentroidEditor::Validate(const CentroidIndex& base, const CentroidEdits& e) {
  auto bad = [](const std::string& what) {
    return Status::InvalidArgument("centroid edits: " + what);
  };
  if (base.kind_ == CentroidIndexKind::kHnsw) {
    return Status::FailedPrecondition(
        "centroid edits: HNSW navigation cannot be edited (build the index with navigation "
        "\"tree\" or \"brute\")");
  }
  if (e.added.size() != e.added_ids.size() * base.dim_) {
    return bad(std::to_string(e.added_ids.size()) + " ids to add but " +
               std::to_string(e.added.size()) + " floats (dim " + std::to_string(base.dim_) +
               " needs " + std::to_string(e.added_ids.size() * base.dim_) + ")");
  }
  std::vector<uint32_t> removed = e.removed;
  std::sort(removed.begin(), removed.end());
  for (size_t i = 0; i < removed.size(); ++i) {
    const uint32_t id = removed[i];
    if (i > 0 && removed[i - 1] == id) {
      return bad("centroid " + std::to_string(id) + " removed twice");
    }
    if (!base.alive(id)) {
      return bad("cannot remove centroid " + std::to_string(id) + ": it is not alive (id space " +
                 std::to_string(base.n_) + ", " + std::to_string(base.alive_) + " alive)");
    }
  }
  uint64_t next = base.n_;
  std::vector<uint32_t> reused;
  for (size_t i = 0; i < e.added_ids.size(); ++i) {
    const uint32_t id = e.added_ids[i];
    if (id == next) {
      if (++next >= kNoGroup) return bad("the id space is full");
    } else if (id > next) {
      return bad("cannot add centroid " + std::to_string(id) +
                 ": new ids come in order, the next is " + std::to_string(next));
    } else if (id >= base.n_ ||
               (base.alive(id) && !std::binary_search(removed.begin(), removed.end(), id))) {
      return bad("cannot add centroid " + std::to_string(id) +
                 ": it is in use (add the next unused id " + std::to_string(next) +
                 " or a removed one)");
    } else {
      reused.push_back(id);
    }
    const float* v = e.added.data() + i * base.dim_;
    for (uint32_t j = 0; j < base.dim_; ++j) {
      if (!std::isfinite(v[j])) {
        return bad("added centroid " + std::to_string(id) +
                   " has a non-finite value at dimension " + std::to_string(j));
      }
    }
  }
  std::sort(reused.begin(), reused.end());
  const auto dup = std::adjacent_find(reused.begin(), reused.end());
  if (dup != reused.end()) return bad("centroid " + std::to_string(*dup) + " added twice");
  return Status::OK();
}

void CentroidEditor::DecodeRow(const void* row, float* out) const {
  if (precision_f16_) {
    centroid_store::HalfRowToFloat(static_cast<const uint16_t*>(row), out, dim_);
  } else {
    std::copy_n(static_cast<const float*>(row), dim_, out);
  }
}

void CentroidEditor::EncodeRow(const float* v, std::vector<uint8_t>* row) const {
  row->resize(row_bytes_);
  if (precision_f16_) {
    for (uint32_t j = 0; j < dim_; ++j) {
      const uint16_t h = FloatToHalf(v[j]);
      std::memcpy(row->data() + size_t{j} * 2, &h, 2);
    }
  } else {
    std::memcpy(row->data(), v, row_bytes_);
  }
}

void CentroidEditor::SetPlace(uint32_t id, Place p) {
  const uint32_t c = id >> kPlaceBits;
  if (c >= ci_->places_.size()) {  // a new id past the last chunk
    ci_->places_.resize(c + 1);
    own_places_.resize(c + 1);
  }
  if (!own_places_[c]) {
    if (ci_->places_[c]) {
      own_places_[c] = std::make_shared<PlaceChunk>(*ci_->places_[c]);
    } else {  // where the build put them (or never used)
      own_places_[c] = std::make_shared<PlaceChunk>();
      for (uint32_t i = 0; i < kPlacesPerChunk; ++i) {
        const uint32_t id = c * kPlacesPerChunk + i;
        own_places_[c]->at[i] =
            id < ci_->n_ && c < base_.places_.size() ? ci_->PlaceOf(id) : Place{kNoGroup, 0};
      }
    }
    ci_->places_[c] = own_places_[c];
  }
  own_places_[c]->at[id & (kPlacesPerChunk - 1)] = p;
}

GroupBlock& CentroidEditor::MutableBlock(uint32_t g) {
  const uint32_t b = g >> kGroupBits;
  if (b >= ci_->blocks_.size()) {  // a new slot past the last block
    ci_->blocks_.resize(b + 1);
    own_blocks_.resize(b + 1);
  }
  if (!own_blocks_[b]) {
    if (ci_->blocks_[b]) {
      own_blocks_[b] = std::make_shared<GroupBlock>(*ci_->blocks_[b]);
    } else {
      own_blocks_[b] = std::make_shared<GroupBlock>();
      own_blocks_[b]->centroids.assign(size_t{kGroupsPerBlock} * dim_, 0.0f);
    }
    ci_->blocks_[b] = own_blocks_[b];
  }
  return *own_blocks_[b];
}

CentroidEditor::Draft& CentroidEditor::Touch(uint32_t g) {
  auto it = drafts_.find(g);
  if (it != drafts_.end()) return it->second;
  Draft& d = drafts_[g];
  const Group* base = g < ci_->group_slots_ ? ci_->group(g) : nullptr;
  if (base == nullptr) return d;
  d.size = base->size;
  if (base->chunk_members == cm_ || (base->chunks.size() == 1 && base->size <= cm_)) {
    d.shared = base->chunks;
    d.own.resize(d.shared.size());
    return d;
  }
  // Laid out as built (one chunk) or for another precision: copy into chunks of cm_ members.
  for (const auto& c : base->chunks) {
    for (uint32_t j = 0; j < c->count; ++j) {
      if (d.own.empty() || d.own.back()->count == cm_) {
        d.own.push_back(std::make_shared<MemberChunk>());
        d.shared.emplace_back();
      }
      MemberChunk& o = *d.own.back();
      o.ids.push_back(c->id(j));
      const auto* r = static_cast<const uint8_t*>(RowIn(*c, j));
      if (precision_f16_) {
        const auto* h = reinterpret_cast<const uint16_t*>(r);
        o.f16.insert(o.f16.end(), h, h + dim_);
      } else {
        const auto* f = reinterpret_cast<const float*>(r);
        o.f32.insert(o.f32.end(), f, f + dim_);
      }
      ++o.count;
    }
  }
  return d;
}

MemberChunk& CentroidEditor::MutableChunk(Draft* d, size_t c) {
  if (!d->own[c]) {
    const MemberChunk& src = *d->shared[c];
    auto o = std::make_shared<MemberChunk>();
    o->count = src.count;
    o->ids.resize(src.count);
    for (uint32_t j = 0; j < src.count; ++j) o->ids[j] = src.id(j);
    o->f32 = src.f32;
    o->f16 = src.f16;
    d->own[c] = std::move(o);
    d->shared[c].reset();
  }
  return *d->own[c];
}

void CentroidEditor::Append(Draft* d, uint32_t g, uint32_t id, const void* row) {
  if (d->size % cm_ == 0) {
    d->own.push_back(std::make_shared<MemberChunk>());
    d->shared.emplace_back();
  }
  MemberChunk& c = MutableChunk(d, d->own.size() - 1);
  c.ids.push_back(id);
  if (precision_f16_) {
    const auto* h = static_cast<const uint16_t*>(row);
    c.f16.insert(c.f16.end(), h, h + dim_);
  } else {
    const auto* f = static_cast<const float*>(row);
    c.f32.insert(c.f32.end(), f, f + dim_);
  }
  ++c.count;
  SetPlace(id, {g, d->size});
  ++d->size;
}

void CentroidEditor::Remove(uint32_t id) {
  const Place p = GetPlace(id);
  Draft& d = Touch(p.group);
  const uint32_t last = d.size - 1;
  if (p.pos != last) {
    // The group's last member fills the hole (member order is part of the index's state: it
    // decides future layouts, so it must be the same on every replay).
    const MemberChunk& lc = ChunkOf(d, last / cm_);
    const uint32_t last_id = lc.id(last % cm_);
    const auto* lr = static_cast<const uint8_t*>(RowIn(lc, last % cm_));
    const std::vector<uint8_t> row(lr, lr + row_bytes_);
    MemberChunk& hc = MutableChunk(&d, p.pos / cm_);
    const uint32_t j = p.pos % cm_;
    hc.ids[j] = last_id;
    if (precision_f16_) {
      std::memcpy(hc.f16.data() + size_t{j} * dim_, row.data(), row_bytes_);
    } else {
      std::memcpy(hc.f32.data() + size_t{j} * dim_, row.data(), row_bytes_);
    }
    SetPlace(last_id, {p.group, p.pos});
  }
  if (last % cm_ == 0) {  // the last chunk held only this member
    d.own.pop_back();
    d.shared.pop_back();
  } else {
    MemberChunk& c = MutableChunk(&d, last / cm_);
    --c.count;
    c.ids.pop_back();
    if (precision_f16_) {
      c.f16.resize(size_t{c.count} * dim_);
    } else {
      c.f32.resize(size_t{c.count} * dim_);
    }
  }
  --d.size;
  SetPlace(id, {kNoGroup, 0});
  --ci_->alive_;
}

uint32_t CentroidEditor::NearestGroup(const float* v) const {
  uint32_t best = kNoGroup;
  float best_d = 0;
  const uint32_t slots = static_cast<uint32_t>(ci_->blocks_.size()) * kGroupsPerBlock;
  for (uint32_t g = 0; g < slots && g < ci_->group_slots_; ++g) {
    if (!Live(g)) continue;
    const float dist = PortableL2(v, ci_->group_centroid(g), dim_);
    if (best == kNoGroup || dist < best_d) {
      best = g;
      best_d = dist;
    }
  }
  return best;
}

uint32_t CentroidEditor::NewSlot() {
  for (uint32_t g = 0; g < ci_->group_slots_; ++g) {
    if (!Live(g)) return g;
  }
  return ci_->group_slots_++;
}

void CentroidEditor::Add(uint32_t id, const float* v) {
  std::vector<uint8_t> row;
  EncodeRow(v, &row);
  // Decisions use the centroid as stored (half: rounded), as every search will see it.
  std::vector<float> stored(dim_);
  DecodeRow(row.data(), stored.data());
  uint32_t g = 0;
  if (ci_->kind_ == CentroidIndexKind::kTree) {
    g = NearestGroup(stored.data());
    if (g == kNoGroup) {  // no group left: this centroid starts one
      g = NewSlot();
      std::copy(stored.begin(), stored.end(), MutableCentroid(g));
    }
  }
  Append(&Touch(g), g, id, row.data());
  if (id >= ci_->n_) ci_->n_ = id + 1;
  ++ci_->alive_;
}

void CentroidEditor::Members(const Draft& d, std::vector<uint32_t>* ids,
                             std::vector<float>* x) const {
  ids->clear();
  x->resize(size_t{d.size} * dim_);
  for (size_t c = 0; c < d.own.size(); ++c) {
    const MemberChunk& ch = ChunkOf(d, c);
    for (uint32_t j = 0; j < ch.count; ++j) {
      DecodeRow(RowIn(ch, j), x->data() + ids->size() * dim_);
      ids->push_back(ch.id(j));
    }
  }
}

void CentroidEditor::SetMeanCentroid(uint32_t g) {
  // Mean of the members in double, in member order: exact enough and the same on every replay.
  const Draft& d = drafts_.at(g);
  std::vector<double> sum(dim_, 0.0);
  std::vector<float> x(dim_);
  for (size_t c = 0; c < d.own.size(); ++c) {
    const MemberChunk& ch = ChunkOf(d, c);
    for (uint32_t j = 0; j < ch.count; ++j) {
      DecodeRow(RowIn(ch, j), x.data());
      for (uint32_t t = 0; t < dim_; ++t) sum[t] += x[t];
    }
  }
  float* out = MutableCentroid(g);
  for (uint32_t t = 0; t < dim_; ++t) out[t] = static_cast<float>(sum[t] / d.size);
}

// Splits group g in two by a 2-means of its members (farthest-point start: no random seed;
// ten Lloyd rounds at most). A split leaving fewer than a quarter of the members on one side is
// replaced by a cut at the median of the projection on the line through the two means, so each
// side gets at least a quarter and repeated splits terminate. Side 0 stays in g, side 1 moves to
// a new slot (returned); both keep their members' relative order.
uint32_t CentroidEditor::Split(uint32_t g) {
  std::vector<uint32_t> ids;
  std::vector<float> x;
  Members(drafts_.at(g), &ids, &x);
  const uint32_t m = static_cast<uint32_t>(ids.size());
  const float* row0 = x.data();
  auto row = [&](uint32_t i) { return row0 + size_t{i} * dim_; };
  auto mean_of = [&](const std::vector<uint8_t>& side, uint8_t which, std::vector<float>* out) {
    std::vector<double> sum(dim_, 0.0);
    uint32_t cnt = 0;
    for (uint32_t i = 0; i < m; ++i) {
      if (side[i] != which) continue;
      ++cnt;
      for (uint32_t t = 0; t < dim_; ++t) sum[t] += row(i)[t];
    }
    out->resize(dim_);
    for (uint32_t t = 0; t < dim_; ++t) (*out)[t] = static_cast<float>(sum[t] / std::max(1u, cnt));
    return cnt;
  };
  std::vector<uint8_t> side(m, 0);
  std::vector<float> ca, cb;
  mean_of(side, 0, &ca);  // the group's mean
  auto farthest = [&](const float* from) {
    uint32_t best = 0;
    float bd = -1;
    for (uint32_t i = 0; i < m; ++i) {
      const float d = PortableL2(row(i), from, dim_);
      if (d > bd) {
        best = i;
        bd = d;
      }
    }
    return best;
  };
  const uint32_t a = farthest(ca.data());
  const uint32_t b = farthest(row(a));
  ca.assign(row(a), row(a) + dim_);
  cb.assign(row(b), row(b) + dim_);
  for (int it = 0; it < kTwoMeansIterations; ++it) {
    bool changed = false;
    for (uint32_t i = 0; i < m; ++i) {
      const uint8_t s = PortableL2(row(i), cb.data(), dim_) < PortableL2(row(i), ca.data(), dim_);
      changed |= s != side[i];
      side[i] = s;
    }
    if (!changed && it > 0) break;
    if (mean_of(side, 0, &ca) == 0 || mean_of(side, 1, &cb) == 0) break;
  }
  const uint32_t ones = static_cast<uint32_t>(std::count(side.begin(), side.end(), 1));
  if (std::min(ones, m - ones) < m / 4 || ones == 0 || ones == m) {
    std::vector<float> dir(dim_);
    for (uint32_t t = 0; t < dim_; ++t) dir[t] = cb[t] - ca[t];
    std::vector<double> proj(m);
    for (uint32_t i = 0; i < m; ++i) {
      double p = 0;
      for (uint32_t t = 0; t < dim_; ++t) p += double{row(i)[t]} * dir[t];
      proj[i] = p;
    }
    std::vector<uint32_t> order(m);
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](uint32_t i, uint32_t j) {
      return proj[i] < proj[j] || (proj[i] == proj[j] && i < j);
    });
    for (uint32_t r = 0; r < m; ++r) side[order[r]] = r >= m / 2;
  }
  // Rewrite both groups from the stored rows (no re-encoding).
  std::vector<std::vector<uint8_t>> rows(m);
  {
    const Draft& d = drafts_.at(g);
    uint32_t i = 0;
    for (size_t c = 0; c < d.own.size(); ++c) {
      const MemberChunk& ch = ChunkOf(d, c);
      for (uint32_t j = 0; j < ch.count; ++j, ++i) {
        const auto* r = static_cast<const uint8_t*>(RowIn(ch, j));
        rows[i].assign(r, r + row_bytes_);
      }
    }
  }
  const uint32_t h = NewSlot();
  drafts_[g] = Draft();
  Draft& dh = drafts_[h];
  dh = Draft();
  for (uint32_t i = 0; i < m; ++i) {
    const uint32_t to = side[i] ? h : g;
    Append(&drafts_.at(to), to, ids[i], rows[i].data());
  }
  return h;
}

void CentroidEditor::Finish() {
  const bool tree = ci_->kind_ == CentroidIndexKind::kTree;
  // Emptied groups disappear (their slot may be reused by a later split).
  for (auto it = drafts_.begin(); it != drafts_.end();) {
    if (it->second.size > 0) {
      ++it;
      continue;
    }
    MutableBlock(it->first).groups[it->first & (kGroupsPerBlock - 1)].reset();
    it = drafts_.erase(it);
  }
  if (tree) {
    // The split bound: twice the larger of the mean group size at build and sqrt(alive), the
    // tree's shape at build (sqrt(C) groups of sqrt(C)), so a growing index keeps that shape.
    const uint32_t bound =
        std::max(kMinSplitBound, 2 * std::max(ci_->build_group_size_, ISqrt(ci_->alive_)));
    std::vector<uint32_t> work;
    for (const auto& [g, d] : drafts_) work.push_back(g);
    for (size_t i = 0; i < work.size(); ++i) {
      const uint32_t g = work[i];
      while (drafts_.at(g).size > bound) work.push_back(Split(g));
      SetMeanCentroid(g);
    }
  }
  for (auto& [g, d] : drafts_) {
    for (auto& c : d.own) {
      if (!c) continue;
      c->ids.shrink_to_fit();  // appends may have left spare capacity: keep RAM exact
      c->f32.shrink_to_fit();
      c->f16.shrink_to_fit();
    }
    auto grp = std::make_shared<Group>();
    grp->size = d.size;
    grp->chunk_members = cm_;
    grp->chunks.resize(d.own.size());
    for (size_t c = 0; c < d.own.size(); ++c) {
      if (d.own[c]) {
        grp->chunks[c] = std::move(d.own[c]);
      } else {
        grp->chunks[c] = std::move(d.shared[c]);
      }
    }
    MutableBlock(g).groups[g & (kGroupsPerBlock - 1)] = std::move(grp);
  }
  uint32_t live = 0;
  for (uint32_t g = 0; g < ci_->group_slots_; ++g) live += ci_->group(g) != nullptr;
  ci_->live_groups_ = live;
  ci_->SetPrefetch();
}

std::shared_ptr<const CentroidIndex> CentroidEditor::Apply(const CentroidEdits& e) {
  for (uint32_t id : e.removed) Remove(id);
  for (size_t i = 0; i < e.added_ids.size(); ++i) {
    Add(e.added_ids[i], e.added.data() + i * dim_);
  }
  Finish();
  return ci_;
}

Result<std::shared_ptr<const CentroidIndex>> CentroidIndex::WithEdits(
    const CentroidEdits& edits) const {
  VECTORD_RETURN_IF_ERROR(CentroidEditor::Validate(*this, edits));
  CentroidEditor editor(*this);
  return editor.Apply(edits);
}

}  // namespace vectord::index
