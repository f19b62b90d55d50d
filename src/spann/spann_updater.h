// SpannUpdater: keeps a SPANN index living as rows arrive and leave, in place (SPFresh's LIRE,
// Xu et al., SOSP 2023; docs/spann.md "Living index"):
//   - Assign: each new row gets its posting lists by the build's closure + RNG rule over the
//     current centroids and waits in RAM as a pending entry of those lists (searches scan it).
//   - Cycle: every list with pending entries is rewritten copy-on-write into new blocks of the
//     posting file with its stale (reassigned) and dead (deleted) entries dropped; a list grown
//     past split_entries is split by a balanced 2-means into two lists whose centroids replace its
//     own, and the rows of it and of its neighbours that LIRE's necessary conditions flag (those
//     now nearer another centroid than their own) are reassigned in the next cycle; a list shrunk
//     below merge_entries is removed and its rows reassigned to other lists. A sweep rewrites
//     lists with many dead entries. A cycle commits with one journal record (directory, centroid
//     edits, versions, the rows now durable) after the new blocks are synced; a crash at any
//     moment leaves the index as the last committed cycle made it.
// One updater per index. Assign and the cycle may run on two threads at once; each Apply step
// needs the caller's exclusive lock against searches (spann_index.h), the rest needs none.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <roaring/roaring.hh>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "index/spann_assign.h"
#include "src/spann/spann_index.h"
#include "src/spann/spann_journal.h"
#include "vectord/status.h"

namespace vectord {

struct SpannUpdateParams {
  // Replica rules and candidates of the assignment (the build's, spann_builder.h).
  index::AssignParams assign;
  uint32_t assign_candidates = 24;
  // A list whose valid entries pass split_entries is split in two; one that falls below
  // merge_entries is merged into its neighbours. 0 = from the build's target list size: split
  // past 1.5x, merge below 1/4 of it.
  uint32_t split_entries = 0;
  uint32_t merge_entries = 0;
  // LIRE: the nearest lists of a split one whose rows are checked for reassignment.
  uint32_t reassign_neighbors = 4;
  // The sweep rewrites a list once this share of its entries is dead or stale.
  double gc_share = 0.2;
  // A cycle writes at most this share of the lists (and at least 256), so that the posting file
  // needs room for the index plus that share of it; lists with pending entries left out wait
  // for a later cycle (their rows stay in the delta).
  double cycle_share = 0.25;
  // A checkpoint (index.ckpt, then an empty journal) once the journal holds this many bytes.
  uint64_t checkpoint_bytes = uint64_t{32} << 20;
};

class SpannUpdater {
 public:
  SpannUpdater(SpannIndex* index, const SpannUpdateParams& params);
  ~SpannUpdater();
  SpannUpdater(const SpannUpdater&) = delete;
  SpannUpdater& operator=(const SpannUpdater&) = delete;

  const SpannUpdateParams& params() const { return params_; }

  // ---- Assign: rows [first, first + n) with their stored bytes (first == assigned_rows()).
  struct Assignment {
    uint64_t first = 0;
    uint64_t n = 0;
    std::vector<uint8_t> vectors;                     // n rows
    std::vector<uint32_t> lists;                      // per row max_replicas slots, kNoList padded
    std::shared_ptr<const index::CentroidIndex> nav;  // the navigation it was computed with
    double cpu_seconds = 0;                           // spent computing it
  };
  static constexpr uint32_t kNoList = 0xFFFFFFFFu;
  // Reads the index's navigation pointer: call with the caller's shared lock, or from the thread
  // that applies cycles.
  std::shared_ptr<const index::CentroidIndex> Navigation() const { return index_->nav_; }
  // Computes the lists (no lock needed). `vectors` holds n rows.
  Assignment Assign(uint64_t first, uint64_t n, const uint8_t* vectors,
                    std::shared_ptr<const index::CentroidIndex> nav) const;
  // Exclusive lock: the rows become pending entries of their lists (recomputed for lists removed
  // since), the index covers them, their row codes are appended.
  Status ApplyAssignment(Assignment a);

