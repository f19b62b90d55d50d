// External sort of fixed-size records for the SPANN build: records are ordered by the key in their
// first 8 bytes (u32 a, then u32 b, little-endian: (list, row) or (group, row)), sorted within a
// fixed RAM buffer, full buffers written as run files and merged when read back. The build's RAM
// so stays a fixed buffer whatever N is (docs/spann.md "Build RAM").
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "vectord/status.h"

namespace vectord {

// (a << 32) | b of a record's first 8 bytes.
uint64_t RecordKey(const uint8_t* rec);

// A run file of sorted records, read back through a buffer.
class RunReader {
 public:
  RunReader(FILE* f, size_t rec, size_t buf_bytes);
  ~RunReader();
  RunReader(const RunReader&) = delete;
  RunReader& operator=(const RunReader&) = delete;
  // Current record, or null at the end.
  const uint8_t* Peek();
  void Next() { pos_ += rec_; }

 private:
  FILE* f_;
  size_t rec_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0, len_ = 0;
};

// Sorts `cnt` records of `rec` bytes at `buf` by RecordKey and writes them to `path`.
Status WriteSortedRun(const uint8_t* buf, size_t cnt, size_t rec, const std::string& path);

// Merges sorted run files: Next() returns their records in key order (valid until the next call),
// null at the end. Reads each run through a buffer of `buffer_bytes` / runs (at least 64 KiB).
class RunMerger {
 public:
  Status Open(const std::vector<std::string>& paths, size_t rec, size_t buffer_bytes);
  const uint8_t* Next();

 private:
  std::vector<std::unique_ptr<RunReader>> readers_;
  using HeapItem = std::pair<uint64_t, uint32_t>;
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<>> heap_;
  int32_t last_ = -1;  // run whose record Next() returned last (advanced on the next call)
};

// Add() records (one thread), Finish(), then Next() until it returns null. Ties (equal keys) come
// back in no particular order. Run files are "<dir>/<prefix>.<i>.tmp", removed by the destructor.
class ExternalSorter {
 public:
  ExternalSorter(std::string dir, std::string prefix, size_t record_bytes, size_t buffer_bytes);
  ~ExternalSorter();
  ExternalSorter(const ExternalSorter&) = delete;
  ExternalSorter& operator=(const ExternalSorter&) = delete;

  Status Add(const uint8_t* rec);
  Status Finish();
  // The next record in key order (valid until the next call), or null at the end.
  const uint8_t* Next();

  size_t runs() const { return paths_.size(); }
  // Bytes of RAM it holds at most: the buffer, its sort keys, the merge's read buffers.
  size_t MemoryBytes() const;

 private:
  Status Spill();  // buf_'s n_ records as one more sorted run file

  std::string dir_, prefix_;
  size_t rec_, cap_;
  std::vector<uint8_t> buf_;
  size_t n_ = 0;
  std::vector<std::string> paths_;
  // In-RAM case (nothing spilled): the order of buf_'s records.
  std::vector<std::pair<uint64_t, uint32_t>> order_;
  size_t next_ = 0;
  // Spilled case: the runs merged.
  std::unique_ptr<RunMerger> merger_;
  bool finished_ = false;
};

}  // namespace vectord
