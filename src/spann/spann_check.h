// An offline consistency check of a SPANN index against its collection's live rows (`vectorctl
// check`, the crash tests): every page checksum, every list's payload, every entry's row and
// version, every live row reachable, no list beyond the navigation's alive set, list sizes.
#pragma once

#include <cstdint>
#include <roaring/roaring.hh>
#include <string>
#include <vector>

#include "vectord/status.h"

namespace vectord {

class SpannIndex;

struct SpannCheckReport {
  uint64_t lists = 0;          // alive posting lists
  uint64_t pages = 0;          // their pages
  uint64_t entries = 0;        // their entries
  uint64_t valid_entries = 0;  // of a live row, at its current version
  uint64_t stale_entries = 0;  // of a row reassigned since (left for the next rewrite)
  uint64_t dead_entries = 0;   // of a deleted row (never returned: the live set excludes it)
  uint64_t live_rows = 0;      // live rows the index holds (below its durable rows)
  uint64_t unreachable = 0;    // live rows of the index with no valid entry (must be 0)
  uint32_t max_list_entries = 0;
  std::vector<std::string> problems;  // the first ones found (a problem = the index is wrong)
  bool ok() const { return problems.empty() && unreachable == 0; }
  std::string ToString() const;
};

// Reads every list of `index` (buffered reads). `live`: the collection's live rows.
Result<SpannCheckReport> CheckSpannIndex(const SpannIndex& index, const Roaring& live);

}  // namespace vectord
