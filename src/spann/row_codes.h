// RowCodes: one 8-bit PQ code per indexed row, kept in RAM (issue 4, docs/filters.md "Code scan").
// A SPANN collection's rows live on SSD; for a filter that matches few or a middling share of
// rows, the query planner scores every matching row from these codes (one look-up-table sum per
// row, no I/O), keeps the best R and re-ranks only those with exact distances read from the
// vector file: ~R page reads instead of one per match. Built with the SPANN index
// (spann_builder.h) into `rowcodes.vdc` (docs/formats.md "Row codes"), loaded by SpannIndex.
// Costs code_bytes per row of RAM (8 at 128-d by default).
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

  // Scores the rows of `allowed` below `end_row` (and below rows()) from their codes and keeps the
  // best `r` as (approximate distance, row) pairs in *out, in ascending row order (smaller is
  // closer; for Dot/Cosine the negated inner product). *scored += rows scored.
  void BestRows(const float* q, const Roaring& allowed, uint64_t end_row, size_t r,
                std::vector<std::pair<float, uint32_t>>* out, uint64_t* scored) const;

  uint64_t rows() const { return rows_; }
  const uint8_t* code(uint64_t row) const { return codes_.data() + row * code_bytes(); }
  uint32_t code_bytes() const { return pq_.params().m; }
  const index::ProductQuantizer& pq() const { return pq_; }
  size_t MemoryBytes() const { return codes_.size() + pq_.centroids().size() * sizeof(float); }

 private:
  RowCodes(index::ProductQuantizer pq, bool ip) : pq_(std::move(pq)), ip_(ip) {}

  index::ProductQuantizer pq_;
  bool ip_;  // inner-product tables (Dot, Cosine) instead of L2
  uint64_t rows_ = 0;
  std::vector<uint8_t> codes_;  // rows_ x m
};

}  // namespace vectord
