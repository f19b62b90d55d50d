// VectorStore (vector_store.h).
#include "src/vectors/vector_store.h"

#include <algorithm>

#include "src/vectors/vector_codec.h"

namespace vectord {

VectorStore::VectorStore(uint32_t dim, DataType type, Distance metric)
    : dim_(dim),
      type_(type),
      metric_(metric),
      row_bytes_(dim * static_cast<uint32_t>(DataTypeSize(type))) {}

Result<std::unique_ptr<VectorStore>> VectorStore::Open(const std::string& path, uint32_t dim,
                                                       DataType type, Distance metric) {
  std::unique_ptr<VectorStore> vs(new VectorStore(dim, type, metric));
  VECTORD_ASSIGN_OR_RETURN(vs->file_, storage::VectorFile::Open(path, dim, type));
  VECTORD_ASSIGN_OR_RETURN(vs->reader_, storage::VectorFile::Open(path, dim, type));
  return vs;
}

Status VectorStore::LoadRam(uint64_t ram_base) {
  rows_ = file_->rows();
  ram_base_ = std::min(ram_base, rows_);
  ram_.clear();
  ram_.resize((rows_ - ram_base_) * row_bytes_);
  const uint64_t chunk = 16384;
  for (uint64_t first = ram_base_; first < rows_; first += chunk) {
    const uint64_t n = std::min(chunk, rows_ - first);
    VECTORD_RETURN_IF_ERROR(file_->Read(first, n, ram_.data() + (first - ram_base_) * row_bytes_));
  }
  // The read handle learns the current size (rows appended from here on are read through it).
  VECTORD_ASSIGN_OR_RETURN(reader_, storage::VectorFile::Open(file_->path(), dim_, type_));
  return Status::OK();
}

Status VectorStore::Encode(const std::string& where, const float* v,
                           std::vector<uint8_t>* out) const {
  const size_t base = out->size();
  out->resize(base + row_bytes_);
  return EncodeElements(where, v, dim_, type_, metric_ == Distance::kCosine, out->data() + base);
}

void VectorStore::ApplyAppend(const uint8_t* rows, uint64_t n) {
  ram_.append(rows, n * row_bytes_);
  rows_ += n;
}

Status VectorStore::DropRamBelow(uint64_t row) {
  row = std::min(row, rows_);
  if (row <= ram_base_) return Status::OK();
  if (row > reader_->rows()) {
    // The read handle counts the rows there were when it opened: one that sees the new ones.
    VECTORD_ASSIGN_OR_RETURN(reader_, storage::VectorFile::Open(file_->path(), dim_, type_));
  }
  ram_.erase_front((row - ram_base_) * row_bytes_);
  ram_base_ = row;
  return Status::OK();
}

Status VectorStore::Read(uint64_t first, uint64_t n, uint8_t* out) const {
  if (first + n > rows_) {
    return Status::InvalidArgument("rows [" + std::to_string(first) + ", " +
                                   std::to_string(first + n) + ") of '" + path() + "' past " +
                                   std::to_string(rows_) + " rows");
  }
  // File part (below the RAM tail), then the RAM part.
  const uint64_t file_end = std::min(first + n, ram_base_);
  if (first < file_end) VECTORD_RETURN_IF_ERROR(reader_->Read(first, file_end - first, out));
  for (uint64_t r = std::max(first, ram_base_); r < first + n; ++r) {
    std::copy_n(ram_row(r), row_bytes_, out + (r - first) * row_bytes_);
  }
  return Status::OK();
}

Result<std::vector<float>> VectorStore::Decode(InternalId row) const {
  std::vector<uint8_t> buf(row_bytes_);
  VECTORD_RETURN_IF_ERROR(Read(row, 1, buf.data()));
  std::vector<float> v(dim_);
  DecodeElements(buf.data(), dim_, type_, v.data());
  return v;
}

namespace {

// Top-k over `n` rows at `data` holding rows [first, first + n), limited to `allowed`.
std::vector<index::Neighbor> SearchRows(const uint8_t* data, uint64_t first, uint64_t n,
                                        uint32_t dim, DataType type, Distance metric,
                                        const float* q, size_t k, const Roaring& allowed) {
  if (n == 0) return {};
  Roaring range;
  range.addRange(first, first + n);
  range &= allowed;
  std::vector<uint32_t> ids(range.cardinality());
  range.toUint32Array(ids.data());
  for (auto& id : ids) id -= static_cast<uint32_t>(first);
  Roaring shifted(ids.size(), ids.data());
  index::FlatView view{data, n, dim, type, metric};
  index::RowFilter rf;
  rf.allowed = &shifted;
  auto hits = index::FlatSearch(view, q, k, rf);
  for (auto& h : hits) h.row += static_cast<uint32_t>(first);
  return hits;
}

}  // namespace

std::vector<index::Neighbor> VectorStore::SearchRam(const float* q, size_t k, uint64_t first,
                                                    uint64_t end, const Roaring& allowed) const {
  first = std::max(first, ram_base_);
  end = std::min(end, rows_);
  if (first >= end) return {};
  return SearchRows(ram_row(first), first, end - first, dim_, type_, metric_, q, k, allowed);
}

Result<std::vector<index::Neighbor>> VectorStore::SearchAll(const float* q, size_t k,
                                                            const Roaring& allowed) const {
  const bool lower = LowerIsBetter(metric_);
  auto better = [&](const index::Neighbor& a, const index::Neighbor& b) {
    if (a.score != b.score) return lower ? a.score < b.score : a.score > b.score;
    return a.row < b.row;
  };
  std::vector<index::Neighbor> best;
  auto merge = [&](std::vector<index::Neighbor> more) {
    best.insert(best.end(), more.begin(), more.end());
    std::sort(best.begin(), best.end(), better);
    if (best.size() > k) best.resize(k);
  };
  const uint64_t chunk = std::max<uint64_t>(1, (8u << 20) / row_bytes_);
  std::vector<uint8_t> buf;
  for (uint64_t first = 0; first < ram_base_; first += chunk) {
    const uint64_t n = std::min(chunk, ram_base_ - first);
    buf.resize(n * row_bytes_);
    VECTORD_RETURN_IF_ERROR(reader_->Read(first, n, buf.data()));
    merge(SearchRows(buf.data(), first, n, dim_, type_, metric_, q, k, allowed));
  }
  merge(SearchRam(q, k, ram_base_, rows_, allowed));
  return best;
}

}  // namespace vectord
