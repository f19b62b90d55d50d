// PostingFileWriter / PostingFile: the SPANN posting-list file (docs/formats.md,
// "Posting-list file"): header page, list pages with {list id, CRC-32C} trailers, directory,
// footer page.
#include "storage/posting_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "storage/crc32c.h"
#include "storage/file_util.h"

namespace vectord::storage {
namespace {

// Header page (page 0), little-endian; zero up to the CRC at the end of the page:
// 0 magic[8] | 8 version | 12 num_lists | 16 entry_bytes | 20 layout_tag | 24 user_header_bytes |
// 28 zero u32 | 32 user header blob | ... | 4092 crc32c of bytes [0, 4092).
constexpr size_t kHdrVersion = kPostingHeaderVersionOffset, kHdrNumLists = 12, kHdrEntryBytes = 16,
                 kHdrLayoutTag = 20, kHdrUserBytes = 24, kHdrUser = 32;
// Footer page (last page):
// 0 magic[8] | 8 version | 12 num_lists | 16 directory offset u64 | 24 directory bytes u64 |
// 32 directory crc32c | 36 zero u32 | ... | 4092 crc32c of bytes [0, 4092).
constexpr size_t kFtVersion = 8, kFtNumLists = 12, kFtDirOffset = 16, kFtDirBytes = 24,
                 kFtDirCrc = 32;
constexpr size_t kPageCrcOffset = kPostingPageBytes - 4;
constexpr size_t kDirEntryBytes = 16;  // {first_page, pages, count, bytes}, u32 each
constexpr size_t kWriteFlushBytes = 1 << 20;

// A page's CRC is seeded with its page index so that a page written at the wrong place fails.
uint32_t PageCrc(uint32_t page_index, const uint8_t* page) {
  return Crc32c(page_index, page, kPostingPagePayload);
}

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError("posting file '" + path + "': " + what + ": " + std::strerror(errno));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Page format shared with PostingStore

uint32_t PostingHeaderCrc(const uint8_t* page) { return Crc32c(0, page, kPageCrcOffset); }

void EncodePostingHeader(const PostingFileHeader& h, uint8_t* page) {
  std::memset(page, 0, kPostingPageBytes);
  std::memcpy(page, PostingFile::kMagic, 8);
  PutU32(page + kHdrVersion, h.version);
  PutU32(page + kHdrNumLists, h.num_lists);
  PutU32(page + kHdrEntryBytes, h.entry_bytes);
  PutU32(page + kHdrLayoutTag, h.layout_tag);
  PutU32(page + kHdrUserBytes, static_cast<uint32_t>(h.user_header.size()));
  if (!h.user_header.empty()) {
    std::memcpy(page + kHdrUser, h.user_header.data(), h.user_header.size());
  }
  PutU32(page + kPageCrcOffset, PostingHeaderCrc(page));
}

Status DecodePostingHeader(const std::string& path, const uint8_t* page, PostingFileHeader* out) {
  const std::string ctx = "posting file '" + path + "'";
  if (std::memcmp(page, PostingFile::kMagic, 8) != 0) {
    return Status::Corruption(ctx + ": bad magic in header (not a posting-list file)");
  }
  if (GetU32(page + kPageCrcOffset) != PostingHeaderCrc(page)) {
    return Status::Corruption(ctx + ": header checksum mismatch at offset 0");
  }
  const uint32_t user_bytes = GetU32(page + kHdrUserBytes);
  if (user_bytes > kPostingMaxUserHeader) {
    return Status::Corruption(ctx + ": user header length " + std::to_string(user_bytes) +
                              " exceeds " + std::to_string(kPostingMaxUserHeader));
  }
  out->version = GetU32(page + kHdrVersion);
  out->num_lists = GetU32(page + kHdrNumLists);
  out->entry_bytes = GetU32(page + kHdrEntryBytes);
  out->layout_tag = GetU32(page + kHdrLayoutTag);
  out->user_header.assign(reinterpret_cast<const char*>(page + kHdrUser), user_bytes);
  return Status::OK();
}

void EncodePostingPages(uint32_t list_id, uint32_t first_page, const uint8_t* payload,
                        uint32_t bytes, uint8_t* pages_out) {
  const uint32_t pages = PostingPagesFor(bytes);
  for (uint32_t p = 0; p < pages; ++p) {
    uint8_t* page = pages_out + size_t{p} * kPostingPageBytes;
    const size_t off = size_t{p} * kPostingPagePayload;
    const size_t n = std::min<size_t>(kPostingPagePayload, bytes - off);
    std::memcpy(page, payload + off, n);
    if (n < kPostingPagePayload) std::memset(page + n, 0, kPostingPagePayload - n);
    PutU32(page + kPostingPagePayload, list_id);
    PutU32(page + kPostingPagePayload + 4, PageCrc(first_page + p, page));
  }
}

Status DecodePostingPages(const std::string& path, uint32_t list_id, const PostingListInfo& info,
                          const uint8_t* pages, uint8_t* payload_out) {
  if (info.pages != PostingPagesFor(info.bytes)) {
    return Status::InvalidArgument("posting file '" + path + "': list " + std::to_string(list_id) +
                                   " extent of " + std::to_string(info.pages) +
                                   " pages cannot hold " + std::to_string(info.bytes) + " bytes");
  }
  for (uint32_t p = 0; p < info.pages; ++p) {
    const uint8_t* page = pages + size_t{p} * kPostingPageBytes;
    const uint32_t page_index = info.first_page + p;
    const uint32_t owner = GetU32(page + kPostingPagePayload);
    const uint32_t crc = GetU32(page + kPostingPagePayload + 4);
    const char* what = nullptr;
    if (owner != list_id) {
      what = "page trailer names list ";
    } else if (crc != PageCrc(page_index, page)) {
      what = "checksum mismatch";
    }
    if (what != nullptr) {
      std::string msg = "posting file '" + path + "': list " + std::to_string(list_id) + " page " +
                        std::to_string(p) + " of " + std::to_string(info.pages) + " (file offset " +
                        std::to_string(uint64_t{page_index} * kPostingPageBytes) + "): " + what;
      if (owner != list_id) msg += std::to_string(owner);
      return Status::Corruption(msg);
    }
    const size_t off = size_t{p} * kPostingPagePayload;
    const size_t n = std::min<size_t>(kPostingPagePayload, info.bytes - off);
    std::memcpy(payload_out + off, page, n);
  }
  return Status::OK();
}

Status ReadPostingDirectoryV1(int fd, const std::string& path, uint64_t file_bytes,
                              uint32_t num_lists, std::vector<PostingListInfo>* out,
                              uint32_t* data_end_page) {
  const std::string ctx = "posting file '" + path + "'";
  if (file_bytes < 2 * kPostingPageBytes || file_bytes % kPostingPageBytes != 0) {
    return Status::Corruption(ctx + ": size " + std::to_string(file_bytes) +
                              " is not a whole number (>= 2) of 4096-byte pages");
  }
  // Footer.
  uint8_t page[kPostingPageBytes];
  const uint64_t footer_offset = file_bytes - kPostingPageBytes;
  VECTORD_RETURN_IF_ERROR(PreadAll(fd, page, sizeof(page), footer_offset, path));
  if (std::memcmp(page, PostingFile::kFooterMagic, 8) != 0) {
    return Status::Corruption(ctx + ": bad footer magic at offset " +
                              std::to_string(footer_offset) + " (truncated or unfinished file?)");
  }
  if (GetU32(page + kPageCrcOffset) != Crc32c(0, page, kPageCrcOffset)) {
    return Status::Corruption(ctx + ": footer checksum mismatch at offset " +
                              std::to_string(footer_offset));
  }
  const uint64_t dir_offset = GetU64(page + kFtDirOffset);
  const uint64_t dir_bytes = GetU64(page + kFtDirBytes);
  const uint32_t dir_crc = GetU32(page + kFtDirCrc);
  const uint64_t dir_padded =
      (dir_bytes + kPostingPageBytes - 1) / kPostingPageBytes * kPostingPageBytes;
  if (GetU32(page + kFtVersion) != PostingFile::kVersion ||
      GetU32(page + kFtNumLists) != num_lists ||
      dir_bytes != uint64_t{num_lists} * kDirEntryBytes || dir_offset % kPostingPageBytes != 0 ||
      dir_offset < kPostingPageBytes || dir_offset + dir_padded != footer_offset) {
    return Status::Corruption(ctx + ": footer (version " +
                              std::to_string(GetU32(page + kFtVersion)) + ", " +
                              std::to_string(GetU32(page + kFtNumLists)) + " lists, directory at " +
                              std::to_string(dir_offset) + " of " + std::to_string(dir_bytes) +
                              " bytes) does not match header (" + std::to_string(num_lists) +
                              " lists) and file size " + std::to_string(file_bytes));
  }

  // Directory.
  std::vector<uint8_t> dir(dir_padded);
  VECTORD_RETURN_IF_ERROR(PreadAll(fd, dir.data(), dir.size(), dir_offset, path));
  if (Crc32c(0, dir.data(), dir_bytes) != dir_crc) {
    return Status::Corruption(ctx + ": directory checksum mismatch at offset " +
                              std::to_string(dir_offset));
  }
  for (uint64_t i = dir_bytes; i < dir_padded; ++i) {
    if (dir[i] != 0) {
      return Status::Corruption(ctx + ": nonzero directory padding at offset " +
                                std::to_string(dir_offset + i));
    }
  }
  const uint64_t data_end = dir_offset / kPostingPageBytes;
  out->assign(num_lists, PostingListInfo{});
  for (uint32_t i = 0; i < num_lists; ++i) {
    const uint8_t* e = dir.data() + size_t{i} * kDirEntryBytes;
    PostingListInfo& info = (*out)[i];
    info.first_page = GetU32(e);
    info.pages = GetU32(e + 4);
    info.count = GetU32(e + 8);
    info.bytes = GetU32(e + 12);
    const bool bad_empty = info.pages == 0 && info.first_page != 0;
    const bool bad_range = info.pages > 0 && (info.first_page == 0 ||
                                              uint64_t{info.first_page} + info.pages > data_end);
    if (info.pages != PostingPagesFor(info.bytes) || bad_empty || bad_range) {
      return Status::Corruption(ctx + ": directory entry of list " + std::to_string(i) +
                                " is invalid (first page " + std::to_string(info.first_page) +
                                ", " + std::to_string(info.pages) + " pages, " +
                                std::to_string(info.bytes) + " bytes; data ends at page " +
                                std::to_string(data_end) + ")");
    }
  }
  *data_end_page = static_cast<uint32_t>(data_end);
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// Writer

PostingFileWriter::PostingFileWriter(std::string path, int fd, uint32_t num_lists)
    : path_(std::move(path)),
      tmp_path_(path_ + ".tmp"),
      fd_(fd),
      dir_(num_lists),
      appended_(num_lists, false) {}

PostingFileWriter::~PostingFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) ::unlink(tmp_path_.c_str());
}

Result<std::unique_ptr<PostingFileWriter>> PostingFileWriter::Create(const std::string& path,
                                                                     uint32_t num_lists,
                                                                     uint32_t entry_bytes,
                                                                     uint32_t layout_tag,
                                                                     std::string_view user_header) {
  if (user_header.size() > kPostingMaxUserHeader) {
    return Status::InvalidArgument("posting file '" + path + "': user header of " +
                                   std::to_string(user_header.size()) + " bytes exceeds " +
                                   std::to_string(kPostingMaxUserHeader));
  }
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("create '" + tmp + "'", path);
  std::unique_ptr<PostingFileWriter> w(new PostingFileWriter(path, fd, num_lists));

  uint8_t page[kPostingPageBytes];
  EncodePostingHeader(PostingFileHeader{PostingFile::kVersion, num_lists, entry_bytes, layout_tag,
                                        std::string(user_header)},
                      page);
  VECTORD_RETURN_IF_ERROR(PwriteAll(fd, page, sizeof(page), 0, tmp));
  return w;
}

Status PostingFileWriter::AppendList(uint32_t list_id, const uint8_t* payload, uint32_t bytes,
                                     uint32_t count) {
  const std::string ctx = "posting file '" + path_ + "'";
  if (failed_ || finished_) {
    return Status::FailedPrecondition(ctx + ": writer already " +
                                      (finished_ ? "finished" : "failed"));
  }
  if (list_id >= dir_.size()) {
    return Status::InvalidArgument(ctx + ": list id " + std::to_string(list_id) +
                                   " out of range (num_lists " + std::to_string(dir_.size()) + ")");
  }
  if (appended_[list_id]) {
    return Status::InvalidArgument(ctx + ": list " + std::to_string(list_id) + " appended twice");
  }
  if (bytes > 0 && payload == nullptr) {
    return Status::InvalidArgument(ctx + ": list " + std::to_string(list_id) +
                                   " has null payload for " + std::to_string(bytes) + " bytes");
  }
  appended_[list_id] = true;
  const uint32_t pages = PostingPagesFor(bytes);
  PostingListInfo& info = dir_[list_id];
  info.count = count;
  info.bytes = bytes;
  info.pages = pages;
  if (pages == 0) return Status::OK();
  if (uint64_t{next_page_} + pages >= (uint64_t{1} << 32) - 2) {
    failed_ = true;
    return Status::InvalidArgument(ctx + ": file exceeds 2^32 pages at list " +
                                   std::to_string(list_id));
  }
  info.first_page = next_page_;

  // Stage the pages in page_buf_; flushed in ~1 MiB writes (the buffer's first byte is at
  // file page next_page_ - staged pages).
  const size_t start = page_buf_.size();
  page_buf_.resize(start + size_t{pages} * kPostingPageBytes, 0);
  EncodePostingPages(list_id, next_page_, payload, bytes, page_buf_.data() + start);
  next_page_ += pages;
  if (page_buf_.size() >= kWriteFlushBytes) {
    const uint64_t staged_pages = page_buf_.size() / kPostingPageBytes;
    Status s = PwriteAll(fd_, page_buf_.data(), page_buf_.size(),
                         (next_page_ - staged_pages) * kPostingPageBytes, tmp_path_);
    page_buf_.clear();
    if (!s.ok()) {
      failed_ = true;
      return s;
    }
  }
  return Status::OK();
}

Status PostingFileWriter::Finish() {
  const std::string ctx = "posting file '" + path_ + "'";
  if (failed_ || finished_) {
    return Status::FailedPrecondition(ctx + ": writer already " +
                                      (finished_ ? "finished" : "failed"));
  }
  failed_ = true;  // until proven otherwise
  if (!page_buf_.empty()) {
    const uint64_t staged_pages = page_buf_.size() / kPostingPageBytes;
    VECTORD_RETURN_IF_ERROR(PwriteAll(fd_, page_buf_.data(), page_buf_.size(),
                                      (next_page_ - staged_pages) * kPostingPageBytes, tmp_path_));
    page_buf_.clear();
    page_buf_.shrink_to_fit();
  }
  // Directory at the first page after the data, padded with zeros to a whole page.
  const uint64_t dir_offset = uint64_t{next_page_} * kPostingPageBytes;
  const uint64_t dir_bytes = uint64_t{dir_.size()} * kDirEntryBytes;
  const uint64_t dir_padded =
      (dir_bytes + kPostingPageBytes - 1) / kPostingPageBytes * kPostingPageBytes;
  std::vector<uint8_t> dir(dir_padded, 0);
  for (size_t i = 0; i < dir_.size(); ++i) {
    uint8_t* e = dir.data() + i * kDirEntryBytes;
    PutU32(e, dir_[i].first_page);
    PutU32(e + 4, dir_[i].pages);
    PutU32(e + 8, dir_[i].count);
    PutU32(e + 12, dir_[i].bytes);
  }
  const uint32_t dir_crc = Crc32c(0, dir.data(), dir_bytes);
  VECTORD_RETURN_IF_ERROR(PwriteAll(fd_, dir.data(), dir.size(), dir_offset, tmp_path_));

  uint8_t page[kPostingPageBytes] = {};
  std::memcpy(page, PostingFile::kFooterMagic, 8);
  PutU32(page + kFtVersion, PostingFile::kVersion);
  PutU32(page + kFtNumLists, static_cast<uint32_t>(dir_.size()));
  PutU64(page + kFtDirOffset, dir_offset);
  PutU64(page + kFtDirBytes, dir_bytes);
  PutU32(page + kFtDirCrc, dir_crc);
  PutU32(page + kPageCrcOffset, Crc32c(0, page, kPageCrcOffset));
  VECTORD_RETURN_IF_ERROR(PwriteAll(fd_, page, sizeof(page), dir_offset + dir_padded, tmp_path_));

  if (::fsync(fd_) != 0) return Errno("fsync '" + tmp_path_ + "'", path_);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Errno("close '" + tmp_path_ + "'", path_);
  }
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    return Errno("rename '" + tmp_path_ + "'", path_);
  }
  finished_ = true;
  failed_ = false;
  return SyncParentDir(path_);
}

