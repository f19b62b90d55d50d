// Dataset file readers and writers (texmex *vecs, big-ann *bin); see dataset_io.h for the formats.
#include "storage/dataset_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace vectord::storage {
namespace {

std::string Errno() { return std::strerror(errno); }

std::string Quote(std::string_view path) { return "'" + std::string(path) + "'"; }

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Largest dimension accepted in a header: guards against reading garbage as a size.
constexpr int64_t kMaxDim = 1 << 20;

}  // namespace

const char* DatasetFormatName(DatasetFormat f) {
  switch (f) {
    case DatasetFormat::kFvecs:
      return "fvecs";
    case DatasetFormat::kBvecs:
      return "bvecs";
    case DatasetFormat::kIvecs:
      return "ivecs";
    case DatasetFormat::kFbin:
      return "fbin";
    case DatasetFormat::kU8bin:
      return "u8bin";
    case DatasetFormat::kI8bin:
      return "i8bin";
    case DatasetFormat::kIbin:
      return "ibin";
  }
  return "?";
}

const char* ElementTypeName(ElementType t) {
  switch (t) {
    case ElementType::kFloat32:
      return "float32";
    case ElementType::kUint8:
      return "uint8";
    case ElementType::kInt8:
      return "int8";
    case ElementType::kInt32:
      return "int32";
  }
  return "?";
}

size_t ElementSize(ElementType t) {
  return (t == ElementType::kUint8 || t == ElementType::kInt8) ? 1 : 4;
}

ElementType FormatElementType(DatasetFormat f) {
  switch (f) {
    case DatasetFormat::kFvecs:
    case DatasetFormat::kFbin:
      return ElementType::kFloat32;
    case DatasetFormat::kBvecs:
    case DatasetFormat::kU8bin:
      return ElementType::kUint8;
    case DatasetFormat::kI8bin:
      return ElementType::kInt8;
    case DatasetFormat::kIvecs:
    case DatasetFormat::kIbin:
      return ElementType::kInt32;
  }
  return ElementType::kFloat32;
}

bool IsTexmex(DatasetFormat f) {
  return f == DatasetFormat::kFvecs || f == DatasetFormat::kBvecs || f == DatasetFormat::kIvecs;
}

Result<DatasetFormat> FormatFromPath(std::string_view path) {
  static const std::pair<const char*, DatasetFormat> kExt[] = {
      {".fvecs", DatasetFormat::kFvecs}, {".bvecs", DatasetFormat::kBvecs},
      {".ivecs", DatasetFormat::kIvecs}, {".fbin", DatasetFormat::kFbin},
      {".u8bin", DatasetFormat::kU8bin}, {".i8bin", DatasetFormat::kI8bin},
      {".ibin", DatasetFormat::kIbin}};
  for (const auto& [ext, fmt] : kExt) {
    if (EndsWith(path, ext)) return fmt;
  }
  return Status::InvalidArgument(
      "dataset file " + Quote(path) +
      ": unknown extension (expected .fvecs, .bvecs, .ivecs, .fbin, .u8bin, .i8bin or .ibin)");
}

// ---------------------------------------------------------------------------------------------
// DatasetReader

