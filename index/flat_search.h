// Exact (brute-force) top-k over a contiguous array of rows: the search path for small
// collections, the ground-truth engine for vectorctl gt, and the re-ranker later.
// CONTRACT (owned by the kernels work; may grow but not change):
#pragma once

#include <cstddef>
#include <cstdint>
#include <roaring/roaring.hh>
#include <vector>

#include "vectord/types.h"

namespace vectord::index {

struct Neighbor {
  float score;  // Qdrant semantics: Euclid = sqrt(L2^2) (lower better); Dot/Cosine = IP
  uint32_t row;
};

// A read-only view of n rows of dim elements of `dtype`, row-major, no padding.
struct FlatView {
  const void* data = nullptr;
  size_t n = 0;
  uint32_t dim = 0;
  DataType dtype = DataType::kFloat32;
  Distance distance = Distance::kEuclid;  // Cosine rows are stored normalized: scored as Dot
};

// Which rows may be returned. Both null = all rows [0, n).
struct RowFilter {
  const Roaring* allowed = nullptr;     // only these rows (iterated when given)
  const uint64_t* live_bits = nullptr;  // bit r set = row r live (checked when allowed is null)
};

// Top-k rows best-first (ties broken by lower row). `query` has view.dim floats; for Cosine it
// must already be normalized. For uint8/int8 rows a query whose values are all integers in the
// type's range is scored with the exact integer kernel.
std::vector<Neighbor> FlatSearch(const FlatView& view, const float* query, size_t k,
                                 const RowFilter& filter = {});

// Many queries (nq x dim floats), spread over `threads` threads (0 = hardware concurrency).
std::vector<std::vector<Neighbor>> FlatSearchBatch(const FlatView& view, const float* queries,
                                                   size_t nq, size_t k,
                                                   const RowFilter& filter = {},
                                                   unsigned threads = 0);

}  // namespace vectord::index
