// RowIdFile: see row_id_file.h. Layout: a 512-byte header, then 512-byte blocks of 63 entries
// and a trailer (4 zero bytes, CRC-32C of the block number and the 508 bytes before the CRC).
// Only complete blocks have a trailer; the incomplete last block is mirrored in RAM.
#include "storage/row_id_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "storage/crc32c.h"
#include "storage/file_util.h"

namespace vectord::storage {
namespace {

constexpr uint32_t kEntryBytes = 8;
constexpr uint32_t kHeaderCrcAt = 20;  // CRC of bytes [0, 20)

uint32_t BlockCrc(uint64_t block, const uint8_t* bytes) {
  uint8_t b[8];
  PutU64(b, block);
  return Crc32c(Crc32c(0, b, 8), bytes, RowIdFile::kBlockBytes - 4);
}

}  // namespace

void RowIdFile::EncodeBlock(uint64_t block, const uint64_t* entries, uint8_t* out) {
  for (uint32_t i = 0; i < kRowsPerBlock; ++i) PutU64(out + i * kEntryBytes, entries[i]);
  PutU32(out + kRowsPerBlock * kEntryBytes, 0);
  PutU32(out + kBlockBytes - 4, BlockCrc(block, out));
}

Result<std::unique_ptr<RowIdFile>> RowIdFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(path, "open");
  std::unique_ptr<RowIdFile> f(new RowIdFile(path, fd));
  struct stat sb;
  if (::fstat(fd, &sb) != 0) return ErrnoStatus(path, "stat");
  uint8_t h[kHeaderBytes];
  if (sb.st_size == 0) {
    std::memset(h, 0, sizeof(h));
    std::memcpy(h, kMagic, 8);
    PutU32(h + 8, kVersion);
    PutU32(h + 12, kRowsPerBlock);
    PutU32(h + 16, kBlockBytes);
    PutU32(h + kHeaderCrcAt, Crc32c(0, h, kHeaderCrcAt));
    VECTORD_RETURN_IF_ERROR(PwriteAll(fd, h, sizeof(h), 0, path));
    if (::fdatasync(fd) != 0) return ErrnoStatus(path, "fdatasync");
    return f;
  }
  if (sb.st_size < kHeaderBytes) {
    return Status::Corruption("row id file '" + path + "' is shorter than its header");
  }
  VECTORD_RETURN_IF_ERROR(PreadAll(fd, h, sizeof(h), 0, path));
  if (std::memcmp(h, kMagic, 8) != 0) {
    return Status::Corruption("'" + path + "' is not a row id file (bad magic)");
  }
  if (GetU32(h + kHeaderCrcAt) != Crc32c(0, h, kHeaderCrcAt)) {
    return Status::Corruption("row id file '" + path + "': header checksum mismatch");
  }
  if (GetU32(h + 8) != kVersion) {
    return Status::Corruption("row id file '" + path + "' has version " +
                              std::to_string(GetU32(h + 8)) + ", this build reads version " +
                              std::to_string(kVersion));
  }
  if (GetU32(h + 12) != kRowsPerBlock || GetU32(h + 16) != kBlockBytes) {
    return Status::Corruption("row id file '" + path + "' has an unknown block layout");
  }
  const uint64_t body = static_cast<uint64_t>(sb.st_size) - kHeaderBytes;
  const uint64_t full = body / kBlockBytes;
  // A torn write leaves a partial entry or trailer at the end: whole entries only.
  const uint64_t partial = std::min<uint64_t>((body % kBlockBytes) / kEntryBytes, kRowsPerBlock);
  f->tail_first_ = full * kRowsPerBlock;
  f->tail_.resize(partial);
  if (partial > 0) {
    std::vector<uint8_t> buf(partial * kEntryBytes);
    VECTORD_RETURN_IF_ERROR(PreadAll(fd, buf.data(), buf.size(), BlockOffset(full), path));
    for (uint64_t i = 0; i < partial; ++i) f->tail_[i] = GetU64(buf.data() + i * kEntryBytes);
  }
  if (partial == kRowsPerBlock) {
    // Complete but for its trailer (a crash between the entries and the trailer): finish it.
    uint8_t block[kBlockBytes];
    EncodeBlock(full, f->tail_.data(), block);
    VECTORD_RETURN_IF_ERROR(PwriteAll(fd, block, kBlockBytes, BlockOffset(full), path));
    f->tail_first_ += kRowsPerBlock;
    f->tail_.clear();
  }
  const uint64_t size = BlockOffset(f->tail_first_ / kRowsPerBlock) + f->tail_.size() * kEntryBytes;
  if (size != static_cast<uint64_t>(sb.st_size) && ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return ErrnoStatus(path, "truncate torn tail");
  }
  return f;
}

RowIdFile::~RowIdFile() { ::close(fd_); }

uint64_t RowIdFile::rows() const {
  std::lock_guard<std::mutex> l(mu_);
  return tail_first_ + tail_.size();
}