Result<std::unique_ptr<DatasetReader>> DatasetReader::Open(const std::string& path) {
  VECTORD_ASSIGN_OR_RETURN(DatasetFormat format, FormatFromPath(path));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open dataset file " + Quote(path) + ": " + Errno());
  DatasetInfo info;
  info.path = path;
  info.format = format;
  info.type = FormatElementType(format);
  std::unique_ptr<DatasetReader> r(new DatasetReader(fd, info));  // takes fd
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return Status::IOError("cannot stat dataset file " + Quote(path) + ": " + Errno());
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const size_t esize = ElementSize(info.type);
  if (IsTexmex(format)) {
    if (size == 0) return r;  // empty: n = 0
    if (size < 4) {
      return Status::Corruption("dataset file " + Quote(path) + ": truncated at offset 0 (" +
                                std::to_string(size) + " bytes, need a 4-byte dimension)");
    }
    int32_t d = 0;
    VECTORD_RETURN_IF_ERROR(r->PreadFull(&d, 4, 0));
    if (d <= 0 || d > kMaxDim) {
      return Status::Corruption("dataset file " + Quote(path) + ": record 0 at offset 0 has bad " +
                                "dimension " + std::to_string(d));
    }
    const uint64_t rec = 4 + static_cast<uint64_t>(d) * esize;
    if (size % rec != 0) {
      const uint64_t full = size / rec;
      return Status::Corruption("dataset file " + Quote(path) + ": truncated: size " +
                                std::to_string(size) + " is not a multiple of the record size " +
                                std::to_string(rec) + " (dimension " + std::to_string(d) +
                                "); record " + std::to_string(full) + " at offset " +
                                std::to_string(full * rec) + " is incomplete");
    }
    r->info_.dim = static_cast<uint32_t>(d);
    r->info_.n = size / rec;
  } else {
    if (size < 8) {
      return Status::Corruption("dataset file " + Quote(path) + ": truncated at offset 0 (" +
                                std::to_string(size) + " bytes, need the 8-byte n,d header)");
    }
    int32_t hdr[2];
    VECTORD_RETURN_IF_ERROR(r->PreadFull(hdr, 8, 0));
    if (hdr[0] < 0 || hdr[1] <= 0 || hdr[1] > kMaxDim) {
      return Status::Corruption("dataset file " + Quote(path) + ": bad header n=" +
                                std::to_string(hdr[0]) + " d=" + std::to_string(hdr[1]));
    }
    const uint64_t need = 8 + static_cast<uint64_t>(hdr[0]) * hdr[1] * esize;
    if (size < need) {
      const uint64_t row_bytes = static_cast<uint64_t>(hdr[1]) * esize;
      const uint64_t full = (size - 8) / row_bytes;
      return Status::Corruption(
          "dataset file " + Quote(path) + ": truncated: header says " + std::to_string(hdr[0]) +
          " x " + std::to_string(hdr[1]) + " needs " + std::to_string(need) + " bytes, file has " +
          std::to_string(size) + "; row " + std::to_string(full) + " at offset " +
          std::to_string(8 + full * row_bytes) + " is incomplete");
    }
    r->info_.n = static_cast<size_t>(hdr[0]);
    r->info_.dim = static_cast<uint32_t>(hdr[1]);
  }
  return r;
}

DatasetReader::~DatasetReader() {
  if (fd_ >= 0) ::close(fd_);
}

Status DatasetReader::PreadFull(void* buf, size_t len, uint64_t offset) const {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t got = ::pread(fd_, p, len, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status::IOError("dataset file " + Quote(info_.path) + ": read of " +
                             std::to_string(len) + " bytes at offset " + std::to_string(offset) +
                             " failed: " + Errno());
    }
    if (got == 0) {
      return Status::Corruption("dataset file " + Quote(info_.path) + ": truncated at offset " +
                                std::to_string(offset) + " (" + std::to_string(len) +
                                " more bytes expected)");
    }
    p += got;
    len -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return Status::OK();
}

Status DatasetReader::ReadRaw(size_t begin, size_t count, void* out) const {
  if (begin > info_.n || count > info_.n - begin) {
    return Status::InvalidArgument("dataset file " + Quote(info_.path) + ": rows [" +
                                   std::to_string(begin) + ", " + std::to_string(begin + count) +
                                   ") out of range (file has " + std::to_string(info_.n) +
                                   " rows)");
  }
  if (count == 0) return Status::OK();
  const size_t row_bytes = info_.row_bytes();
  if (!IsTexmex(info_.format)) {
    return PreadFull(out, count * row_bytes, 8 + static_cast<uint64_t>(begin) * row_bytes);
  }
  // texmex: read whole records in chunks of about 4 MiB, check each header, strip it.
  const size_t rec = 4 + row_bytes;
  const size_t chunk_rows = std::max<size_t>(1, (4u << 20) / rec);
  std::vector<char> buf(std::min(count, chunk_rows) * rec);
  char* dst = static_cast<char*>(out);
  for (size_t done = 0; done < count;) {
    const size_t rows = std::min(chunk_rows, count - done);
    const uint64_t off = static_cast<uint64_t>(begin + done) * rec;
    VECTORD_RETURN_IF_ERROR(PreadFull(buf.data(), rows * rec, off));
    for (size_t i = 0; i < rows; ++i) {
      int32_t d;
      std::memcpy(&d, buf.data() + i * rec, 4);
      if (d != static_cast<int32_t>(info_.dim)) {
        return Status::Corruption("dataset file " + Quote(info_.path) + ": record " +
                                  std::to_string(begin + done + i) + " at offset " +
                                  std::to_string(off + i * rec) + " has dimension " +
                                  std::to_string(d) + ", expected " + std::to_string(info_.dim));
      }
      std::memcpy(dst, buf.data() + i * rec + 4, row_bytes);
      dst += row_bytes;
    }
    done += rows;
  }
  return Status::OK();
}

