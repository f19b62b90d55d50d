// Small POSIX helpers for the storage layer: full-length pread/pwrite with EINTR retries and
// errors that name the file and offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "vectord/status.h"

namespace vectord::storage {

// IOError "<path>: <what>: <strerror(errno)>".
Status ErrnoStatus(const std::string& path, const std::string& what);
// Writes all n bytes at `off`.
Status PwriteAll(int fd, const void* p, size_t n, uint64_t off, const std::string& path);
// Reads all n bytes at `off`; end of file first is Corruption ("truncated at offset").
Status PreadAll(int fd, void* p, size_t n, uint64_t off, const std::string& path);

}  // namespace vectord::storage