Status RowIdFile::Append(std::span<const uint64_t> entries) {
  if (entries.empty()) return Status::OK();
  std::vector<uint64_t> tail;
  uint64_t first;
  {
    std::lock_guard<std::mutex> l(mu_);
    first = tail_first_;
    tail = tail_;
  }
  // The byte image from the start of the tail block to the new end: the tail's own entries are
  // written again (same bytes), completed blocks get their trailer.
  tail.insert(tail.end(), entries.begin(), entries.end());
  const uint64_t full = tail.size() / kRowsPerBlock;
  const uint64_t rest = tail.size() % kRowsPerBlock;
  std::vector<uint8_t> buf(full * kBlockBytes + rest * kEntryBytes);
  const uint64_t first_block = first / kRowsPerBlock;
  for (uint64_t b = 0; b < full; ++b) {
    EncodeBlock(first_block + b, tail.data() + b * kRowsPerBlock, buf.data() + b * kBlockBytes);
  }
  for (uint64_t i = 0; i < rest; ++i) {
    PutU64(buf.data() + full * kBlockBytes + i * kEntryBytes, tail[full * kRowsPerBlock + i]);
  }
  VECTORD_RETURN_IF_ERROR(PwriteAll(fd_, buf.data(), buf.size(), BlockOffset(first_block), path_));
  std::lock_guard<std::mutex> l(mu_);
  tail_first_ = first + full * kRowsPerBlock;
  tail_.assign(tail.end() - static_cast<ptrdiff_t>(rest), tail.end());
  return Status::OK();
}

Status RowIdFile::Sync() {
  if (::fdatasync(fd_) != 0) return ErrnoStatus(path_, "fdatasync");
  return Status::OK();
}

Status RowIdFile::Truncate(uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  if (n >= tail_first_ + tail_.size()) return Status::OK();
  const uint64_t block = n / kRowsPerBlock;
  const uint64_t keep = n % kRowsPerBlock;
  std::vector<uint64_t> tail(keep);
  if (n >= tail_first_) {
    std::copy(tail_.begin(), tail_.begin() + static_cast<ptrdiff_t>(keep), tail.begin());
  } else if (keep > 0) {
    std::vector<uint8_t> buf(keep * kEntryBytes);
    VECTORD_RETURN_IF_ERROR(PreadAll(fd_, buf.data(), buf.size(), BlockOffset(block), path_));
    for (uint64_t i = 0; i < keep; ++i) tail[i] = GetU64(buf.data() + i * kEntryBytes);
  }
  if (::ftruncate(fd_, static_cast<off_t>(BlockOffset(block) + keep * kEntryBytes)) != 0) {
    return ErrnoStatus(path_, "truncate to " + std::to_string(n) + " rows");
  }
  tail_first_ = block * kRowsPerBlock;
  tail_ = std::move(tail);
  return Status::OK();
}

Status RowIdFile::ReadBlock(uint64_t block, uint64_t* out) const {
  uint8_t buf[kBlockBytes];
  VECTORD_RETURN_IF_ERROR(PreadAll(fd_, buf, kBlockBytes, BlockOffset(block), path_));
  if (GetU32(buf + kBlockBytes - 4) != BlockCrc(block, buf)) {
    return Status::Corruption("row id file '" + path_ +
                              "': checksum mismatch in the block at offset " +
                              std::to_string(BlockOffset(block)));
  }
  for (uint32_t i = 0; i < kRowsPerBlock; ++i) out[i] = GetU64(buf + i * kEntryBytes);
  return Status::OK();
}

Result<uint64_t> RowIdFile::Get(uint64_t row) const {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (row >= tail_first_) {
      if (row - tail_first_ >= tail_.size()) {
        return Status::Internal("row id file '" + path_ + "': row " + std::to_string(row) +
                                " is past its end");
      }
      return tail_[row - tail_first_];
    }
  }
  uint64_t entries[kRowsPerBlock];
  VECTORD_RETURN_IF_ERROR(ReadBlock(row / kRowsPerBlock, entries));
  return entries[row % kRowsPerBlock];
}

Status RowIdFile::GetMany(std::span<const InternalId> rows, std::vector<uint64_t>* out) const {
  out->assign(rows.size(), kUnknown);
  std::vector<uint32_t> order(rows.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return rows[a] < rows[b]; });
  uint64_t tail_first, end;
  std::vector<uint64_t> tail;
  {
    std::lock_guard<std::mutex> l(mu_);
    tail_first = tail_first_;
    end = tail_first_ + tail_.size();
    // At most 62 entries.
    tail = tail_;
  }
  uint64_t entries[kRowsPerBlock];
  uint64_t loaded = ~uint64_t{0};
  for (uint32_t i : order) {
    const uint64_t row = rows[i];
    if (row >= end) {
      return Status::Internal("row id file '" + path_ + "': row " + std::to_string(row) +
                              " is past its end");
    }
    if (row >= tail_first) {
      (*out)[i] = tail[row - tail_first];
      continue;
    }
    const uint64_t block = row / kRowsPerBlock;
    if (block != loaded) {
      VECTORD_RETURN_IF_ERROR(ReadBlock(block, entries));
      loaded = block;
    }
    (*out)[i] = entries[row % kRowsPerBlock];
  }
  return Status::OK();
}

}  // namespace vectord::storage
