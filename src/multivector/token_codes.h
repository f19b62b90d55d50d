// TokenCodes: an 8-bit copy of every token vector of a multi-vector collection, kept in RAM for
// the first stage of the two-stage re-rank (docs/muvera.md "Two-stage re-rank"): MUVERA's
// candidates are scored by approximate Chamfer on these codes (index/chamfer_int8.h) and only the
// best few by exact Chamfer over the stored float vectors.
//
// Not persisted: derived from the stored token sets (the same decoded floats that exact Chamfer
// scores) when a collection opens and from each upsert's batch, so it always matches the token
// files: rows are appended with them, never changed, and a deleted point's row is simply never a
// candidate. Encoding is deterministic, so a restart gives the same codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>

#include "src/vectors/row_buffer.h"

namespace vectord {

class TokenCodes {
 public:
  explicit TokenCodes(uint32_t dim);

  uint32_t dim() const { return dim_; }
  uint32_t row_bytes() const { return row_bytes_; }  // one encoded token vector
  uint64_t sets() const { return first_.size() / sizeof(uint64_t) - 1; }
  // RAM held: the encoded vectors and 8 bytes per set.
  size_t bytes() const { return codes_.size() + first_.size(); }

  // Appends n sets of counts[i] vectors each; returns where their encoded rows go (sum(counts) *
  // row_bytes() bytes, zero), for the caller to fill (index::EncodeInt8Rows) before any reader
  // sees the new sets. The pointer is valid until the next append.
  uint8_t* Append(const uint32_t* counts, size_t n);
  // The same with the rows already encoded (`rows`: sum(counts) * row_bytes() bytes).
  void Append(const uint32_t* counts, size_t n, const uint8_t* rows);
  // Set i's encoded rows (*count receives its vector count), or null when set i could not be
  // read to encode it (MarkUnreadable).
  const uint8_t* Set(uint64_t i, uint32_t* count) const {
    const uint64_t* f = reinterpret_cast<const uint64_t*>(first_.data());
    *count = static_cast<uint32_t>(f[i + 1] - f[i]);
    if (!unreadable_.empty() && unreadable_.contains(i)) return nullptr;
    return codes_.data() + f[i] * row_bytes_;
  }
  // Set i's stored vectors failed their checksum when the copy was made (on_disk collections,
  // whose sets are otherwise checked when a query reads them): it has no codes.
  void MarkUnreadable(uint64_t i) { unreadable_.insert(i); }

 private:
  const uint32_t dim_;
  const uint32_t row_bytes_;
  RowBuffer codes_;  // every set's encoded vectors, in row order
  RowBuffer first_;  // sets() + 1 uint64: set i is vectors [first[i], first[i + 1])
  std::set<uint64_t> unreadable_;
};

}  // namespace vectord
