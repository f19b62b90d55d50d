// The point store's checkpoint file (`checkpoint.vdp`): the state derived from the metadata as of
// one oplog sequence (live rows, row count, payload index bitmaps, the range run files with their
// dead rows), so that open loads it and replays only the oplog records after it. Written piece by
// piece with a running CRC-32C to a temporary file, fsynced and renamed over the old one.
// Format: docs/formats.md "Point store checkpoint".
#pragma once

#include <cstdint>
#include <memory>
#include <roaring/roaring.hh>
#include <string>
#include <vector>

#include "index/payload_index.h"
#include "src/points/range_runs.h"
#include "vectord/status.h"

namespace vectord::points {

inline constexpr char kCheckpointFile[] = "checkpoint.vdp";

struct CheckpointHeader {
  uint32_t cid = 0;
  uint64_t seq = 0;   // every oplog record <= seq is reflected
  uint64_t rows = 0;  // rows covered (the row id file is durable up to here)
  uint64_t next_run_id = 1;
};

class CheckpointWriter {
 public:
  static Result<std::unique_ptr<CheckpointWriter>> Create(const std::string& path,
                                                          const CheckpointHeader& header);
  ~CheckpointWriter();  // an unfinished writer removes its temporary file
  // Exactly once, before the fields.
  Status AddLive(const Roaring& live);
  Status AddField(const index::FieldIndex& field, const std::vector<RangeRuns::FileRun>& runs);
  // Trailer, fdatasync, rename over `path`, fsync of the directory.
  Status Finish();

 private:
  CheckpointWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  void Put(const void* p, size_t n);
  void PutU32(uint32_t v) { Put(&v, 4); }
  void PutU64(uint64_t v) { Put(&v, 8); }
  void PutString(const std::string& s);
  void PutBitmap(const Roaring& r);
  void MaybeFlush();
  Status Flush();

  const std::string path_;
  int fd_;
  bool finished_ = false;
  Status status_;  // first failed write
  uint32_t crc_ = 0;
  uint64_t written_ = 0;  // bytes flushed to the file
  std::vector<char> buf_;
};

struct CheckpointField {
  std::string field;
  PayloadSchemaType type = PayloadSchemaType::kKeyword;
  index::FieldIndex::Values values;
  struct RunRef {
    uint64_t id = 0;
    uint64_t entries = 0;
    Roaring dead;
  };
  std::vector<RunRef> runs;
};

struct CheckpointState {
  CheckpointHeader header;
  Roaring live;
  std::vector<CheckpointField> fields;
};

// NotFound when `path` does not exist; Corruption naming the file on a bad magic, version,
// structure or checksum.
Result<CheckpointState> ReadCheckpoint(const std::string& path);

}  // namespace vectord::points
