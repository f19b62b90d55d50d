// Payload indexes: value -> Roaring bitmaps and numeric range structures, kept up to date row by
// row.
#include "index/payload_index.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

namespace vectord::index {
namespace {

// Pending (unsorted) range entries are folded into the sorted array once there are more than
// this many, or more than 1/32 of the sorted array: a range query scans them linearly.
constexpr size_t kMinPending = 1024;

size_t RoaringBytes(const Roaring& r) { return sizeof(Roaring) + r.getSizeInBytes(false); }

bool IsInt64(const Json& v) {
  if (v.is_number_unsigned()) {
    return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  return v.is_number_integer();
}

// A Roaring bitmap of the set bits of `words` (bit r of word r / 64 = row r), built through
// Roaring's portable serialization (github.com/RoaringBitmap/RoaringFormatSpec, no run
// containers): dense 65,536-row chunks become bitset containers by a copy, sparse ones sorted
// arrays. Several times faster than adding ~100k ascending rows one by one.
Roaring BitsetToRoaring(const std::vector<uint64_t>& words) {
  constexpr size_t kChunkWords = 1024;  // 65,536 bits
  struct Chunk {
    uint16_t key;
    uint32_t card;
    size_t first;  // first word
  };
  std::vector<Chunk> chunks;
  for (size_t w = 0; w < words.size(); w += kChunkWords) {
    uint32_t card = 0;
    const size_t end = std::min(words.size(), w + kChunkWords);
    for (size_t i = w; i < end; ++i) card += static_cast<uint32_t>(__builtin_popcountll(words[i]));
    if (card > 0) chunks.push_back({static_cast<uint16_t>(w / kChunkWords), card, w});
  }
  std::string buf;
  auto put16 = [&](uint16_t v) { buf.append(reinterpret_cast<const char*>(&v), 2); };
  auto put32 = [&](uint32_t v) { buf.append(reinterpret_cast<const char*>(&v), 4); };
  put32(12346);  // SERIAL_COOKIE_NO_RUNCONTAINER
  put32(static_cast<uint32_t>(chunks.size()));
  for (const Chunk& c : chunks) {
    put16(c.key);
    put16(static_cast<uint16_t>(c.card - 1));
  }
  uint32_t offset = static_cast<uint32_t>(buf.size() + 4 * chunks.size());
  for (const Chunk& c : chunks) {
    put32(offset);
    offset += c.card > 4096 ? 8192 : 2 * c.card;
  }
  for (const Chunk& c : chunks) {
    const size_t end = std::min(words.size(), c.first + kChunkWords);
    if (c.card > 4096) {
      buf.append(reinterpret_cast<const char*>(&words[c.first]), (end - c.first) * 8);
      buf.append((c.first + kChunkWords - end) * 8, '\0');
      continue;
    }
    for (size_t i = c.first; i < end; ++i) {
      for (uint64_t b = words[i]; b != 0; b &= b - 1) {
        put16(
            static_cast<uint16_t>((i - c.first) * 64 + static_cast<unsigned>(__builtin_ctzll(b))));
      }
    }
  }
  return Roaring::readSafe(buf.data(), buf.size());
}

}  // namespace

Roaring RowsToRoaring(std::vector<uint32_t>* rows) {
  Roaring out;
  if (rows->empty()) return out;
  // Rows come in value order; Roaring builds far faster from ascending ids, fastest from whole
  // containers. Many rows: set them in a bit array (O(n + max_row / 64), no sort: angle 50% on
  // mate/sift, 130k rows), then whole containers from it.
  const uint32_t max_row = *std::max_element(rows->begin(), rows->end());
  if (rows->size() > 64 && rows->size() * uint64_t{32} > max_row) {
    std::vector<uint64_t> bits(max_row / 64 + 1, 0);
    for (uint32_t r : *rows) bits[r >> 6] |= uint64_t{1} << (r & 63);
    return BitsetToRoaring(bits);
  }
  std::sort(rows->begin(), rows->end());
  rows->erase(std::unique(rows->begin(), rows->end()), rows->end());
  out.addMany(rows->size(), rows->data());
  return out;
}

// ---------------------------------------------------------------------------------------------
// MemoryRangeIndex

void MemoryRangeIndex::Insert(double value, InternalId row) {
  pending_.push_back(Entry{value, row, false});
  MaybeCompact();
}

bool MemoryRangeIndex::EraseEntry(double value, InternalId row) {
  bool found = false;
  Entry key{value, row, false};
  for (auto it = std::lower_bound(sorted_.begin(), sorted_.end(), key);
       it != sorted_.end() && it->value == value && it->row == row; ++it) {
    if (!it->dead) {
      it->dead = true;
      ++dead_;
      found = true;
      break;
    }
  }
  if (!found) {
    for (size_t i = 0; i < pending_.size(); ++i) {
      if (pending_[i].value == value && pending_[i].row == row) {
        pending_[i] = pending_.back();
        pending_.pop_back();
        found = true;
        break;
      }
    }
  }
  MaybeCompact();
  return found;
}

void MemoryRangeIndex::EraseRows(const Roaring& rows) {
  if (rows.isEmpty()) return;
  for (Entry& e : sorted_) {
    if (!e.dead && rows.contains(e.row)) {
      e.dead = true;
      ++dead_;
    }
  }
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                [&](const Entry& e) { return rows.contains(e.row); }),
                 pending_.end());
  MaybeCompact();
}

