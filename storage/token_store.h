// TokenStore: the durable token vectors of a multi-vector collection (one variable-size set of
// vectors per row), as two append-only files beside the collection's vector file:
//   tokens.vdt  the sets: per row one record {row, count, count x dim elements, CRC-32C}
//   tokens.vdo  the offsets table: per row {offset of its record in tokens.vdt, count, CRC-32C}
// Format: docs/formats.md "Token files". The offsets table (16 bytes per row) is read once at open;
// the engine keeps it in RAM (TokenSpan, 12 bytes per row) and reads sets by offset.
//
// Threading: writer methods (Append, Sync, Truncate) are serialized by the caller. ReadSets is
// thread-safe and may run concurrently with an Append (it reads only records the caller knows
// are complete).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord::storage {

#pragma pack(push, 4)
struct TokenSpan {
  uint64_t offset = 0;  // of the row's record in tokens.vdt
  uint32_t count = 0;   // vectors in the set
};
#pragma pack(pop)
static_assert(sizeof(TokenSpan) == 12);

class TokenStore {
 public:
  static constexpr char kDataMagic[8] = {'V', 'D', 'T', 'O', 'K', 'D', '0', '1'};
  static constexpr char kIndexMagic[8] = {'V', 'D', 'T', 'O', 'K', 'O', '0', '1'};
  static constexpr uint32_t kVersion = 1;
  static constexpr uint32_t kHeaderBytes = 4096;
  static constexpr uint32_t kEntryBytes = 16;      // offsets-table entry
  static constexpr uint32_t kRecordOverhead = 12;  // row, count, CRC

  // Opens (creating if missing) `<prefix>.vdt` and `<prefix>.vdo`. Existing files must match
  // dim and dtype (else Corruption naming the file). *spans receives every complete, intact
  // entry of the offsets table, in row order; a torn or unverifiable tail (a crash mid-append)
  // is cut off there. An entry whose record lies past the data file's end ends the table too.
  static Result<std::unique_ptr<TokenStore>> Open(const std::string& prefix, uint32_t dim,
                                                  DataType dtype, std::vector<TokenSpan>* spans);
  ~TokenStore();
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  uint32_t dim() const { return dim_; }
  DataType dtype() const { return dtype_; }
  uint32_t vector_bytes() const { return vector_bytes_; }  // one token vector, stored
  uint64_t rows() const { return rows_; }                  // entries in the offsets table

  // Appends the sets of rows [rows(), rows() + counts.size()): `data` holds every set's vectors
  // back to back (sum(counts) * vector_bytes() bytes). spans_out receives their spans. Written
  // with pwrite, not synced.
  // records_out (optional) receives the appended records exactly as written (a RAM mirror of
  // the data file; ReadAll gives the rest).
  Status Append(const uint8_t* data, const std::vector<uint32_t>& counts,
                std::vector<TokenSpan>* spans_out, std::vector<uint8_t>* records_out = nullptr);
  // The data file's records [kHeaderBytes, data_size()) into *out, every record of `spans`
  // verified (CRC, row, count): for collections that keep their token sets in RAM.
  Status ReadAll(const std::vector<TokenSpan>& spans, std::vector<uint8_t>* out) const;
  // The stored vectors of the record at `rec` (as in a RAM mirror: offset - kHeaderBytes).
  static const uint8_t* RecordVectors(const uint8_t* rec) { return rec + 8; }
  Status Sync();  // fdatasync of both files
  // Drops rows >= rows; `data_end` is the offset where row `rows`'s record began (the data file
  // is cut there), or the current end when rows == rows().
  Status Truncate(uint64_t rows, uint64_t data_end);
  uint64_t data_size() const { return data_size_.load(std::memory_order_acquire); }

  // Reads the sets at `spans` (n of them, any order) in one batch of reads (io_uring with
  // O_DIRECT where the filesystem allows, else buffered preads), checks every record's CRC and
  // row number (rows[i]), and copies the stored vectors out: set i is vectors
  // [offsets[i], offsets[i+1]) of `out` (vector_bytes() each). offsets gets n + 1 entries.
  // Corruption names the row.
  Status ReadSets(const TokenSpan* spans, const uint32_t* rows, size_t n, std::vector<uint8_t>* out,
                  std::vector<uint64_t>* offsets) const;

  uint64_t pages_read() const { return pages_read_.load(std::memory_order_relaxed); }

 private:
  TokenStore(std::string prefix, uint32_t dim, DataType dtype);

  std::string data_path_, index_path_;
  int data_fd_ = -1, index_fd_ = -1, direct_fd_ = -1;  // direct_fd_: O_DIRECT, or -1
  uint32_t dim_;
  DataType dtype_;
  uint32_t vector_bytes_;
  uint64_t rows_ = 0;
  std::atomic<uint64_t> data_size_{0};
  mutable std::atomic<uint64_t> pages_read_{0};
};

}  // namespace vectord::storage
