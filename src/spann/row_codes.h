// RowCodes: one 8-bit PQ code per indexed row, kept in RAM (issue 4, docs/filters.md "Code scan").
// A SPANN collection's rows live on SSD; for a filter that matches few or a middling share of
// rows, the query planner scores every matching row from these codes (one look-up-table sum per
// row, no I/O), keeps the best R and re-ranks only those with exact distances read from the
// vector file: ~R page reads instead of one per match. Built with the SPANN index
// (spann_builder.h) into `rowcodes.vdc` (docs/formats.md "Row codes"), loaded by SpannIndex.
// Read() maps the file (read-only) instead of copying it to the heap: the codes cost page cache
// while filtered searches use them, not resident heap; rows appended later (the living index)
// are kept in a heap tail until the next Write + Read.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <roaring/roaring.hh>
#include <string>
#include <utility>
#include <vector>

#include "index/pq.h"
#include "src/vectors/vector_source.h"
#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord {

inline constexpr char kRowCodesFile[] = "rowcodes.vdc";

// Subquantizers for a requested code size: the largest divisor of dim that is <= bytes (8-bit
// codes: one byte per subquantizer). 0 when bytes is 0.
uint32_t RowCodeSubquantizers(uint32_t dim, uint32_t bytes);

class RowCodes {
 public:
  // Trains an 8-bit PQ with `m` subquantizers on up to 10,000 evenly spaced rows of `src` and
  // encodes every row (`threads` threads). Cosine rows must already be normalized (scored as Dot).
  // Unavailable when *cancel becomes true.
  static Result<std::unique_ptr<RowCodes>> Build(const VectorSource& src, Distance metric,
                                                 uint32_t m, uint64_t seed, unsigned threads,
                                                 const std::atomic<bool>* cancel = nullptr);
  // Encodes `n` stored rows of `dtype` (the rows that follow rows(), in order) with the trained
  // codebooks and appends their codes: the living index's updater keeps the codes covering the
  // rows it assigns. Not thread-safe (the caller excludes readers).
  void Append(const uint8_t* rows, uint64_t n, DataType dtype);
  // Writes `path` (through a temporary file, fsynced, renamed).
  Status Write(const std::string& path) const;
  // Reads and verifies `path`: NotFound when missing, Corruption when its magic, version or
  // checksums do not match or it holds more than `expected_rows` rows (a living index's file may
  // hold fewer: the rows assigned since it was written are encoded again, Append).
  static Result<std::unique_ptr<RowCodes>> Read(const std::string& path, uint64_t expected_rows);

  ~RowCodes();
  RowCodes(const RowCodes&) = delete;
  RowCodes& operator=(const RowCodes&) = delete;

  // Scores the rows of `allowed` below `end_row` (and below rows()) from their codes and keeps the
  // best `r` as (approximate distance, row) pairs in *out, in ascending row order (smaller is
  // closer; for Dot/Cosine the negated inner product). *scored += rows scored.
  void BestRows(const float* q, const Roaring& allowed, uint64_t end_row, size_t r,
                std::vector<std::pair<float, uint32_t>>* out, uint64_t* scored) const;

  uint64_t rows() const { return rows_; }
  const uint8_t* code(uint64_t row) const {
    if (row < mapped_rows_) {
      return map_codes_ + (row >> kBlockShift) * block_stride_ + (row & kBlockMask) * code_bytes();
    }
    return codes_.data() + (row - mapped_rows_) * code_bytes();
  }
  uint32_t code_bytes() const { return pq_.params().m; }
  const index::ProductQuantizer& pq() const { return pq_; }
  // Heap only: the codebooks and the rows appended since the file was read.
  size_t MemoryBytes() const { return codes_.size() + pq_.centroids().size() * sizeof(float); }
  // Codes served from the mapped file (page cache, not heap).
  uint64_t MappedBytes() const { return mapped_rows_ * code_bytes(); }

 private:
  RowCodes(index::ProductQuantizer pq, bool ip) : pq_(std::move(pq)), ip_(ip) {}

  index::ProductQuantizer pq_;
  bool ip_;  // inner-product tables (Dot, Cosine) instead of L2
  // Rows per checksummed block of the file: 2^16, so that code() shifts and masks.
  static constexpr uint32_t kBlockShift = 16;
  static constexpr uint32_t kBlockRows = uint32_t{1} << kBlockShift;
  static constexpr uint64_t kBlockMask = kBlockRows - 1;

  uint64_t rows_ = 0;
  // Rows [0, mapped_rows_) in the mapping: block b's codes at map_codes_ + b * block_stride_
  // (each block's codes are followed by its 4-byte checksum).
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const uint8_t* map_codes_ = nullptr;
  size_t block_stride_ = 0;
  uint64_t mapped_rows_ = 0;
  std::vector<uint8_t> codes_;  // rows [mapped_rows_, rows_), (rows_ - mapped_rows_) x m
};

}  // namespace vectord