void MemoryRangeIndex::MaybeCompact() {
  if (bulk_) return;
  const size_t n = sorted_.size();
  if (pending_.size() > std::max(kMinPending, n / 32) || dead_ > std::max(kMinPending, n / 4)) {
    Compact();
  }
}

Status MemoryRangeIndex::EndBulk() {
  bulk_ = false;
  Compact();
  return Status::OK();
}

void MemoryRangeIndex::Compact() {
  if (dead_ > 0) {
    sorted_.erase(
        std::remove_if(sorted_.begin(), sorted_.end(), [](const Entry& e) { return e.dead; }),
        sorted_.end());
    dead_ = 0;
  }
  if (!pending_.empty()) {
    std::sort(pending_.begin(), pending_.end());
    const size_t mid = sorted_.size();
    sorted_.insert(sorted_.end(), pending_.begin(), pending_.end());
    std::inplace_merge(sorted_.begin(), sorted_.begin() + static_cast<ptrdiff_t>(mid),
                       sorted_.end());
    pending_.clear();
    pending_.shrink_to_fit();
  }
}

std::vector<MemoryRangeIndex::Entry> MemoryRangeIndex::TakeSorted() {
  Compact();
  std::vector<Entry> out;
  out.swap(sorted_);
  return out;
}

Status MemoryRangeIndex::CollectRange(const Range& range, std::vector<uint32_t>* rows) const {
  auto begin = sorted_.begin(), end = sorted_.end();
  if (range.gt || range.gte) {
    double lo = range.gt && range.gte ? std::max(*range.gt, *range.gte)
                                      : (range.gt ? *range.gt : *range.gte);
    begin = std::partition_point(sorted_.begin(), sorted_.end(),
                                 [lo](const Entry& e) { return e.value < lo; });
  }
  if (range.lt || range.lte) {
    double hi = range.lt && range.lte ? std::min(*range.lt, *range.lte)
                                      : (range.lt ? *range.lt : *range.lte);
    end =
        std::partition_point(begin, sorted_.end(), [hi](const Entry& e) { return e.value <= hi; });
  }
  for (auto it = begin; it != end; ++it) {
    if (!it->dead && range.Contains(it->value)) rows->push_back(it->row);
  }
  for (const Entry& e : pending_) {
    if (range.Contains(e.value)) rows->push_back(e.row);
  }
  return Status::OK();
}

size_t MemoryRangeIndex::MemoryBytes() const {
  return sizeof(*this) + (sorted_.capacity() + pending_.capacity()) * sizeof(Entry);
}

// ---------------------------------------------------------------------------------------------
// FieldIndex

FieldIndex::FieldIndex(JsonPath path, PayloadSchemaType type,
                       std::unique_ptr<NumericRangeIndex> range)
    : path_(std::move(path)), type_(type) {
  if (has_range()) range_ = range ? std::move(range) : std::make_unique<MemoryRangeIndex>();
}

Result<std::unique_ptr<FieldIndex>> FieldIndex::Build(const std::string& field,
                                                      PayloadSchemaType type, const RowSource& rows,
                                                      std::unique_ptr<NumericRangeIndex> range) {
  auto path = JsonPath::Parse(field, "payload index field");
  if (!path.ok()) return path.status();
  auto idx = std::make_unique<FieldIndex>(std::move(path).value(), type, std::move(range));
  if (idx->range_) idx->range_->BeginBulk();
  if (rows) rows([&](InternalId row, const Json& payload) { idx->Insert(row, payload); });
  if (idx->range_) VECTORD_RETURN_IF_ERROR(idx->range_->EndBulk());
  return idx;
}

