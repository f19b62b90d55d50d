// Sorted run files: see sorted_run_file.h and docs/formats.md "Sorted run file".
#include "storage/sorted_run_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "storage/crc32c.h"
#include "storage/file_util.h"

namespace vectord::storage {
namespace {

constexpr char kMagic[8] = {'V', 'D', 'R', 'U', 'N', '0', '0', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kHeaderBytes = 4096;
constexpr uint32_t kHeaderCrcAt = 48;  // CRC of bytes [0, 48)
constexpr uint32_t kEntryBytes = 12;
constexpr uint32_t kCountAt = kRunEntriesPerBlock * kEntryBytes;  // 4080
constexpr uint32_t kBlockCrcAt = kRunBlockBytes - 4;              // 4092
constexpr uint64_t kIoBlocks = 256;                               // 1 MiB per read or write

uint64_t BlockOffset(uint64_t b) { return kHeaderBytes + b * kRunBlockBytes; }

uint32_t BlockCrc(uint64_t block, const uint8_t* bytes) {
  uint8_t b[8];
  PutU64(b, block);
  return Crc32c(Crc32c(0, b, 8), bytes, kBlockCrcAt);
}

void PutF64(uint8_t* p, double v) { std::memcpy(p, &v, 8); }
double GetF64(const uint8_t* p) {
  double v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

Result<std::unique_ptr<SortedRunWriter>> SortedRunWriter::Create(const std::string& path) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(tmp, "create");
  std::unique_ptr<SortedRunWriter> w(new SortedRunWriter(path, fd));
  w->block_.reserve(kRunEntriesPerBlock);
  return w;
}

SortedRunWriter::~SortedRunWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) ::unlink((path_ + ".tmp").c_str());
}

Status SortedRunWriter::Add(const RunEntry& e) {
  if (!std::isfinite(e.value) || (entries_ > 0 && e < last_)) {
    return Status::Internal("sorted run '" + path_ + "': entry (" + std::to_string(e.value) +
                            ", row " + std::to_string(e.row) + ") out of order or not finite");
  }
  last_ = e;
  ++entries_;
  min_row_ = std::min(min_row_, e.row);
  max_row_ = std::max(max_row_, e.row);
  block_.push_back(e);
  if (block_.size() == kRunEntriesPerBlock) return FlushBlock();
  return Status::OK();
}

Status SortedRunWriter::FlushBlock() {
  if (block_.empty()) return Status::OK();
  const size_t at = buf_.size();
  buf_.resize(at + kRunBlockBytes, 0);
  uint8_t* p = buf_.data() + at;
  for (size_t i = 0; i < block_.size(); ++i) {
    PutF64(p + i * kEntryBytes, block_[i].value);
    PutU32(p + i * kEntryBytes + 8, block_[i].row);
  }
  PutU32(p + kCountAt, static_cast<uint32_t>(block_.size()));
  PutU32(p + kBlockCrcAt, BlockCrc(blocks_, p));
  fences_.push_back(block_.front().value);
  ++blocks_;
  block_.clear();
  if (buf_.size() >= kIoBlocks * kRunBlockBytes) return FlushBuffer();
  return Status::OK();
}

Status SortedRunWriter::FlushBuffer() {
  if (buf_.empty()) return Status::OK();
  const uint64_t first = blocks_ - buf_.size() / kRunBlockBytes;
  VECTORD_RETURN_IF_ERROR(
      PwriteAll(fd_, buf_.data(), buf_.size(), BlockOffset(first), path_ + ".tmp"));
  buf_.clear();
  return Status::OK();
}

Status SortedRunWriter::Finish() {
  const std::string tmp = path_ + ".tmp";
  VECTORD_RETURN_IF_ERROR(FlushBlock());
  VECTORD_RETURN_IF_ERROR(FlushBuffer());
  const uint64_t fence_at = BlockOffset(blocks_);
  std::vector<uint8_t> fences(fences_.size() * 8 + 4);
  for (size_t i = 0; i < fences_.size(); ++i) PutF64(fences.data() + 8 * i, fences_[i]);
  PutU32(fences.data() + fences_.size() * 8, Crc32c(0, fences.data(), fences_.size() * 8));
  VECTORD_RETURN_IF_ERROR(PwriteAll(fd_, fences.data(), fences.size(), fence_at, tmp));
  uint8_t h[kHeaderBytes] = {};
  std::memcpy(h, kMagic, 8);
  PutU32(h + 8, kVersion);
  PutU32(h + 12, kRunEntriesPerBlock);
  PutU64(h + 16, entries_);
  PutU64(h + 24, blocks_);
  PutU32(h + 32, min_row_);
  PutU32(h + 36, max_row_);
  PutU64(h + 40, fence_at);
  PutU32(h + kHeaderCrcAt, Crc32c(0, h, kHeaderCrcAt));
  VECTORD_RETURN_IF_ERROR(PwriteAll(fd_, h, kHeaderBytes, 0, tmp));
  if (::fdatasync(fd_) != 0) return ErrnoStatus(tmp, "fdatasync");
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return ErrnoStatus(path_, "rename");
  finished_ = true;
  return SyncDirectory(std::filesystem::path(path_).parent_path().string());
}

Result<std::unique_ptr<SortedRunFile>> SortedRunFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("sorted run file '" + path + "' is missing");
    return ErrnoStatus(path, "open");
  }
  std::unique_ptr<SortedRunFile> f(new SortedRunFile(path, fd));
  auto bad = [&](const std::string& what) {
    return Status::Corruption("sorted run file '" + path + "': " + what);
  };
  struct stat sb;
  if (::fstat(fd, &sb) != 0) return ErrnoStatus(path, "stat");
  if (sb.st_size < kHeaderBytes) return bad("shorter than its header");
  uint8_t h[kHeaderBytes];
  VECTORD_RETURN_IF_ERROR(PreadAll(fd, h, kHeaderBytes, 0, path));
  if (std::memcmp(h, kMagic, 8) != 0) return bad("bad magic");
  if (GetU32(h + kHeaderCrcAt) != Crc32c(0, h, kHeaderCrcAt))
    return bad("header checksum mismatch");
  if (GetU32(h + 8) != kVersion) {
    return bad("version " + std::to_string(GetU32(h + 8)) + ", this build reads version " +
               std::to_string(kVersion));
  }
  f->entries_ = GetU64(h + 16);
  f->blocks_ = GetU64(h + 24);
  f->min_row_ = GetU32(h + 32);
  f->max_row_ = GetU32(h + 36);
  const uint64_t fence_at = GetU64(h + 40);
  if (GetU32(h + 12) != kRunEntriesPerBlock || fence_at != BlockOffset(f->blocks_) ||
      f->entries_ > f->blocks_ * kRunEntriesPerBlock ||
      f->entries_ + kRunEntriesPerBlock <= f->blocks_ * kRunEntriesPerBlock ||
      static_cast<uint64_t>(sb.st_size) != fence_at + f->blocks_ * 8 + 4) {
    return bad("header does not match the file (" + std::to_string(f->entries_) + " entries, " +
               std::to_string(f->blocks_) + " blocks, " + std::to_string(sb.st_size) + " bytes)");
  }
  std::vector<uint8_t> fences(f->blocks_ * 8 + 4);
  VECTORD_RETURN_IF_ERROR(PreadAll(fd, fences.data(), fences.size(), fence_at, path));
  if (GetU32(fences.data() + f->blocks_ * 8) != Crc32c(0, fences.data(), f->blocks_ * 8)) {
    return bad("fence array checksum mismatch");
  }
  f->fences_.resize(f->blocks_);
  for (uint64_t b = 0; b < f->blocks_; ++b) f->fences_[b] = GetF64(fences.data() + 8 * b);
  if (!std::is_sorted(f->fences_.begin(), f->fences_.end())) return bad("fences out of order");
  return f;
}

