// TokenStore implementation: tokens.vdt records + tokens.vdo offsets table, docs/formats.md
// "Token files".
#include "storage/token_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "storage/aligned_buffer.h"
#include "storage/crc32c.h"
#include "storage/file_util.h"
#include "storage/io_reader.h"

namespace vectord::storage {
namespace {

Status Errno(const std::string& what, const std::string& path) { return ErrnoStatus(path, what); }

// Header of both files (little-endian), padded with zeros to kHeaderBytes:
// 0 magic[8] | 8 version u32 | 12 dim u32 | 16 dtype u8 | 17 pad[3] | 20 vector_bytes u32 |
// 24 header crc32c u32 over bytes [0, 24).
constexpr size_t kHeaderCrcOffset = 24;

// Entry and record checksums are seeded with the row, so a misplaced one does not verify.
uint32_t Seed(uint64_t row) { return static_cast<uint32_t>(row * 0x9E3779B1u) ^ 0x7A5EED01u; }

Status CheckOrWriteHeader(int fd, const std::string& path, const char* magic, uint32_t dim,
                          DataType dtype, uint32_t vector_bytes, uint64_t* size) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno("stat", path);
  std::vector<uint8_t> header(TokenStore::kHeaderBytes, 0);
  if (st.st_size < static_cast<off_t>(TokenStore::kHeaderBytes)) {
    std::memcpy(header.data(), magic, 8);
    PutU32(&header[8], TokenStore::kVersion);
    PutU32(&header[12], dim);
    header[16] = static_cast<uint8_t>(dtype);
    PutU32(&header[20], vector_bytes);
    PutU32(&header[kHeaderCrcOffset], Crc32c(0, header.data(), kHeaderCrcOffset));
    VECTORD_RETURN_IF_ERROR(PwriteAll(fd, header.data(), header.size(), 0, path));
    if (::ftruncate(fd, TokenStore::kHeaderBytes) != 0) return Errno("truncate", path);
    if (::fdatasync(fd) != 0) return Errno("sync", path);
    *size = TokenStore::kHeaderBytes;
    return Status::OK();
  }
  VECTORD_RETURN_IF_ERROR(PreadAll(fd, header.data(), header.size(), 0, path));
  if (std::memcmp(header.data(), magic, 8) != 0) {
    return Status::Corruption("'" + path + "' is not a vectord token file (bad magic)");
  }
  if (GetU32(&header[kHeaderCrcOffset]) != Crc32c(0, header.data(), kHeaderCrcOffset)) {
    return Status::Corruption("'" + path + "': header checksum mismatch");
  }
  if (GetU32(&header[8]) != TokenStore::kVersion) {
    return Status::Corruption("'" + path + "': unsupported version " +
                              std::to_string(GetU32(&header[8])));
  }
  if (GetU32(&header[12]) != dim || header[16] != static_cast<uint8_t>(dtype) ||
      GetU32(&header[20]) != vector_bytes) {
    return Status::Corruption("'" + path + "': holds dim " + std::to_string(GetU32(&header[12])) +
                              " dtype " + std::to_string(header[16]) + ", the catalog says dim " +
                              std::to_string(dim));
  }
  *size = static_cast<uint64_t>(st.st_size);
  return Status::OK();
}

// Per-thread readers and buffers for ReadSets.
struct ReadScratch {
  std::unique_ptr<IoReader> reader;
  AlignedBuffer buf;
  std::vector<IoReader::Request> reqs;
  std::vector<uint64_t> buf_off;  // per set: offset of its first byte in buf
};

}  // namespace

TokenStore::TokenStore(std::string prefix, uint32_t dim, DataType dtype)
    : data_path_(prefix + ".vdt"),
      index_path_(prefix + ".vdo"),
      dim_(dim),
      dtype_(dtype),
      vector_bytes_(dim * static_cast<uint32_t>(DataTypeSize(dtype))) {}

