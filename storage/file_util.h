// Small POSIX helpers for the storage layer: full-length pread/pwrite with EINTR retries and
// errors that name the file and offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "vectord/status.h"

namespace vectord::storage {

// IOError "<path>: <what>: <strerror(errno)>".
Status ErrnoStatus(const std::string& path, const std::string& what);
// Writes all n bytes at `off`.
Status PwriteAll(int fd, const void* p, size_t n, uint64_t off, const std::string& path);
// Reads all n bytes at `off`; end of file first is Corruption ("truncated at offset").
Status PreadAll(int fd, void* p, size_t n, uint64_t off, const std::string& path);
// The whole file; NotFound "<what> '<path>' is missing" when it does not exist.
Result<std::string> ReadWholeFile(const std::string& path, const std::string& what);
// Replaces `path` with `data` atomically: written to path + ".tmp", fsynced, renamed.
Status WriteFileAtomic(const std::string& path, std::string_view data);
// fsync of a directory: makes the creation, rename or removal of its entries durable.
Status SyncDirectory(const std::string& dir);
// fsyncs the directory that holds `path`, so that a rename or creation of `path` survives a power
// loss (IOError naming the directory).
Status SyncParentDir(const std::string& path);

// Little-endian fields of on-disk headers and records (the formats assume a little-endian host).
inline void PutU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void PutU64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline uint32_t GetU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t GetU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace vectord::storage