bool FieldIndex::ForEachIndexed(const Json& payload,
                                const std::function<void(const Json&)>& fn) const {
  std::vector<const Json*> vals;
  path_.ResolveFlat(payload, &vals);
  bool other = false;
  for (const Json* v : vals) {
    if (v->is_null()) continue;
    bool take = false;
    switch (type_) {
      case PayloadSchemaType::kKeyword:
        take = v->is_string();
        break;
      case PayloadSchemaType::kInteger:
        take = IsInt64(*v);
        break;
      case PayloadSchemaType::kFloat:
        take = v->is_number() && std::isfinite(v->get<double>());
        break;
      case PayloadSchemaType::kBool:
        take = v->is_boolean();
        break;
    }
    if (take) {
      fn(*v);
    } else {
      other = true;
    }
  }
  return other;
}

void FieldIndex::Insert(InternalId row, const Json& payload) {
  bool any = false;
  bool other = ForEachIndexed(payload, [&](const Json& v) {
    any = true;
    switch (type_) {
      case PayloadSchemaType::kKeyword:
        keywords_[v.get<std::string>()].add(row);
        break;
      case PayloadSchemaType::kInteger: {
        int64_t n = v.get<int64_t>();
        integers_[n].add(row);
        range_->Insert(static_cast<double>(n), row);
        break;
      }
      case PayloadSchemaType::kFloat:
        range_->Insert(v.get<double>(), row);
        break;
      case PayloadSchemaType::kBool:
        bools_[v.get<bool>() ? 1 : 0].add(row);
        break;
    }
  });
  if (any) indexed_.add(row);
  if (other) uncovered_.add(row);
}

void FieldIndex::Erase(InternalId row, const Json& payload) {
  ForEachIndexed(payload, [&](const Json& v) {
    switch (type_) {
      case PayloadSchemaType::kKeyword: {
        auto it = keywords_.find(v.get_ref<const std::string&>());
        if (it != keywords_.end()) {
          it->second.remove(row);
          if (it->second.isEmpty()) keywords_.erase(it);
        }
        break;
      }
      case PayloadSchemaType::kInteger: {
        int64_t n = v.get<int64_t>();
        auto it = integers_.find(n);
        if (it != integers_.end()) {
          it->second.remove(row);
          if (it->second.isEmpty()) integers_.erase(it);
        }
        range_->Erase(static_cast<double>(n), row);
        break;
      }
      case PayloadSchemaType::kFloat:
        range_->Erase(v.get<double>(), row);
        break;
      case PayloadSchemaType::kBool:
        bools_[v.get<bool>() ? 1 : 0].remove(row);
        break;
    }
  });
  indexed_.remove(row);
  uncovered_.remove(row);
}

void FieldIndex::EraseRows(const Roaring& rows) {
  if (rows.isEmpty()) return;
  for (auto it = keywords_.begin(); it != keywords_.end();) {
    it->second -= rows;
    it = it->second.isEmpty() ? keywords_.erase(it) : std::next(it);
  }
  for (auto it = integers_.begin(); it != integers_.end();) {
    it->second -= rows;
    it = it->second.isEmpty() ? integers_.erase(it) : std::next(it);
  }
  bools_[0] -= rows;
  bools_[1] -= rows;
  indexed_ -= rows;
  uncovered_ -= rows;
  if (range_) range_->EraseRows(rows);
}

void FieldIndex::Compact() {
  if (auto* mem = dynamic_cast<MemoryRangeIndex*>(range_.get())) mem->Compact();
}

const Roaring* FieldIndex::FindKeyword(const std::string& v) const {
  auto it = keywords_.find(v);
  return it == keywords_.end() ? nullptr : &it->second;
}

const Roaring* FieldIndex::FindInteger(int64_t v) const {
  auto it = integers_.find(v);
  return it == integers_.end() ? nullptr : &it->second;
}

const Roaring* FieldIndex::FindBool(bool v) const {
  if (type_ != PayloadSchemaType::kBool) return nullptr;
  return &bools_[v ? 1 : 0];
}

void FieldIndex::ForEachKeyword(
    const std::function<void(const std::string&, const Roaring&)>& fn) const {
  for (const auto& [k, r] : keywords_) fn(k, r);
}

void FieldIndex::ForEachInteger(const std::function<void(int64_t, const Roaring&)>& fn) const {
  for (const auto& [k, r] : integers_) fn(k, r);
}