Status DatasetReader::ReadFloat(size_t begin, size_t count, float* out) const {
  const size_t total = count * info_.dim;
  if (info_.type == ElementType::kFloat32) return ReadRaw(begin, count, out);
  if (info_.type == ElementType::kInt32) {
    // Same size as float: read in place, then convert.
    VECTORD_RETURN_IF_ERROR(ReadRaw(begin, count, out));
    for (size_t i = 0; i < total; ++i) {
      int32_t v;
      std::memcpy(&v, out + i, 4);
      out[i] = static_cast<float>(v);
    }
    return Status::OK();
  }
  // One-byte types: read into the tail of the float buffer, expand front to back (a float at i
  // never overwrites a byte at j >= i since byte j lives at offset 3*total + j >= 4*i).
  char* bytes = reinterpret_cast<char*>(out) + 3 * total;
  VECTORD_RETURN_IF_ERROR(ReadRaw(begin, count, bytes));
  if (info_.type == ElementType::kUint8) {
    for (size_t i = 0; i < total; ++i) {
      out[i] = static_cast<float>(static_cast<uint8_t>(bytes[i]));
    }
  } else {
    for (size_t i = 0; i < total; ++i) out[i] = static_cast<float>(static_cast<int8_t>(bytes[i]));
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// DatasetWriter

Result<std::unique_ptr<DatasetWriter>> DatasetWriter::Create(const std::string& path,
                                                             uint32_t dim) {
  VECTORD_ASSIGN_OR_RETURN(DatasetFormat format, FormatFromPath(path));
  if (dim == 0 || dim > kMaxDim) {
    return Status::InvalidArgument("dataset file " + Quote(path) + ": bad dimension " +
                                   std::to_string(dim));
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot create dataset file " + Quote(path) + ": " + Errno());
  std::unique_ptr<DatasetWriter> w(new DatasetWriter(fd, path, format, dim));
  if (!IsTexmex(format)) {
    const int32_t hdr[2] = {0, static_cast<int32_t>(dim)};
    VECTORD_RETURN_IF_ERROR(w->WriteFull(hdr, 8));
  }
  return w;
}

DatasetWriter::~DatasetWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Status DatasetWriter::WriteFull(const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t put = ::pwrite(fd_, p, len, static_cast<off_t>(offset_));
    if (put < 0) {
      if (errno == EINTR) continue;
      return Status::IOError("dataset file " + Quote(path_) + ": write at offset " +
                             std::to_string(offset_) + " failed: " + Errno());
    }
    p += put;
    len -= static_cast<size_t>(put);
    offset_ += static_cast<uint64_t>(put);
  }
  return Status::OK();
}

Status DatasetWriter::Append(const void* rows, size_t count) {
  if (fd_ < 0) return Status::FailedPrecondition("dataset file " + Quote(path_) + ": finished");
  const size_t row_bytes = dim_ * ElementSize(FormatElementType(format_));
  if (!IsTexmex(format_)) {
    VECTORD_RETURN_IF_ERROR(WriteFull(rows, count * row_bytes));
  } else {
    const size_t rec = 4 + row_bytes;
    const size_t chunk_rows = std::max<size_t>(1, (1u << 20) / rec);
    std::vector<char> buf(std::min(count, chunk_rows) * rec);
    const int32_t d = static_cast<int32_t>(dim_);
    const char* src = static_cast<const char*>(rows);
    for (size_t done = 0; done < count;) {
      const size_t n = std::min(chunk_rows, count - done);
      for (size_t i = 0; i < n; ++i) {
        std::memcpy(buf.data() + i * rec, &d, 4);
        std::memcpy(buf.data() + i * rec + 4, src, row_bytes);
        src += row_bytes;
      }
      VECTORD_RETURN_IF_ERROR(WriteFull(buf.data(), n * rec));
      done += n;
    }
  }
  n_ += count;
  return Status::OK();
}

Status DatasetWriter::Finish() {
  if (fd_ < 0) return Status::FailedPrecondition("dataset file " + Quote(path_) + ": finished");
  if (!IsTexmex(format_)) {
    if (n_ > static_cast<size_t>(INT32_MAX)) {
      return Status::InvalidArgument("dataset file " + Quote(path_) + ": " + std::to_string(n_) +
                                     " rows do not fit the int32 header");
    }
    const int32_t n = static_cast<int32_t>(n_);
    if (::pwrite(fd_, &n, 4, 0) != 4) {
      return Status::IOError("dataset file " + Quote(path_) + ": header write failed: " + Errno());
    }
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    return Status::IOError("dataset file " + Quote(path_) + ": close failed: " + Errno());
  }
  return Status::OK();
}

}  // namespace vectord::storage