// ---------------------------------------------------------------------------------------------
// Reader

PostingFile::~PostingFile() {
  if (direct_fd_ >= 0 && direct_fd_ != fd_) ::close(direct_fd_);
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<PostingFile>> PostingFile::Open(const std::string& path,
                                                       bool force_buffered) {
  std::unique_ptr<PostingFile> f(new PostingFile());
  f->path_ = path;
  const std::string ctx = "posting file '" + path + "'";
  f->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->fd_ < 0) return Errno("open", path);
  struct stat st;
  if (::fstat(f->fd_, &st) != 0) return Errno("stat", path);
  f->file_bytes_ = static_cast<uint64_t>(st.st_size);
  if (f->file_bytes_ < 2 * kPostingPageBytes || f->file_bytes_ % kPostingPageBytes != 0) {
    return Status::Corruption(ctx + ": size " + std::to_string(f->file_bytes_) +
                              " is not a whole number (>= 2) of 4096-byte pages");
  }

  // Header.
  uint8_t page[kPostingPageBytes];
  VECTORD_RETURN_IF_ERROR(PreadAll(f->fd_, page, sizeof(page), 0, path));
  PostingFileHeader hdr;
  VECTORD_RETURN_IF_ERROR(DecodePostingHeader(path, page, &hdr));
  if (hdr.version != kVersion) {
    return Status::Corruption(ctx + ": unsupported version " + std::to_string(hdr.version) +
                              " (expected " + std::to_string(kVersion) + ")");
  }
  f->entry_bytes_ = hdr.entry_bytes;
  f->layout_tag_ = hdr.layout_tag;
  f->user_header_ = std::move(hdr.user_header);

  // Footer and directory.
  uint32_t data_end_page = 0;
  VECTORD_RETURN_IF_ERROR(ReadPostingDirectoryV1(f->fd_, path, f->file_bytes_, hdr.num_lists,
                                                 &f->dir_, &data_end_page));

  // Descriptor for list reads.
  if (!force_buffered) {
    f->direct_fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (f->direct_fd_ >= 0) {
      f->direct_io_ = true;
    } else if (errno != EINVAL) {
      return Errno("open with O_DIRECT", path);
    }
  }
  if (f->direct_fd_ < 0) f->direct_fd_ = f->fd_;  // buffered fallback shares the descriptor
  return f;
}

Status PostingFile::DecodeList(uint32_t list, const uint8_t* pages, uint8_t* payload_out) const {
  if (list >= dir_.size()) {
    return Status::InvalidArgument("posting file '" + path_ + "': list " + std::to_string(list) +
                                   " out of range (num_lists " + std::to_string(dir_.size()) + ")");
  }
  return DecodePostingPages(path_, list, dir_[list], pages, payload_out);
}

Status PostingFile::ReadList(uint32_t list, std::vector<uint8_t>* payload) const {
  if (list >= dir_.size()) {
    return Status::InvalidArgument("posting file '" + path_ + "': list " + std::to_string(list) +
                                   " out of range (num_lists " + std::to_string(dir_.size()) + ")");
  }
  std::vector<uint8_t> pages(list_read_bytes(list));
  VECTORD_RETURN_IF_ERROR(PreadAll(fd_, pages.data(), pages.size(), list_offset(list), path_));
  payload->resize(dir_[list].bytes);
  return DecodeList(list, pages.data(), payload->data());
}

}  // namespace vectord::storage
