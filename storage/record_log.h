// RecordLog: an append-only journal of opaque records with sequence numbers, replayed at open, cut
// back to its last intact record after a crash mid-append, and emptied atomically after a
// checkpoint. The living index journals its posting-list directory changes here. Format:
// docs/formats.md "Record log".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "vectord/status.h"

namespace vectord::storage {

// Not thread-safe: one writer, and no reads but the replay at Open.
//
// Sequence numbers: every record gets the next number of a count that runs across Reset (the
// first record after a Reset continues where the log left off), so a checkpoint can remember
// next_seq() and a replay after a crash between the checkpoint and the Reset can skip the records
// the checkpoint already holds.
//
// Durability: a record is durable once Append(…, sync = true) or Sync() returns. Records appended
// without sync can be lost by a power failure, always as a suffix of the log. Every record stores
// a durable mark: the records before the mark are on stable storage whenever this one is (for a
// synced append, every record before it). That is how Open tells a torn tail (cut off) from bit
// rot in a record that was already durable (Corruption): see Open.
class RecordLog {
 public:
  static constexpr char kMagic[8] = {'V', 'D', 'R', 'L', 'O', 'G', '0', '1'};
  static constexpr uint32_t kVersion = 1;
  static constexpr uint32_t kHeaderBytes = 32;
  static constexpr uint32_t kFrameBytes = 28;  // per-record overhead
  static constexpr uint32_t kMaxRecordBytes = 1u << 28;

  // Called once per intact record, in order; a non-OK Status stops Open and is returned from it.
  using ReplayFn = std::function<Status(uint64_t seq, std::string_view record)>;

  // Opens the log at `path`, creating an empty one (first sequence number 0; header written to
  // "<path>.tmp", fsynced, renamed) when it does not exist. A leftover "<path>.tmp" (a crash
  // inside Reset or creation: the rename is the commit point) is removed. The whole file is read
  // into memory and checked before `replay` sees any record:
  // - Records are parsed in order. At the first one that is not intact (short, a checksum
  //   mismatch, an unexpected sequence number), the rest of the file is searched byte by byte for
  //   intact records with later sequence numbers.
  // - If one of those has a durable mark above the damaged record, the damaged record was on
  //   stable storage and the damage is not a crash mid-append but bit rot or an overwritten file:
  //   Corruption naming the file, the record, its offset and the reason. Nothing is replayed or
  //   changed.
  // - Otherwise the damaged record and everything after it were never durable (a torn last
  //   append, or a power failure that lost unsynced appends): they are cut off (ftruncate).
  // A damaged last record is always taken for a torn append: nothing after it can tell.
  // Then the intact records are passed to `replay` and the log is fdatasynced, so that every
  // replayed record is durable from here on. Corruption for a bad header, IOError for the OS.
  static Result<std::unique_ptr<RecordLog>> Open(const std::string& path, const ReplayFn& replay);
  ~RecordLog();
  RecordLog(const RecordLog&) = delete;
  RecordLog& operator=(const RecordLog&) = delete;

  // Appends one record (at most kMaxRecordBytes) as a single write at the end of the log, and
  // fdatasyncs when `sync`. A failed write is cut back off the file; if even that fails, or an
  // fdatasync fails, the log refuses further appends (FailedPrecondition): reopen it.
  Status Append(std::string_view record, bool sync);
  // fdatasync: every record appended so far is durable.
  Status Sync();
  // Replaces the log with an empty one whose first record will get next_seq(): the new header is
  // written to "<path>.tmp", fsynced and renamed over the log, then the directory is fsynced. A
  // crash before the rename leaves the old log (and the .tmp that Open removes); after it, the
  // empty one. On an error before the rename the log is unchanged and still usable.
  Status Reset();

  // Bytes in the file: the header plus every record with its frame.
  uint64_t bytes() const { return end_; }
  // Sequence number of the first record the file holds (or will hold after a Reset).
  uint64_t first_seq() const { return first_seq_; }
  // Sequence number the next Append gets.
  uint64_t next_seq() const { return next_seq_; }
  // Bytes of a torn tail cut off by Open (0 when the log was intact).
  uint64_t cut_bytes() const { return cut_bytes_; }
  const std::string& path() const { return path_; }

 private:
  RecordLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  Status Fail(Status s);

  std::string path_;
  int fd_;                  // read-write, positioned writes at end_
  uint64_t end_ = 0;        // file length: header + records
  uint64_t first_seq_ = 0;  // sequence number of the file's first record
  uint64_t next_seq_ = 0;   // sequence number of the next record
  uint64_t durable_ = 0;    // records with seq < durable_ are known to be on stable storage
  uint64_t cut_bytes_ = 0;  // set by Open
  Status failed_;           // non-OK after a failure that leaves the file's state unknown
  std::string frame_;       // staging buffer for one record
};

}  // namespace vectord::storage
