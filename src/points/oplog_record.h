// The oplog record of one committed write of a point store: the rows it touched, as ascending
// ranges in varints (an upsert of 1,000 new points is a few bytes). Replaying a record re-reads
// the current state of those rows, so records only name rows and never carry values.
// Format: docs/formats.md "Oplog".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord::points {

// `rows` in any order, repeats allowed.
std::string EncodeOplogRecord(std::vector<InternalId> rows);
// Calls add(first, count) for every range of the record; Corruption naming `seq` when malformed.
Status DecodeOplogRecord(uint64_t seq, std::string_view record,
                         const std::function<void(InternalId first, uint64_t count)>& add);

}  // namespace vectord::points