TokenStore::~TokenStore() {
  for (int fd : {data_fd_, index_fd_, direct_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

Result<std::unique_ptr<TokenStore>> TokenStore::Open(const std::string& prefix, uint32_t dim,
                                                     DataType dtype,
                                                     std::vector<TokenSpan>* spans) {
  std::unique_ptr<TokenStore> s(new TokenStore(prefix, dim, dtype));
  s->data_fd_ = ::open(s->data_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->data_fd_ < 0) return Errno("open", s->data_path_);
  s->index_fd_ = ::open(s->index_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->index_fd_ < 0) return Errno("open", s->index_path_);
  uint64_t data_size = 0, index_size = 0;
  VECTORD_RETURN_IF_ERROR(CheckOrWriteHeader(s->data_fd_, s->data_path_, kDataMagic, dim, dtype,
                                             s->vector_bytes_, &data_size));
  VECTORD_RETURN_IF_ERROR(CheckOrWriteHeader(s->index_fd_, s->index_path_, kIndexMagic, dim, dtype,
                                             s->vector_bytes_, &index_size));
  // The offsets table, verified entry by entry; the table ends at the first entry that is torn,
  // does not verify, or points past the data file.
  const uint64_t entries = (index_size - kHeaderBytes) / kEntryBytes;
  spans->clear();
  spans->reserve(entries);
  std::vector<uint8_t> buf;
  const uint64_t chunk = 65536;
  uint64_t expect_off = kHeaderBytes;
  bool ended = false;
  for (uint64_t first = 0; first < entries && !ended; first += chunk) {
    const uint64_t n = std::min(chunk, entries - first);
    buf.resize(n * kEntryBytes);
    VECTORD_RETURN_IF_ERROR(PreadAll(s->index_fd_, buf.data(), buf.size(),
                                     kHeaderBytes + first * kEntryBytes, s->index_path_));
    for (uint64_t i = 0; i < n; ++i) {
      const uint8_t* e = &buf[i * kEntryBytes];
      const uint64_t row = first + i;
      TokenSpan sp;
      sp.offset = GetU64(e);
      sp.count = GetU32(e + 8);
      const uint64_t end = sp.offset + kRecordOverhead + uint64_t{sp.count} * s->vector_bytes_;
      if (GetU32(e + 12) != Crc32c(Seed(row), e, 12) || sp.offset != expect_off ||
          end > data_size) {
        ended = true;
        break;
      }
      spans->push_back(sp);
      expect_off = end;
    }
  }
  s->rows_ = spans->size();
  // Cut torn tails so the next append starts at a clean place.
  VECTORD_RETURN_IF_ERROR(s->Truncate(s->rows_, expect_off));
  s->direct_fd_ = ::open(s->data_path_.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  if (s->direct_fd_ < 0 && errno != EINVAL) return Errno("open with O_DIRECT", s->data_path_);
  return s;
}

Status TokenStore::ReadAll(const std::vector<TokenSpan>& spans, std::vector<uint8_t>* out) const {
  const uint64_t size = data_size();
  out->resize(size - kHeaderBytes);
  VECTORD_RETURN_IF_ERROR(PreadAll(data_fd_, out->data(), out->size(), kHeaderBytes, data_path_));
  for (uint64_t row = 0; row < spans.size(); ++row) {
    const uint8_t* r = out->data() + (spans[row].offset - kHeaderBytes);
    const uint64_t bytes = uint64_t{spans[row].count} * vector_bytes_;
    if (GetU32(r) != row || GetU32(r + 4) != spans[row].count ||
        GetU32(r + 8 + bytes) != Crc32c(Seed(row), r, 8 + bytes)) {
      return Status::Corruption("'" + data_path_ + "': the token set of row " +
                                std::to_string(row) + " at offset " +
                                std::to_string(spans[row].offset) + " fails its checksum");
    }
  }
  return Status::OK();
}

Status TokenStore::Append(const uint8_t* data, const std::vector<uint32_t>& counts,
                          std::vector<TokenSpan>* spans_out, std::vector<uint8_t>* records_out) {
  spans_out->clear();
  if (counts.empty()) return Status::OK();
  uint64_t total = 0;
  for (uint32_t c : counts) total += kRecordOverhead + uint64_t{c} * vector_bytes_;
  std::vector<uint8_t> rec(total);
  std::vector<uint8_t> entries(counts.size() * kEntryBytes);
  const uint64_t base = data_size();
  uint64_t pos = 0, src = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const uint64_t row = rows_ + i;
    const uint64_t bytes = uint64_t{counts[i]} * vector_bytes_;
    uint8_t* r = &rec[pos];
    PutU32(r, static_cast<uint32_t>(row));
    PutU32(r + 4, counts[i]);
    std::memcpy(r + 8, data + src, bytes);
    PutU32(r + 8 + bytes, Crc32c(Seed(row), r, 8 + bytes));
    uint8_t* e = &entries[i * kEntryBytes];
    PutU64(e, base + pos);
    PutU32(e + 8, counts[i]);
    PutU32(e + 12, Crc32c(Seed(row), e, 12));
    spans_out->push_back(TokenSpan{base + pos, counts[i]});
    pos += kRecordOverhead + bytes;
    src += bytes;
  }
  VECTORD_RETURN_IF_ERROR(PwriteAll(data_fd_, rec.data(), rec.size(), base, data_path_));
  VECTORD_RETURN_IF_ERROR(PwriteAll(index_fd_, entries.data(), entries.size(),
                                    kHeaderBytes + rows_ * kEntryBytes, index_path_));
  rows_ += counts.size();
  data_size_.store(base + total, std::memory_order_release);
  if (records_out != nullptr) records_out->swap(rec);
  return Status::OK();
}

Status TokenStore::Sync() {
  if (::fdatasync(data_fd_) != 0) return Errno("sync", data_path_);
  if (::fdatasync(index_fd_) != 0) return Errno("sync", index_path_);
  return Status::OK();
}

Status TokenStore::Truncate(uint64_t rows, uint64_t data_end) {
  if (::ftruncate(index_fd_, static_cast<off_t>(kHeaderBytes + rows * kEntryBytes)) != 0) {
    return Errno("truncate", index_path_);
  }
  if (::ftruncate(data_fd_, static_cast<off_t>(data_end)) != 0) {
    return Errno("truncate", data_path_);
  }
  rows_ = rows;
  data_size_.store(data_end, std::memory_order_release);
  return Status::OK();
}

Status TokenStore::ReadSets(const TokenSpan* spans, const uint32_t* rows, size_t n,
                            std::vector<uint8_t>* out, std::vector<uint64_t>* offsets) const {
  thread_local ReadScratch s;
  if (!s.reader) {
    VECTORD_ASSIGN_OR_RETURN(s.reader, IoReader::Create(IoReaderOptions()));
  }
  const uint64_t size = data_size();
  // One read per set: whole pages through the O_DIRECT descriptor where the pages lie inside the
  // file, else (the file's last partial page, or no O_DIRECT) the exact bytes, buffered.
  s.reqs.resize(n);
  s.buf_off.resize(n);
  uint64_t total = 0;
  std::vector<uint64_t> start(n), len(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t rec = kRecordOverhead + uint64_t{spans[i].count} * vector_bytes_;
    uint64_t a = spans[i].offset, b = spans[i].offset + rec;
    const uint64_t aa = a & ~uint64_t{4095}, bb = AlignedBuffer::RoundUp(b);
    const bool direct = direct_fd_ >= 0 && bb <= size;
    if (direct) {
      a = aa;
      b = bb;
    }
    start[i] = a;
    len[i] = b - a;
    s.buf_off[i] = total;
    s.reqs[i] =
        IoReader::Request{direct ? direct_fd_ : data_fd_, a, static_cast<uint32_t>(b - a), nullptr};
    total += AlignedBuffer::RoundUp(b - a);
  }
  s.buf.Resize(total);
  for (size_t i = 0; i < n; ++i) s.reqs[i].buf = s.buf.data() + s.buf_off[i];
  VECTORD_RETURN_IF_ERROR(s.reader->ReadBatch(s.reqs.data(), n));
  uint64_t pages = 0;
  for (size_t i = 0; i < n; ++i) pages += (len[i] + 4095) / 4096;
  pages_read_.fetch_add(pages, std::memory_order_relaxed);

  offsets->assign(1, 0);
  uint64_t vecs = 0;
  for (size_t i = 0; i < n; ++i) vecs += spans[i].count;
  out->resize(vecs * vector_bytes_);
  uint64_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* r = s.buf.data() + s.buf_off[i] + (spans[i].offset - start[i]);
    const uint64_t bytes = uint64_t{spans[i].count} * vector_bytes_;
    if (GetU32(r) != rows[i] || GetU32(r + 4) != spans[i].count ||
        GetU32(r + 8 + bytes) != Crc32c(Seed(rows[i]), r, 8 + bytes)) {
      return Status::Corruption("'" + data_path_ + "': the token set of row " +
                                std::to_string(rows[i]) + " at offset " +
                                std::to_string(spans[i].offset) + " fails its checksum");
    }
    std::memcpy(out->data() + at, r + 8, bytes);
    at += bytes;
    offsets->push_back(offsets->back() + spans[i].count);
  }
  return Status::OK();
}

}  // namespace vectord::storage
