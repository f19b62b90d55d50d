// Posting-list payload layouts and scans (see posting_codec.h).
#include "index/posting_codec.h"

#include <cstring>
#include <string>

#include "index/distance.h"

namespace vectord::index {

const char* PostingLayoutName(PostingLayout l) {
  switch (l) {
    case PostingLayout::kFull:
      return "full";
    case PostingLayout::kPq4:
      return "pq4";
    case PostingLayout::kPq8:
      return "pq8";
  }
  return "?";
}

namespace {
size_t VersionBytes(uint32_t count) { return (size_t{count} + 3) / 4 * 4; }
}  // namespace

size_t PostingCodec::EncodedBytes(uint32_t count, bool versioned) const {
  size_t b = 4 + size_t{count} * 4 + (versioned ? VersionBytes(count) : 0);
  switch (layout_) {
    case PostingLayout::kFull:
    case PostingLayout::kPq8:
      return b + size_t{count} * entry_bytes_;
    case PostingLayout::kPq4:
      return b + (size_t{count} + kFastScanBlock - 1) / kFastScanBlock * FastScanBlockBytes(m_);
  }
  return b;
}

double PostingCodec::BytesPerEntry() const {
  if (layout_ == PostingLayout::kPq4) return 4.0 + FastScanBlockBytes(m_) / 32.0;
  return 4.0 + entry_bytes_;
}

void PostingCodec::Encode(const uint32_t* ids, const uint8_t* codes, uint32_t count,
                          std::vector<uint8_t>* out, const uint8_t* versions) const {
  const bool versioned = versions != nullptr;
  out->assign(EncodedBytes(count, versioned), 0);
  uint8_t* p = out->data();
  const uint32_t word = count | (versioned ? kPostingVersionedFlag : 0);
  std::memcpy(p, &word, 4);
  if (count == 0) return;  // ids/codes may be null for an empty list
  std::memcpy(p + 4, ids, size_t{count} * 4);
  uint8_t* data = p + 4 + size_t{count} * 4;
  if (versioned) {
    std::memcpy(data, versions, count);
    data += VersionBytes(count);
  }
  if (layout_ == PostingLayout::kPq4) {
    PackFastScan(codes, count, m_, data);
  } else {
    std::memcpy(data, codes, size_t{count} * entry_bytes_);
  }
}

Status PostingCodec::View(const uint8_t* payload, size_t bytes, uint32_t list,
                          PostingView* v) const {
  uint32_t count = 0;
  if (bytes >= 4) std::memcpy(&count, payload, 4);
  const bool versioned = (count & kPostingVersionedFlag) != 0;
  count &= ~kPostingVersionedFlag;
  if (bytes < 4 || EncodedBytes(count, versioned) != bytes) {
    return Status::Corruption("posting list " + std::to_string(list) + ": payload of " +
                              std::to_string(bytes) + " bytes does not hold " +
                              std::to_string(count) + " " + PostingLayoutName(layout_) +
                              " entries");
  }
  v->count = count;
  v->ids = payload + 4;
  v->versions = versioned ? payload + 4 + size_t{count} * 4 : nullptr;
  v->data = payload + 4 + size_t{count} * 4 + (versioned ? VersionBytes(count) : 0);
  return Status::OK();
}

void PostingCodec::EntryCode(const PostingView& v, uint32_t i, uint8_t* out) const {
  if (layout_ == PostingLayout::kPq4) {
    UnpackFastScanCode(v.data, i, m_, out);
  } else {
    std::memcpy(out, v.data + size_t{i} * entry_bytes_, entry_bytes_);
  }
}

float RowDistance(const float* q, const uint8_t* row, uint32_t dim, DataType dtype, bool ip) {
  switch (dtype) {
    case DataType::kFloat32:
      return ip ? -IpF32(q, reinterpret_cast<const float*>(row), dim)
                : L2SqrF32(q, reinterpret_cast<const float*>(row), dim);
    case DataType::kUint8:
      return ip ? -IpF32U8(q, row, dim) : L2SqrF32U8(q, row, dim);
    case DataType::kInt8:
      return ip ? -IpF32I8(q, reinterpret_cast<const int8_t*>(row), dim)
                : L2SqrF32I8(q, reinterpret_cast<const int8_t*>(row), dim);
    case DataType::kFloat16:
      return ip ? -IpF32F16(q, reinterpret_cast<const uint16_t*>(row), dim)
                : L2SqrF32F16(q, reinterpret_cast<const uint16_t*>(row), dim);
  }
  return 0;
}

void RowsToFloat(const uint8_t* rows, size_t n, uint32_t dim, DataType dtype, float* out) {
  const size_t total = n * dim;
  switch (dtype) {
    case DataType::kFloat32:
      if (total != 0) std::memcpy(out, rows, total * sizeof(float));  // empty: rows may be null
      return;
    case DataType::kUint8:
      for (size_t i = 0; i < total; ++i) out[i] = rows[i];
      return;
    case DataType::kInt8:
      for (size_t i = 0; i < total; ++i) out[i] = static_cast<int8_t>(rows[i]);
      return;
    case DataType::kFloat16:
      for (size_t i = 0; i < total; ++i) {
        uint16_t h;
        std::memcpy(&h, rows + 2 * i, 2);
        out[i] = HalfToFloat(h);
      }
      return;
  }
}

void ScanFull(const PostingView& v, const float* q, uint32_t dim, DataType dtype, bool ip,
              float* out) {
  const size_t row_bytes = size_t{dim} * DataTypeSize(dtype);
  for (uint32_t i = 0; i < v.count; ++i) {
    out[i] = RowDistance(q, v.data + i * row_bytes, dim, dtype, ip);
  }
}

void ScanPq4(const PostingView& v, uint32_t m, const QuantizedLut& lut, uint16_t* out) {
  const size_t blocks = (size_t{v.count} + kFastScanBlock - 1) / kFastScanBlock;
  FastScanAccumulate(v.data, blocks, m, lut, out);
}

void ScanPq8(const PostingView& v, uint32_t m, const float* lut, float* out) {
  Scan8(v.data, v.count, m, lut, out);
}

}  // namespace vectord::index
