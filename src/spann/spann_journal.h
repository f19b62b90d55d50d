// The living SPANN index's durable state beyond the build's files (docs/formats.md "SPANN
// checkpoint" and "SPANN journal records"): a checkpoint `index.ckpt` holding the posting-list
// directory, every row's replica version, the edited centroid navigation and the rows whose
// entries are on SSD; and the records of the journal `index.log` (storage/record_log.h), one per
// committed updater cycle, each the edit that turns the state before it into the state after it.
// Open = checkpoint (or, before the first one, the build's directory and centroids) + the records
// that follow it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/posting_file.h"
#include "vectord/status.h"

namespace vectord {

inline constexpr char kSpannCheckpointFile[] = "index.ckpt";
inline constexpr char kSpannJournalFile[] = "index.log";

// One committed updater cycle.
struct SpannEdit {
  // Rows [0, durable_rows) have all their entries in posting lists on SSD after this cycle; those
  // that became durable in it have version assign_version (the version rows are assigned with
  // since the index was last opened; every open bumps it, so that entries a crashed run wrote for
  // rows it had not made durable go stale).
  uint64_t durable_rows = 0;
  uint8_t assign_version = 0;
  // Lists whose SSD copy changed, with their new extent (pages == 0: empty or removed).
  std::vector<std::pair<uint32_t, storage::PostingListInfo>> lists;
  // Centroid edits in the order the cycle made them, each applied as one index::CentroidEdits
  // (removals first, then additions).
  struct NavStep {
    std::vector<uint32_t> removed;
    std::vector<uint32_t> added_ids;
    std::vector<float> added;  // added_ids.size() x dim float32
  };
  std::vector<NavStep> nav;
  // Rows reassigned in the cycle with their new version.
  std::vector<std::pair<uint32_t, uint8_t>> versions;
  // What the cycle did (added to the updater's counters at replay, so that they survive
  // restarts): splits, merges, reassigned rows, lists written, bytes written, lists cleaned.
  std::vector<uint64_t> counters;
};

std::string EncodeSpannEdit(const SpannEdit& e, uint32_t dim);
// Corruption naming the field when the record does not parse (its CRC was good: a bug or a
// record of another version).
Result<SpannEdit> DecodeSpannEdit(std::string_view record, uint32_t dim);

struct SpannCheckpoint {
  // The first journal record not contained in this checkpoint (RecordLog sequence numbers).
  uint64_t next_seq = 0;
  uint64_t durable_rows = 0;
  uint8_t assign_version = 0;                       // as in SpannEdit
  std::vector<storage::PostingListInfo> directory;  // by list id
  std::vector<uint8_t> versions;                    // rows [0, durable_rows)
  std::string navigation;                           // index::CentroidIndex::Serialize()
  // The updater's counters (splits, merges, ...), so that they survive restarts.
  std::vector<uint64_t> counters;
};

// Writes dir/index.ckpt atomically (temporary file, fsync, rename, fsync dir).
Status WriteSpannCheckpoint(const std::string& dir, const SpannCheckpoint& c);
// NotFound when dir/index.ckpt does not exist; Corruption naming the file on a bad magic,
// version, checksum or size.
Result<SpannCheckpoint> ReadSpannCheckpoint(const std::string& dir);

}  // namespace vectord