  // ---- Cycle.
  struct CycleStats {
    uint64_t rows = 0;  // rows made durable
    uint64_t lists_written = 0, splits = 0, merges = 0, reassigned = 0, gc_lists = 0;
    uint64_t bytes_written = 0;
    double seconds = 0, cpu_seconds = 0;
  };
  // Whether a cycle has work: pending entries, queued reassignments or merges, a due sweep.
  // The caller's shared (or exclusive) lock.
  bool CycleDue() const;
  // Deleted rows below durable_rows() since the last sweep (the collection calls it as it deletes;
  // exclusive lock): the sweep runs once they pass gc_share of the lists' entries.
  void NoteDeleted(uint64_t rows) { deleted_since_sweep_ += rows; }
  // Runs one cycle. `lock_shared` / `lock_exclusive` take the caller's lock and return a guard
  // (BeginCycle reads the inputs under the shared one, the install runs under the exclusive one);
  // `live` gives the live rows (read under the shared lock).
  struct Locks {
    std::function<std::shared_ptr<void>()> shared;
    std::function<std::shared_ptr<void>()> exclusive;
    std::function<Roaring()> live;  // called with the shared lock held
  };
  Result<CycleStats> RunCycle(const Locks& locks);
  // Writes a checkpoint when the journal has grown past checkpoint_bytes (or always when
  // `force`): index.ckpt, the row codes' file, then an empty journal. Call from the cycle's thread
  // with no lock held; takes the shared lock to copy the row codes.
  Status MaybeCheckpoint(const Locks& locks, bool force);

  // Lists whose SSD copy the updater wrote since the last call (list summaries are stale for
  // them). Exclusive or shared lock.
  Roaring TakeChangedLists();
  const Roaring& changed_lists() const { return changed_lists_; }

 private:
  struct Entry {
    uint32_t row;
    uint8_t version;
  };
  // A list's valid entries with their codes as PostingCodec::Encode takes them (full layout: the
  // rows' bytes), and (when asked for) their vectors as floats.
  struct ListContent {
    std::vector<Entry> entries;
    std::vector<uint8_t> codes;
    std::vector<float> x;
    uint32_t invalid = 0;  // dead or stale entries left out
  };
  struct Work;  // one cycle's state (spann_updater.cc)

  // The lists of one row (x: dim floats) over `nav`, into out[0..max_replicas); returns how many.
  // `exclude` (kNoList = none) is never chosen.
  uint32_t AssignRow(const index::CentroidIndex& nav, const float* x, uint32_t* out,
                     uint32_t exclude = kNoList) const;
  Status ProcessReassignments(Work* w);
  Status ProcessMerges(Work* w);
  Status WriteLists(Work* w);
  Status CompactFile(Work* w);
  // Splits `list` (content with x) in two; the halves are written.
  Status SplitList(Work* w, uint32_t list, ListContent c);
  Status CheckNeighbours(Work* w, uint32_t old_list, const float* old_centroid,
                         const std::vector<uint32_t>& new_lists);
  // Writes `c` (entries with their final codes) as list `list`'s new SSD copy.
  Status WriteOne(Work* w, uint32_t list, const ListContent& c);
  // Codes of `n` rows (vectors x, raw bytes `raw` when the layout stores rows) for list `list`.
  void EncodeFor(Work* w, uint32_t list, const float* x, const uint8_t* const* raw, size_t n,
                 uint8_t* codes) const;
  // Reads lists' valid entries with their codes, and their vectors when `want_x` (full layout:
  // from the lists; PQ layouts: from the vector file).
  Status ReadLists(Work* w, const std::vector<uint32_t>& lists, bool want_x,
                   std::vector<ListContent>* out);
  // Vectors of `rows` (< assigned rows) as float, appended to *x: the cycle's pending copy or the
  // bytes it holds for reassigned rows, else the vector file.
  Status RowVectors(Work* w, const std::vector<uint32_t>& rows, std::vector<float>* x);
  uint32_t NewListId(Work* w);

  SpannIndex* const index_;
  SpannUpdateParams params_;
  uint32_t dim_;
  size_t record_bytes_;
  bool ip_;
  // Cycle thread only.
  std::vector<uint32_t> free_ids_;  // removed list ids, reusable from the next cycle on
  uint64_t sweep_cursor_ = 0;
  // Rows flagged by LIRE in the last cycle (checked and reassigned in the next one) and lists
  // found below merge_entries. RAM only: lost at a crash, which only leaves those rows where they
  // were (valid) and those lists small.
  // Guarded by the caller's lock (changed under the exclusive one, read under the shared one).
  std::vector<std::pair<uint32_t, uint32_t>> reassign_queue_;  // (row, list it was seen in)
  std::vector<uint32_t> merge_queue_;
  std::atomic<uint64_t> deleted_since_sweep_{0};
  uint64_t stale_since_sweep_ = 0;
  bool sweeping_ = false;
  Roaring changed_lists_;  // guarded by the caller's lock (written in the install step)
};

}  // namespace vectord
