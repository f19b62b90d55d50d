// VectorFile: a collection's append-only file of fixed-size vector records addressed by
// internal id (row). Format: docs/formats.md "Vector file". Not thread-safe: the engine
// serializes appends (one writer) and reads only rows it knows are complete.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord::storage {

class VectorFile {
 public:
  static constexpr char kMagic[8] = {'V', 'D', 'V', 'E', 'C', 'F', '0', '1'};
  static constexpr uint32_t kVersion = 1;
  static constexpr uint32_t kHeaderBytes = 4096;

  // Opens `path`, creating it with the given shape if missing. An existing file must have the
  // same dim and dtype (else Corruption naming the file). A torn last record (a crash in the
  // middle of an append) is ignored: rows() counts complete records only.
  static Result<std::unique_ptr<VectorFile>> Open(const std::string& path, uint32_t dim,
                                                  DataType dtype);
  ~VectorFile();
  VectorFile(const VectorFile&) = delete;
  VectorFile& operator=(const VectorFile&) = delete;

  uint64_t rows() const { return rows_; }
  uint32_t record_bytes() const { return record_bytes_; }  // vector bytes, without the checksum

  // Appends n records (n * record_bytes() bytes, row-major); rows get ids rows()..rows()+n-1.
  // Written with pwrite, not synced.
  Status Append(const void* records, uint64_t n);
  // fdatasync: every appended record is on stable storage when this returns OK.
  Status Sync();
  // Drops rows >= n (recovery: rows the metadata never committed).
  Status Truncate(uint64_t n);
  // Reads rows [first, first+n) into out (n * record_bytes()), verifying each record's checksum.
  Status Read(uint64_t first, uint64_t n, void* out) const;
  // Streams every row in order, checksummed, in chunks; fn(first_row, count, bytes).
  Status Scan(const std::function<Status(uint64_t, uint64_t, const uint8_t*)>& fn) const;

  const std::string& path() const { return path_; }

  // For readers with their own (e.g. O_DIRECT) descriptor, such as the SPANN re-ranker:
  // file offset of row `row`'s record, and whether `rec` (record_bytes vector bytes followed by
  // the 4-byte checksum, as stored) is row `row`'s intact record.
  static uint64_t RecordOffset(uint64_t row, uint32_t record_bytes) {
    return kHeaderBytes + row * (uint64_t{record_bytes} + 4);
  }
  static bool VerifyRecord(uint64_t row, const uint8_t* rec, uint32_t record_bytes);

 private:
  VectorFile(std::string path, int fd, uint32_t record_bytes, uint64_t rows)
      : path_(std::move(path)), fd_(fd), record_bytes_(record_bytes), rows_(rows) {}
  uint64_t stride() const { return uint64_t{record_bytes_} + 4; }

  std::string path_;
  int fd_;
  uint32_t record_bytes_;
  uint64_t rows_;
};

}  // namespace vectord::storage
