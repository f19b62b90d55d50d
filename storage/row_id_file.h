// RowIdFile: a collection's row -> external id map on disk, 8 bytes per row in checksummed blocks,
// appended with the rows and read with pread (never mapped: touched pages would count in the
// server's resident memory). Format: docs/formats.md "Row id file".
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord::storage {

class RowIdFile {
 public:
  static constexpr char kMagic[8] = {'V', 'D', 'R', 'O', 'W', 'I', 'D', '1'};
  static constexpr uint32_t kVersion = 1;
  static constexpr uint32_t kHeaderBytes = 512;
  static constexpr uint32_t kBlockBytes = 512;
  static constexpr uint32_t kRowsPerBlock = 63;  // 63 x 8 bytes + an 8-byte trailer
  // Entry values: an integer id below 2^63 is stored as itself. kInMetadata: the id is a UUID or
  // an integer >= 2^63, read from the metadata's row -> id key. kUnknown: no id recorded (a dead
  // row of a data directory written before this file existed).
  static constexpr uint64_t kInMetadata = uint64_t{1} << 63;
  static constexpr uint64_t kUnknown = ~uint64_t{0};

  // The entry that stands for `id`.
  static uint64_t Encode(const PointId& id) {
    return !id.is_uuid() && id.num() < kInMetadata ? id.num() : kInMetadata;
  }

  // Opens `path`, creating it when missing. A torn last entry (a crash mid-append) is dropped.
  // The entries of the last, incomplete block carry no checksum yet: the owner checks them (or
  // truncates and rewrites them) after open.
  static Result<std::unique_ptr<RowIdFile>> Open(const std::string& path);
  ~RowIdFile();
  RowIdFile(const RowIdFile&) = delete;
  RowIdFile& operator=(const RowIdFile&) = delete;

  // Rows in the file. Reads may run concurrently with one writer (Append, Truncate, Sync) as long
  // as they ask only for rows that exist before and after the write.
  uint64_t rows() const;
  // Appends entries for rows rows()..rows()+n-1 (pwrite; not synced).
  Status Append(std::span<const uint64_t> entries);
  Status Sync();  // fdatasync
  // Drops rows >= n (a failed commit's append, or rows the metadata never committed).
  Status Truncate(uint64_t n);
  // The entry of `row` (< rows()); Corruption naming the file and offset on a checksum mismatch.
  Result<uint64_t> Get(uint64_t row) const;
  // out[i] = entry of rows[i]; each block read once.
  Status GetMany(std::span<const InternalId> rows, std::vector<uint64_t>* out) const;

  const std::string& path() const { return path_; }

 private:
  RowIdFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  static uint64_t BlockOffset(uint64_t block) { return kHeaderBytes + block * kBlockBytes; }
  // Reads and checks full block `block` into out[kRowsPerBlock].
  Status ReadBlock(uint64_t block, uint64_t* out) const;
  // Byte image of a full block.
  static void EncodeBlock(uint64_t block, const uint64_t* entries, uint8_t* out);

  const std::string path_;
  const int fd_;
  // The incomplete last block (tail_first_ is a multiple of kRowsPerBlock; tail_ holds fewer
  // than kRowsPerBlock entries), also on disk without a trailer. Readers of tail rows and the
  // writer meet here; guarded by mu_.
  mutable std::mutex mu_;
  uint64_t tail_first_ = 0;
  std::vector<uint64_t> tail_;
};

}  // namespace vectord::storage
