// VectorFile implementation: header + records of [vector bytes][crc32c], see docs/formats.md.
#include "storage/vector_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "storage/crc32c.h"
#include "storage/file_util.h"

namespace vectord::storage {
namespace {

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(what + " '" + path + "': " + std::strerror(errno));
}

// Header layout (little-endian), padded with zeros to kHeaderBytes:
// 0 magic[8] | 8 version u32 | 12 dim u32 | 16 dtype u8 | 17 pad[3] | 20 record_bytes u32 |
// 24 header crc32c u32 over bytes [0, 24).
constexpr size_t kHeaderCrcOffset = 24;

// Seeding a record's checksum with its row number catches records written at the wrong place.
uint32_t RecordCrc(uint64_t row, const uint8_t* rec, uint32_t bytes) {
  return Crc32c(static_cast<uint32_t>(row * 0x9E3779B1u), rec, bytes);
}

}  // namespace

Result<std::unique_ptr<VectorFile>> VectorFile::Open(const std::string& path, uint32_t dim,
                                                     DataType dtype) {
  const uint32_t record_bytes = dim * static_cast<uint32_t>(DataTypeSize(dtype));
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = Errno("stat", path);
    ::close(fd);
    return s;
  }
  std::vector<uint8_t> header(kHeaderBytes, 0);
  if (st.st_size < static_cast<off_t>(kHeaderBytes)) {
    // New (or torn during creation, before anything referenced it): write a fresh header.
    std::memcpy(header.data(), kMagic, 8);
    PutU32(&header[8], kVersion);
    PutU32(&header[12], dim);
    header[16] = static_cast<uint8_t>(dtype);
    PutU32(&header[20], record_bytes);
    PutU32(&header[kHeaderCrcOffset], Crc32c(0, header.data(), kHeaderCrcOffset));
    Status s = PwriteAll(fd, header.data(), header.size(), 0, path);
    if (s.ok() && ::ftruncate(fd, kHeaderBytes) != 0) s = Errno("truncate", path);
    if (s.ok() && ::fdatasync(fd) != 0) s = Errno("sync", path);
    if (!s.ok()) {
      ::close(fd);
      return s;
    }
    return std::unique_ptr<VectorFile>(new VectorFile(path, fd, record_bytes, 0));
  }
  Status s = PreadAll(fd, header.data(), kHeaderBytes, 0, path);
  if (s.ok() && std::memcmp(header.data(), kMagic, 8) != 0) {
    s = Status::Corruption("'" + path + "' is not a vectord vector file (bad magic)");
  }
  if (s.ok() && GetU32(&header[kHeaderCrcOffset]) != Crc32c(0, header.data(), kHeaderCrcOffset)) {
    s = Status::Corruption("'" + path + "': header checksum mismatch");
  }
  if (s.ok() && GetU32(&header[8]) != kVersion) {
    s = Status::Corruption("'" + path + "': unsupported version " +
                           std::to_string(GetU32(&header[8])));
  }
  if (s.ok() && (GetU32(&header[12]) != dim || header[16] != static_cast<uint8_t>(dtype) ||
                 GetU32(&header[20]) != record_bytes)) {
    s = Status::Corruption("'" + path + "': holds dim " + std::to_string(GetU32(&header[12])) +
                           " dtype " + std::to_string(header[16]) + ", the catalog says dim " +
                           std::to_string(dim));
  }
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  const uint64_t stride = uint64_t{record_bytes} + 4;
  const uint64_t rows = (static_cast<uint64_t>(st.st_size) - kHeaderBytes) / stride;
  return std::unique_ptr<VectorFile>(new VectorFile(path, fd, record_bytes, rows));
}

VectorFile::~VectorFile() { ::close(fd_); }

bool VectorFile::VerifyRecord(uint64_t row, const uint8_t* rec, uint32_t record_bytes) {
  return GetU32(rec + record_bytes) == RecordCrc(row, rec, record_bytes);
}

Status VectorFile::Append(const void* records, uint64_t n) {
  if (n == 0) return Status::OK();
  const auto* src = static_cast<const uint8_t*>(records);
  std::vector<uint8_t> buf(n * stride());
  for (uint64_t i = 0; i < n; ++i) {
    uint8_t* dst = &buf[i * stride()];
    std::memcpy(dst, src + i * record_bytes_, record_bytes_);
    PutU32(dst + record_bytes_, RecordCrc(rows_ + i, dst, record_bytes_));
  }
  VECTORD_RETURN_IF_ERROR(
      PwriteAll(fd_, buf.data(), buf.size(), kHeaderBytes + rows_ * stride(), path_));
  rows_ += n;
  return Status::OK();
}

Status VectorFile::Sync() {
  if (::fdatasync(fd_) != 0) return Errno("sync", path_);
  return Status::OK();
}

Status VectorFile::Truncate(uint64_t n) {
  if (n >= rows_) return Status::OK();
  if (::ftruncate(fd_, static_cast<off_t>(kHeaderBytes + n * stride())) != 0) {
    return Errno("truncate", path_);
  }
  rows_ = n;
  return Sync();
}

Status VectorFile::Read(uint64_t first, uint64_t n, void* out) const {
  if (first + n > rows_) {
    return Status::InvalidArgument("'" + path_ + "': rows " + std::to_string(first) + "+" +
                                   std::to_string(n) + " past the end (" + std::to_string(rows_) +
                                   " rows)");
  }
  std::vector<uint8_t> buf(n * stride());
  VECTORD_RETURN_IF_ERROR(
      PreadAll(fd_, buf.data(), buf.size(), kHeaderBytes + first * stride(), path_));
  auto* dst = static_cast<uint8_t*>(out);
  for (uint64_t i = 0; i < n; ++i) {
    const uint8_t* rec = &buf[i * stride()];
    if (GetU32(rec + record_bytes_) != RecordCrc(first + i, rec, record_bytes_)) {
      return Status::Corruption("'" + path_ + "': checksum mismatch in row " +
                                std::to_string(first + i) + " at offset " +
                                std::to_string(kHeaderBytes + (first + i) * stride()));
    }
    std::memcpy(dst + i * record_bytes_, rec, record_bytes_);
  }
  return Status::OK();
}

Status VectorFile::Scan(const std::function<Status(uint64_t, uint64_t, const uint8_t*)>& fn) const {
  const uint64_t chunk = std::max<uint64_t>(1, (4u << 20) / stride());
  std::vector<uint8_t> out;
  for (uint64_t first = 0; first < rows_; first += chunk) {
    const uint64_t n = std::min(chunk, rows_ - first);
    out.resize(n * record_bytes_);
    VECTORD_RETURN_IF_ERROR(Read(first, n, out.data()));
    VECTORD_RETURN_IF_ERROR(fn(first, n, out.data()));
  }
  return Status::OK();
}

}  // namespace vectord::storage