SortedRunFile::~SortedRunFile() { ::close(fd_); }

std::pair<uint64_t, uint64_t> SortedRunFile::BlocksOf(double lo, double hi) const {
  // Block b holds values in [fences[b], fences[b + 1]]: from the last block starting below lo
  // to the last block starting at or below hi.
  const uint64_t first_ge =
      static_cast<uint64_t>(std::lower_bound(fences_.begin(), fences_.end(), lo) - fences_.begin());
  const uint64_t end =
      static_cast<uint64_t>(std::upper_bound(fences_.begin(), fences_.end(), hi) - fences_.begin());
  return {first_ge == 0 ? 0 : first_ge - 1, end};
}

Status SortedRunFile::CheckBlock(uint64_t b, const uint8_t* p, uint32_t* count) const {
  *count = GetU32(p + kCountAt);
  const uint32_t want = b + 1 < blocks_ ? kRunEntriesPerBlock
                                        : static_cast<uint32_t>(entries_ - b * kRunEntriesPerBlock);
  if (GetU32(p + kBlockCrcAt) != BlockCrc(b, p) || *count != want) {
    return Status::Corruption("sorted run file '" + path_ + "': block at offset " +
                              std::to_string(BlockOffset(b)) + " fails its checksum");
  }
  return Status::OK();
}

