// Payload layouts of SPANN posting lists (the bytes inside a posting-file list; the file adds the
// page trailers and checksums): encoding from (id, code) entries, validated views, and the scans
// that turn a list into distances. docs/spann.md "Posting-list payloads" has the byte tables.
//
//   kFull: [u32 count][u32 id x count][row_bytes x count raw vectors, the collection's dtype]
//   kPq4:  [u32 count][u32 id x count][ceil(count/32) fast-scan blocks of FastScanBlockBytes(m)]
//   kPq8:  [u32 count][u32 id x count][m bytes x count 8-bit PQ codes]
// A list written by the living index's updater also carries each entry's row version (SPFresh's
// replica versions: an entry is valid while its version is its row's current one) — bit 31 of the
// count word is set and [u8 version x count, zero-padded to a multiple of 4 bytes] follows the
// ids; lists without it (written by the builder) hold version 0 throughout.
// All integers little-endian. Distances are "lower is better": squared L2, or -inner product.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/fast_scan.h"
#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord::index {

enum class PostingLayout : uint32_t { kFull = 0, kPq4 = 1, kPq8 = 2 };
const char* PostingLayoutName(PostingLayout l);  // "full", "pq4", "pq8"

struct PostingView {
  uint32_t count = 0;
  const uint8_t* ids = nullptr;       // count little-endian u32 (4-byte aligned in practice)
  const uint8_t* versions = nullptr;  // count versions, or null: all 0
  const uint8_t* data = nullptr;      // vectors or codes
  uint32_t id(uint32_t i) const {
    uint32_t v;
    __builtin_memcpy(&v, ids + size_t{i} * 4, 4);
    return v;
  }
  uint8_t version(uint32_t i) const { return versions ? versions[i] : 0; }
};

// Bit 31 of a payload's count word: a version byte per entry follows the ids.
inline constexpr uint32_t kPostingVersionedFlag = 0x80000000u;

class PostingCodec {
 public:
  // kFull: entry_bytes = the row's bytes (dim x dtype size). kPq4/kPq8: m subquantizers.
  PostingCodec(PostingLayout layout, uint32_t entry_bytes, uint32_t m)
      : layout_(layout), entry_bytes_(entry_bytes), m_(m) {}

  PostingLayout layout() const { return layout_; }
  // Bytes of one entry's vector or code as Encode takes it (kPq4: ceil(m/2), Encode's layout).
  uint32_t entry_bytes() const { return entry_bytes_; }
  // Payload bytes of a list of `count` entries (with a version byte each when `versioned`).
  size_t EncodedBytes(uint32_t count, bool versioned = false) const;
  // Bytes per entry on disk, id included, averaged (for the posting file's header and stats).
  double BytesPerEntry() const;

  // ids: count ids; codes: count x entry_bytes() bytes in the same order; versions: count
  // versions, or null for the builder's unversioned form. Replaces *out.
  void Encode(const uint32_t* ids, const uint8_t* codes, uint32_t count, std::vector<uint8_t>* out,
              const uint8_t* versions = nullptr) const;
  // Entry i's code as Encode takes it (entry_bytes() bytes; kPq4 unpacks its fast-scan block).
  void EntryCode(const PostingView& v, uint32_t i, uint8_t* out) const;
  // Checks that `bytes` matches the count in the payload; Corruption naming `list` otherwise.
  Status View(const uint8_t* payload, size_t bytes, uint32_t list, PostingView* v) const;

 private:
  PostingLayout layout_;
  uint32_t entry_bytes_;
  uint32_t m_;
};

// kFull scan: out[i] = distance of the query to vector i (squared L2, or -IP for kDot/kCosine).
void ScanFull(const PostingView& v, const float* q, uint32_t dim, DataType dtype, bool ip,
              float* out);
// kPq4 scan: out[i] (i < ceil(count/32)*32) = quantized table sums; FastScanToFloat gives floats.
void ScanPq4(const PostingView& v, uint32_t m, const QuantizedLut& lut, uint16_t* out);
// kPq8 scan: out[i] = sum of float table entries (m x 256 table).
void ScanPq8(const PostingView& v, uint32_t m, const float* lut, float* out);

// Distance of a float query to one stored row of `dtype` (squared L2 or -IP); the re-ranker's.
float RowDistance(const float* q, const uint8_t* row, uint32_t dim, DataType dtype, bool ip);
// Row bytes converted to float (n x dim values).
void RowsToFloat(const uint8_t* rows, size_t n, uint32_t dim, DataType dtype, float* out);

}  // namespace vectord::index
