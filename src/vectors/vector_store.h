// VectorStore: a collection's vectors. Every row lives in the append-only vector file
// (storage/vector_file.h, checksummed records addressed by row); the rows that no SSD index serves
// yet — all of them until a SPANN index exists, then only those written after it took its rows —
// also live in a RAM tail (RowBuffer) that exact search scans. Multi-vector collections keep their
// documents' MUVERA encodings here (one row each). docs/storage.md "Vector store".
//
// Locking (the collection's): Append / Sync / TruncateFile under its write lock (one writer);
// ApplyAppend / DropRamBelow under its exclusive lock; every other method under its shared lock.
#pragma once

#include <cstdint>
#include <memory>
#include <roaring/roaring.hh>
#include <string>
#include <vector>

#include "index/flat_search.h"
#include "src/vectors/row_buffer.h"
#include "storage/vector_file.h"
#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord {

class VectorStore {
 public:
  // Opens the vector file at `path` (created when missing) for rows of `dim` elements of `type`,
  // scored by `metric` (Cosine rows are stored unit-length and scored as Dot). The RAM tail is
  // empty until LoadRam.
  static Result<std::unique_ptr<VectorStore>> Open(const std::string& path, uint32_t dim,
                                                   DataType type, Distance metric);

  uint32_t dim() const { return dim_; }
  DataType type() const { return type_; }
  Distance metric() const { return metric_; }
  uint32_t row_bytes() const { return row_bytes_; }
  const std::string& path() const { return file_->path(); }

  // Recovery, before any reader: complete records in the file; drop the rows from `rows` on (a
  // crash between the append and the metadata commit).
  uint64_t file_rows() const { return file_->rows(); }
  Status TruncateFile(uint64_t rows) { return file_->Truncate(rows); }
  // rows() = file_rows(); rows [ram_base, rows()) are read into the RAM tail.
  Status LoadRam(uint64_t ram_base);

  // Write side: `n` rows (n * row_bytes() bytes) appended to the file as rows file_rows().. (not
  // synced); readers see them after ApplyAppend. Truncating back undoes a failed commit.
  Status Append(const uint8_t* rows, uint64_t n) { return file_->Append(rows, n); }
  Status Sync() { return file_->Sync(); }
  // Checks one vector (`dim` floats) and appends its stored bytes to `out`; errors start with
  // `where`.
  Status Encode(const std::string& where, const float* v, std::vector<uint8_t>* out) const;

  // RAM state.
  void ApplyAppend(const uint8_t* rows, uint64_t n);
  // Rows below `row` are served from SSD from now on: their RAM copy is freed. Fails (and changes
  // nothing) only when the file cannot be reopened for reading.
  Status DropRamBelow(uint64_t row);
  uint64_t rows() const { return rows_; }
  uint64_t ram_base() const { return ram_base_; }
  // Row `row` in [ram_base(), rows()).
  const uint8_t* ram_row(uint64_t row) const {
    return ram_.data() + (row - ram_base_) * uint64_t{row_bytes_};
  }
  size_t ram_bytes() const { return ram_.capacity(); }

  // Rows [first, first + n) of any kind (RAM or file, checksums verified) into `out`.
  Status Read(uint64_t first, uint64_t n, uint8_t* out) const;
  Result<std::vector<float>> Decode(InternalId row) const;

  // Exact top-k over the RAM rows [first, end) (clamped to the tail) that are in `allowed`.
  std::vector<index::Neighbor> SearchRam(const float* q, size_t k, uint64_t first, uint64_t end,
                                         const Roaring& allowed) const;
  // Exact top-k over every row in `allowed`: the file's rows below ram_base() in 8 MiB chunks
  // (checksummed), then the RAM tail.
  Result<std::vector<index::Neighbor>> SearchAll(const float* q, size_t k,
                                                 const Roaring& allowed) const;

 private:
  VectorStore(uint32_t dim, DataType type, Distance metric);

  const uint32_t dim_;
  const DataType type_;
  const Distance metric_;
  const uint32_t row_bytes_;
  std::unique_ptr<storage::VectorFile> file_;    // appends (write side)
  std::unique_ptr<storage::VectorFile> reader_;  // reads of file rows (pread: thread-safe)
  uint64_t rows_ = 0;
  uint64_t ram_base_ = 0;
  RowBuffer ram_;  // rows [ram_base_, rows_)
};

}  // namespace vectord