Status SortedRunFile::ReadBlocks(uint64_t first, uint64_t n, std::vector<uint8_t>* scratch,
                                 std::vector<RunEntry>* out) const {
  scratch->resize(n * kRunBlockBytes);
  VECTORD_RETURN_IF_ERROR(
      PreadAll(fd_, scratch->data(), scratch->size(), BlockOffset(first), path_));
  for (uint64_t i = 0; i < n; ++i) {
    const uint8_t* p = scratch->data() + i * kRunBlockBytes;
    uint32_t count;
    VECTORD_RETURN_IF_ERROR(CheckBlock(first + i, p, &count));
    for (uint32_t j = 0; j < count; ++j) {
      out->push_back(RunEntry{GetF64(p + j * kEntryBytes), GetU32(p + j * kEntryBytes + 8)});
    }
  }
  return Status::OK();
}

Status SortedRunFile::ScanBlocks(double lo, double hi,
                                 const std::function<void(std::span<const RunEntry>)>& fn) const {
  if (blocks_ == 0 || lo > hi) return Status::OK();
  const auto [begin, end] = BlocksOf(lo, hi);
  std::vector<uint8_t> scratch;
  std::vector<RunEntry> entries;
  for (uint64_t b = begin; b < end; b += kIoBlocks) {
    const uint64_t n = std::min(kIoBlocks, end - b);
    entries.clear();
    VECTORD_RETURN_IF_ERROR(ReadBlocks(b, n, &scratch, &entries));
    fn(entries);
  }
  return Status::OK();
}

Status SortedRunFile::CollectRows(double lo, bool lo_open, double hi, bool hi_open,
                                  std::vector<uint32_t>* rows) const {
  if (blocks_ == 0 || lo > hi) return Status::OK();
  auto in = [&](double v) { return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi); };
  const auto [begin, end] = BlocksOf(lo, hi);
  std::vector<uint8_t> scratch;
  for (uint64_t b0 = begin; b0 < end; b0 += kIoBlocks) {
    const uint64_t n = std::min(kIoBlocks, end - b0);
    scratch.resize(n * kRunBlockBytes);
    VECTORD_RETURN_IF_ERROR(PreadAll(fd_, scratch.data(), scratch.size(), BlockOffset(b0), path_));
    for (uint64_t i = 0; i < n; ++i) {
      const uint8_t* p = scratch.data() + i * kRunBlockBytes;
      const uint64_t b = b0 + i;
      uint32_t count;
      VECTORD_RETURN_IF_ERROR(CheckBlock(b, p, &count));
      // Values ascend: a block starting inside the interval whose successor also starts inside
      // it holds only values inside it.
      const bool whole = b + 1 < blocks_ && in(fences_[b]) && in(fences_[b + 1]);
      const size_t at = rows->size();
      if (whole) {
        rows->resize(at + count);
        uint32_t* out = rows->data() + at;
        for (uint32_t j = 0; j < count; ++j) out[j] = GetU32(p + j * kEntryBytes + 8);
      } else {
        for (uint32_t j = 0; j < count; ++j) {
          if (in(GetF64(p + j * kEntryBytes))) rows->push_back(GetU32(p + j * kEntryBytes + 8));
        }
      }
    }
  }
  return Status::OK();
}

Result<std::unique_ptr<SortedRunFile::Reader>> SortedRunFile::NewReader() const {
  std::unique_ptr<Reader> r(new Reader(this));
  VECTORD_RETURN_IF_ERROR(r->Fill());
  return r;
}

Status SortedRunFile::Reader::Fill() {
  buf_.clear();
  pos_ = 0;
  if (next_block_ >= f_->blocks_) return Status::OK();
  const uint64_t n = std::min(kIoBlocks, f_->blocks_ - next_block_);
  std::vector<uint8_t> scratch;
  VECTORD_RETURN_IF_ERROR(f_->ReadBlocks(next_block_, n, &scratch, &buf_));
  next_block_ += n;
  return Status::OK();
}

Status SortedRunFile::Reader::Next() {
  if (++pos_ < buf_.size()) return Status::OK();
  return Fill();
}

}  // namespace vectord::storage