Roaring FieldIndex::RangeRows(const Range& range, Status* error) const {
  if (!range_) return Roaring();
  std::vector<uint32_t> rows;
  Status st = range_->CollectRange(range, &rows);
  if (!st.ok() && error != nullptr && error->ok())
    *error = st.WithContext("index on '" + field() + "'");
  return RowsToRoaring(&rows);
}

FieldIndex::Values FieldIndex::ExportValues() const {
  Values v;
  v.indexed = indexed_;
  v.uncovered = uncovered_;
  for (const auto& [k, r] : keywords_) v.keywords.emplace(k, r);
  v.integers = integers_;
  v.bools[0] = bools_[0];
  v.bools[1] = bools_[1];
  return v;
}

void FieldIndex::RestoreValues(Values v) {
  indexed_ = std::move(v.indexed);
  uncovered_ = std::move(v.uncovered);
  keywords_.clear();
  for (auto& [k, r] : v.keywords) keywords_.emplace(k, std::move(r));
  integers_ = std::move(v.integers);
  bools_[0] = std::move(v.bools[0]);
  bools_[1] = std::move(v.bools[1]);
}

size_t FieldIndex::MemoryBytes() const {
  // Map nodes: roughly two pointers and a hash/color word beside key and value.
  constexpr size_t kNode = 32;
  size_t n = sizeof(*this) + RoaringBytes(indexed_) + RoaringBytes(uncovered_) +
             RoaringBytes(bools_[0]) + RoaringBytes(bools_[1]);
  for (const auto& [k, r] : keywords_) n += kNode + sizeof(k) + k.capacity() + RoaringBytes(r);
  for (const auto& [k, r] : integers_) n += kNode + sizeof(k) + RoaringBytes(r);
  if (range_) n += range_->MemoryBytes();
  return n;
}

// ---------------------------------------------------------------------------------------------
// PayloadIndexSet

std::unique_ptr<NumericRangeIndex> PayloadIndexSet::MakeRange(const std::string& field,
                                                              PayloadSchemaType type) const {
  if (type != PayloadSchemaType::kInteger && type != PayloadSchemaType::kFloat) return nullptr;
  if (range_factory_) return range_factory_(field, type);
  return std::make_unique<MemoryRangeIndex>();
}

Status PayloadIndexSet::Create(const std::string& field, PayloadSchemaType type,
                               const RowSource& rows) {
  auto idx = FieldIndex::Build(field, type, rows, MakeRange(field, type));
  if (!idx.ok()) return idx.status();
  Install(std::move(idx).value());
  return Status::OK();
}

void PayloadIndexSet::Install(std::unique_ptr<FieldIndex> index) {
  const std::string field = index->field();
  fields_[field] = std::move(index);
}

bool PayloadIndexSet::Drop(const std::string& field) { return fields_.erase(field) > 0; }

void PayloadIndexSet::Insert(InternalId row, const Json& payload) {
  for (auto& [f, idx] : fields_) idx->Insert(row, payload);
}

void PayloadIndexSet::Erase(InternalId row, const Json& payload) {
  for (auto& [f, idx] : fields_) idx->Erase(row, payload);
}

void PayloadIndexSet::Update(InternalId row, const Json& old_payload, const Json& new_payload) {
  Erase(row, old_payload);
  Insert(row, new_payload);
}

void PayloadIndexSet::EraseRows(const Roaring& rows) {
  for (auto& [f, idx] : fields_) idx->EraseRows(rows);
}

const FieldIndex* PayloadIndexSet::Get(const std::string& field) const {
  auto it = fields_.find(field);
  return it == fields_.end() ? nullptr : it->second.get();
}

FieldIndex* PayloadIndexSet::GetMutable(const std::string& field) {
  auto it = fields_.find(field);
  return it == fields_.end() ? nullptr : it->second.get();
}

std::vector<std::string> PayloadIndexSet::Fields() const {
  std::vector<std::string> out;
  for (const auto& [f, idx] : fields_) out.push_back(f);
  return out;
}

std::vector<PayloadIndexInfo> PayloadIndexSet::List() const {
  std::vector<PayloadIndexInfo> out;
  for (const auto& [f, idx] : fields_) {
    out.push_back(
        PayloadIndexInfo{f, idx->type(), idx->indexed().cardinality(), idx->MemoryBytes()});
  }
  return out;
}

}  // namespace vectord::index
