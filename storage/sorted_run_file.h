// Sorted run files: immutable files of (double value, u32 row) entries in (value, row) order, in
// checksummed 4 KiB blocks. The first value of every block (the fence array, 8 bytes per 340
// entries) is kept in RAM, so the entries of a value range are found by a binary search over the
// fences and read with one pread of the blocks that can hold them. The numeric range indexes of
// payload fields are built from such runs. Format: docs/formats.md "Sorted run file".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vectord/status.h"

namespace vectord::storage {

struct RunEntry {
  double value;
  uint32_t row;
  friend bool operator<(const RunEntry& a, const RunEntry& b) {
    return a.value < b.value || (a.value == b.value && a.row < b.row);
  }
  friend bool operator==(const RunEntry& a, const RunEntry& b) {
    return a.value == b.value && a.row == b.row;
  }
};

inline constexpr uint32_t kRunBlockBytes = 4096;
inline constexpr uint32_t kRunEntriesPerBlock = 340;  // 340 x 12 bytes + a 16-byte trailer

// Streams entries into `path`: written to path + ".tmp", which Finish() fsyncs and renames (and
// fsyncs the directory), so a run file that exists is complete. Unfinished writers remove their
// temporary file.
class SortedRunWriter {
 public:
  static Result<std::unique_ptr<SortedRunWriter>> Create(const std::string& path);
  ~SortedRunWriter();
  // Entries must come in (value, row) order and have finite values.
  Status Add(const RunEntry& e);
  Status Finish();
  uint64_t entries() const { return entries_; }

 private:
  SortedRunWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  Status FlushBlock();
  Status FlushBuffer();

  const std::string path_;  // final name
  int fd_;
  bool finished_ = false;
  uint64_t entries_ = 0, blocks_ = 0;
  uint32_t min_row_ = ~0u, max_row_ = 0;
  RunEntry last_{0, 0};
  std::vector<RunEntry> block_;  // entries of the block being filled
  std::vector<double> fences_;   // first value of every written block
  std::vector<uint8_t> buf_;     // encoded blocks not yet written
};

class SortedRunFile {
 public:
  // Opens and checks the header and the fence array (entries are checked block by block as they
  // are read). Corruption naming the file on any mismatch.
  static Result<std::unique_ptr<SortedRunFile>> Open(const std::string& path);
  ~SortedRunFile();
  SortedRunFile(const SortedRunFile&) = delete;
  SortedRunFile& operator=(const SortedRunFile&) = delete;

  uint64_t entries() const { return entries_; }
  uint32_t min_row() const { return min_row_; }  // 0 / ~0u bounds when empty
  uint32_t max_row() const { return max_row_; }
  const std::string& path() const { return path_; }
  size_t MemoryBytes() const { return sizeof(*this) + fences_.capacity() * sizeof(double); }

  // Calls fn with the entries of every block that may hold a value in [lo, hi] (in order; the
  // blocks at either end also hold values outside it: the caller checks each value). Reads the
  // blocks in runs of up to 1 MiB, each checked against its CRC.
  Status ScanBlocks(double lo, double hi,
                    const std::function<void(std::span<const RunEntry>)>& fn) const;

  // Appends to *rows, in value order, the row of every entry whose value lies in the interval
  // from lo to hi (lo_open: lo excluded; hi_open: hi excluded). Blocks whose fences place them
  // wholly inside the interval are copied without testing their values; only the blocks at
  // either end are tested entry by entry. Same reads and checks as ScanBlocks.
  Status CollectRows(double lo, bool lo_open, double hi, bool hi_open,
                     std::vector<uint32_t>* rows) const;

  // Every entry in order, read sequentially in 1 MiB chunks (merges).
  class Reader {
   public:
    bool Valid() const { return pos_ < buf_.size(); }
    const RunEntry& entry() const { return buf_[pos_]; }
    Status Next();

   private:
    friend class SortedRunFile;
    explicit Reader(const SortedRunFile* f) : f_(f) {}
    Status Fill();
    const SortedRunFile* f_;
    uint64_t next_block_ = 0;
    std::vector<RunEntry> buf_;
    size_t pos_ = 0;
  };
  // Positioned on the first entry (or !Valid() for an empty run).
  Result<std::unique_ptr<Reader>> NewReader() const;

 private:
  SortedRunFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  // The blocks [begin, end) that may hold values in [lo, hi] (lo <= hi, blocks_ > 0).
  std::pair<uint64_t, uint64_t> BlocksOf(double lo, double hi) const;
  // Verifies block b's bytes p (checksum and entry count); its entry count in *count.
  Status CheckBlock(uint64_t b, const uint8_t* p, uint32_t* count) const;
  // Reads blocks [first, first + n) and appends their entries to *out.
  Status ReadBlocks(uint64_t first, uint64_t n, std::vector<uint8_t>* scratch,
                    std::vector<RunEntry>* out) const;

  const std::string path_;
  const int fd_;
  uint64_t entries_ = 0, blocks_ = 0;
  uint32_t min_row_ = ~0u, max_row_ = 0;
  std::vector<double> fences_;
};

}  // namespace vectord::storage
