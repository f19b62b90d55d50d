// PostingStore: the version-2 posting-list file of a living index — header page, then pages handed
// out by a best-fit allocator over runs of free pages (docs/formats.md "Posting-list file,
// version 2 (living index)").
#include "storage/posting_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

#include "storage/file_util.h"

namespace vectord::storage {
namespace {

// first_page + pages of any extent fits a u32 (the directory's field and the page CRC seed).
constexpr uint64_t kMaxFilePages = 0xFFFFFFFFull;

std::string Ctx(const std::string& path) { return "posting store '" + path + "'"; }

Status Errno(const std::string& path, const std::string& what) {
  const int err = errno;
  if (err == ENOENT) return Status::NotFound(Ctx(path) + ": " + what + ": " + std::strerror(err));
  return Status::IOError(Ctx(path) + ": " + what + ": " + std::strerror(err));
}

std::string Range(uint64_t first, uint64_t pages) {
  return "[" + std::to_string(first) + ", " + std::to_string(first + pages) + ")";
}

}  // namespace

PostingStore::~PostingStore() {
  if (direct_fd_ >= 0 && direct_fd_ != fd_) ::close(direct_fd_);
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<PostingStore>> PostingStore::Create(const std::string& path,
                                                           uint32_t entry_bytes,
                                                           uint32_t layout_tag,
                                                           std::string_view user_header,
                                                           bool force_buffered) {
  if (user_header.size() > kPostingMaxUserHeader) {
    return Status::InvalidArgument(Ctx(path) + ": user header of " +
                                   std::to_string(user_header.size()) + " bytes exceeds " +
                                   std::to_string(kPostingMaxUserHeader));
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    return Status::AlreadyExists(Ctx(path) + ": the file exists already");
  }
  // The header goes to a temporary file that is renamed into place, so `path` never exists
  // without a complete header.
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(path, "create '" + tmp + "'");
  uint8_t page[kPostingPageBytes];
  EncodePostingHeader(
      PostingFileHeader{kVersion, 0, entry_bytes, layout_tag, std::string(user_header)}, page);
  Status s = PwriteAll(fd, page, sizeof(page), 0, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = Errno(path, "fsync '" + tmp + "'");
  if (::close(fd) != 0 && s.ok()) s = Errno(path, "close '" + tmp + "'");
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Errno(path, "rename '" + tmp + "'");
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  VECTORD_RETURN_IF_ERROR(SyncParentDir(path));

  std::vector<PostingListInfo> none;
  VECTORD_ASSIGN_OR_RETURN(std::unique_ptr<PostingStore> store, Open(path, &none, force_buffered));
  VECTORD_RETURN_IF_ERROR(store->InitAllocator({}));
  return store;
}

Result<std::unique_ptr<PostingStore>> PostingStore::Open(const std::string& path,
                                                         std::vector<PostingListInfo>* v1_directory,
                                                         bool force_buffered) {
  std::unique_ptr<PostingStore> s(new PostingStore());
  s->path_ = path;
  const std::string ctx = Ctx(path);
  s->fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (s->fd_ < 0) return Errno(path, "open");
  struct stat st;
  if (::fstat(s->fd_, &st) != 0) return Errno(path, "stat");
  uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes < kPostingPageBytes) {
    return Status::Corruption(ctx + ": size " + std::to_string(file_bytes) +
                              " is smaller than the 4096-byte header page");
  }

  uint8_t page[kPostingPageBytes];
  VECTORD_RETURN_IF_ERROR(PreadAll(s->fd_, page, sizeof(page), 0, path));
  // A crash inside UpgradeHeader's single-page write may leave a header whose sectors come from
  // both versions. The two differ only in the version field and the CRC, so such a header has a
  // CRC that matches when the version field is read as the other of 1 and 2. No list page is
  // written before the upgrade is durable, so the version-1 footer is still intact: open as v1.
  // (A flipped bit cannot turn 1 into 2, so bit rot in the field is still Corruption.)
  bool torn_upgrade = false;
  const uint32_t stored_crc = GetU32(page + kPostingPageBytes - 4);
  const uint32_t version_field = GetU32(page + kPostingHeaderVersionOffset);
  if (stored_crc != PostingHeaderCrc(page) && (version_field == 1 || version_field == 2)) {
    uint8_t other[kPostingPageBytes];
    std::memcpy(other, page, sizeof(page));
    PutU32(other + kPostingHeaderVersionOffset, 3 - version_field);
    if (PostingHeaderCrc(other) == stored_crc) {
      torn_upgrade = true;
      PutU32(page + kPostingHeaderVersionOffset, 1);
      PutU32(page + kPostingPageBytes - 4, PostingHeaderCrc(page));
    }
  }
  PostingFileHeader hdr;
  VECTORD_RETURN_IF_ERROR(DecodePostingHeader(path, page, &hdr));
  s->entry_bytes_ = hdr.entry_bytes;
  s->layout_tag_ = hdr.layout_tag;
  s->v1_num_lists_ = hdr.num_lists;
  s->user_header_ = std::move(hdr.user_header);

  if (hdr.version == PostingFile::kVersion) {
    uint32_t data_end_page = 0;
    Status st1 = ReadPostingDirectoryV1(s->fd_, path, file_bytes, hdr.num_lists, v1_directory,
                                        &data_end_page);
    if (!st1.ok()) {
      return torn_upgrade ? st1.WithContext(ctx + ": header torn during its upgrade to version 2")
                          : st1;
    }
    s->header_version_.store(1, std::memory_order_release);
    s->meta_begin_ = data_end_page;
    s->meta_end_ = static_cast<uint32_t>(file_bytes / kPostingPageBytes);
  } else if (hdr.version == kVersion) {
    v1_directory->clear();
    if (file_bytes % kPostingPageBytes != 0) {
      // Pages are only ever written whole; a partial one at the end is a crash while the file
      // grew, and Sync() never completed for it, so no committed record references it.
      file_bytes -= file_bytes % kPostingPageBytes;
      if (::ftruncate(s->fd_, static_cast<off_t>(file_bytes)) != 0) {
        return Errno(path, "cut a partial page at " + std::to_string(file_bytes));
      }
    }
  } else {
    return Status::Corruption(ctx + ": unsupported version " + std::to_string(hdr.version) +
                              " (expected 1 or 2)");
  }
  if (file_bytes / kPostingPageBytes > kMaxFilePages) {
    return Status::Corruption(ctx + ": size " + std::to_string(file_bytes) +
                              " exceeds 2^32 - 1 pages");
  }
  s->file_pages_ = static_cast<uint32_t>(file_bytes / kPostingPageBytes);
  VECTORD_RETURN_IF_ERROR(s->OpenDescriptors(force_buffered));
  return s;
}

Status PostingStore::OpenDescriptors(bool force_buffered) {
  if (!force_buffered) {
    direct_fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC | O_DIRECT);
    if (direct_fd_ >= 0) {
      direct_io_ = true;
    } else if (errno != EINVAL) {
      return Errno(path_, "open with O_DIRECT");
    }
  }
  if (direct_fd_ < 0) direct_fd_ = fd_;  // buffered fallback shares the descriptor
  direct_writes_ = direct_io_;
  return Status::OK();
}

Status PostingStore::UpgradeHeader() {
  if (header_version() != PostingFile::kVersion) {
    return Status::FailedPrecondition(Ctx(path_) + ": header is version " +
                                      std::to_string(header_version()) + " already");
  }
  write_buf_.Resize(kPostingPageBytes);
  // Everything but the version field (and so the CRC) stays as it was: Open relies on that to
  // recognize a torn rewrite.
  EncodePostingHeader(
      PostingFileHeader{kVersion, v1_num_lists_, entry_bytes_, layout_tag_, user_header_},
      write_buf_.data());
  VECTORD_RETURN_IF_ERROR(WritePages(0, write_buf_.data(), 1));
  VECTORD_RETURN_IF_ERROR(Sync());
  header_version_.store(kVersion, std::memory_order_release);
  std::lock_guard<std::mutex> lock(mu_);
  if (allocator_ready_ && meta_end_ > meta_begin_) {
    FreeLocked(meta_begin_, meta_end_ - meta_begin_);
  }
  meta_begin_ = meta_end_ = 0;
  return Status::OK();
}

Status PostingStore::InitAllocator(const std::vector<PostingListInfo>& directory) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string ctx = Ctx(path_);
  if (allocator_ready_) {
    return Status::FailedPrecondition(ctx + ": allocator initialized twice");
  }
  // Lists may use pages [1, limit): before the directory of an un-upgraded version-1 file.
  const uint32_t limit = meta_end_ > meta_begin_ ? meta_begin_ : file_pages_;
  struct Extent {
    uint32_t first, pages, list;
  };
  std::vector<Extent> extents;
  uint64_t used = 0;
  for (uint32_t id = 0; id < directory.size(); ++id) {
    const PostingListInfo& info = directory[id];
    if (info.pages != PostingPagesFor(info.bytes)) {
      return Status::Corruption(ctx + ": list " + std::to_string(id) + " has " +
                                std::to_string(info.pages) + " pages for " +
                                std::to_string(info.bytes) + " bytes (expected " +
                                std::to_string(PostingPagesFor(info.bytes)) + ")");
    }
    if (info.pages == 0) continue;
    if (info.first_page == 0 || uint64_t{info.first_page} + info.pages > limit) {
      return Status::Corruption(ctx + ": list " + std::to_string(id) + " at pages " +
                                Range(info.first_page, info.pages) +
                                " lies outside the file's list pages " + Range(1, limit - 1));
    }
    extents.push_back({info.first_page, info.pages, id});
    used += info.pages;
  }
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.first < b.first; });
  // Sweep in page order; `reach` is the furthest end so far and `owner` the extent reaching it.
  uint32_t reach = 1;
  const Extent* owner = nullptr;
  std::vector<std::pair<uint32_t, uint32_t>> gaps;
  for (const Extent& e : extents) {
    if (e.first < reach) {
      return Status::Corruption(ctx + ": lists " + std::to_string(owner->list) + " and " +
                                std::to_string(e.list) + " overlap (pages " +
                                Range(owner->first, owner->pages) + " and " +
                                Range(e.first, e.pages) + ")");
    }
    if (e.first > reach) gaps.emplace_back(reach, e.first - reach);
    reach = e.first + e.pages;
    owner = &e;
  }
  if (limit > reach) gaps.emplace_back(reach, limit - reach);
  for (const auto& [first, pages] : gaps) AddRunLocked(first, pages);
  used_pages_ = used;
  allocator_ready_ = true;
  return Status::OK();
}

void PostingStore::AddRunLocked(uint32_t first, uint32_t pages) {
  free_by_start_.emplace(first, pages);
  free_by_size_.emplace(pages, first);
  free_pages_ += pages;
}

void PostingStore::RemoveRunLocked(uint32_t first, uint32_t pages) {
  free_by_start_.erase(first);
  free_by_size_.erase({pages, first});
  free_pages_ -= pages;
}

void PostingStore::FreeLocked(uint32_t first, uint32_t pages) {
  auto next = free_by_start_.lower_bound(first);
  if (next != free_by_start_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == first) {
      const uint32_t prev_first = prev->first, prev_pages = prev->second;
      RemoveRunLocked(prev_first, prev_pages);
      first = prev_first;
      pages += prev_pages;
      next = free_by_start_.lower_bound(first);
    }
  }
  if (next != free_by_start_.end() && next->first == first + pages) {
    const uint32_t next_first = next->first, next_pages = next->second;
    RemoveRunLocked(next_first, next_pages);
    pages += next_pages;
  }
  AddRunLocked(first, pages);
}

uint32_t PostingStore::AllocateBelowLocked(uint32_t pages, uint32_t below) {
  // Best fit among the runs that end at or before `below` (compaction moves lists down).
  for (auto fit = free_by_size_.lower_bound({pages, 0}); fit != free_by_size_.end(); ++fit) {
    const auto [run_pages, first] = *fit;
    if (first + pages <= below) return TakeFromRunLocked(first, run_pages, pages);
  }
  return 0;
}

uint32_t PostingStore::TakeFromRunLocked(uint32_t first, uint32_t run_pages, uint32_t pages) {
  RemoveRunLocked(first, run_pages);
  if (run_pages > pages) AddRunLocked(first + pages, run_pages - pages);
  return first;
}

uint32_t PostingStore::AllocateLocked(uint32_t pages) {
  // Best fit: the smallest run that holds `pages`, the lowest-placed among equals; the rest of
  // the run stays free. O(log runs).
  auto fit = free_by_size_.lower_bound({pages, 0});
  if (fit != free_by_size_.end()) return TakeFromRunLocked(fit->second, fit->first, pages);
  // No run is large enough: extend the free run that ends the file, if any, else append.
  uint32_t first = file_pages_;
  uint32_t tail_pages = 0;
  if (!free_by_start_.empty()) {
    const auto last = std::prev(free_by_start_.end());
    if (last->first + last->second == file_pages_) {
      first = last->first;
      tail_pages = last->second;
    }
  }
  if (uint64_t{first} + pages > kMaxFilePages) return 0;
  if (tail_pages > 0) RemoveRunLocked(first, tail_pages);
  file_pages_ = first + pages;
  return first;
}

Status PostingStore::WritePages(uint32_t first_page, const uint8_t* data, uint32_t pages) {
  uint64_t off = uint64_t{first_page} * kPostingPageBytes;
  const uint8_t* p = data;
  size_t n = size_t{pages} * kPostingPageBytes;
  // O_DIRECT keeps rewritten lists out of the page cache; a file system that accepts the flag at
  // open but refuses the write (EINVAL) gets buffered writes from then on.
  while (n > 0 && direct_writes_) {
    const ssize_t w = ::pwrite(direct_fd_, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL) {
        direct_writes_ = false;
        break;
      }
      return Errno(path_, "write at offset " + std::to_string(off));
    }
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  if (n == 0) return Status::OK();
  return PwriteAll(fd_, p, n, off, path_);
}

Result<PostingListInfo> PostingStore::WriteList(uint32_t list_id, const uint8_t* payload,
                                                uint32_t bytes, uint32_t count,
                                                uint32_t below_page) {
  const std::string ctx = Ctx(path_);
  if (bytes > 0 && payload == nullptr) {
    return Status::InvalidArgument(ctx + ": list " + std::to_string(list_id) +
                                   " has null payload for " + std::to_string(bytes) + " bytes");
  }
  if (header_version() != kVersion) {
    return Status::FailedPrecondition(
        ctx +
        ": version-1 file not upgraded yet (UpgradeHeader once the directory is durable "
        "elsewhere); list " +
        std::to_string(list_id) + " not written");
  }
  const uint32_t pages = PostingPagesFor(bytes);
  if (pages == 0) return PostingListInfo{0, 0, count, 0};
  uint32_t first = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!allocator_ready_) {
      return Status::FailedPrecondition(ctx + ": WriteList before InitAllocator");
    }
    if (below_page != 0) {
      first = AllocateBelowLocked(pages, below_page);
      if (first == 0) {
        return Status::NotFound(ctx + ": no free run of " + std::to_string(pages) +
                                " pages below page " + std::to_string(below_page));
      }
    } else {
      first = AllocateLocked(pages);
    }
    if (first == 0) {
      return Status::InvalidArgument(ctx + ": list " + std::to_string(list_id) + " of " +
                                     std::to_string(pages) +
                                     " pages would grow the file past 2^32 - 1 pages");
    }
    used_pages_ += pages;
  }
  write_buf_.Resize(size_t{pages} * kPostingPageBytes);
  EncodePostingPages(list_id, first, payload, bytes, write_buf_.data());
  Status s = WritePages(first, write_buf_.data(), pages);
  std::lock_guard<std::mutex> lock(mu_);
  if (!s.ok()) {
    FreeLocked(first, pages);
    used_pages_ -= pages;
    return s.WithContext("list " + std::to_string(list_id));
  }
  pages_written_ += pages;
  return PostingListInfo{first, pages, count, bytes};
}

Status PostingStore::Sync() {
  if (::fdatasync(fd_) != 0) return Errno(path_, "fdatasync");
  return Status::OK();
}

Status PostingStore::Free(const PostingListInfo& extent) {
  if (extent.pages == 0) return Status::OK();
  const std::string what = "free pages " + Range(extent.first_page, extent.pages);
  std::lock_guard<std::mutex> lock(mu_);
  if (!allocator_ready_) {
    return Status::FailedPrecondition(Ctx(path_) + ": " + what + " before InitAllocator");
  }
  const uint64_t end = uint64_t{extent.first_page} + extent.pages;
  if (extent.first_page == 0 || end > file_pages_) {
    return Status::InvalidArgument(Ctx(path_) + ": " + what + ": outside the list pages " +
                                   Range(1, file_pages_ - 1));
  }
  if (meta_end_ > meta_begin_ && extent.first_page < meta_end_ && end > meta_begin_) {
    return Status::InvalidArgument(Ctx(path_) + ": " + what +
                                   ": overlaps the version-1 directory and footer " +
                                   Range(meta_begin_, meta_end_ - meta_begin_));
  }
  auto next = free_by_start_.lower_bound(extent.first_page);
  bool overlaps = next != free_by_start_.end() && next->first < end;
  if (next != free_by_start_.begin()) {
    const auto prev = std::prev(next);
    overlaps = overlaps || uint64_t{prev->first} + prev->second > extent.first_page;
  }
  if (overlaps) {
    return Status::InvalidArgument(Ctx(path_) + ": " + what +
                                   ": some of them are free already (double free)");
  }
  FreeLocked(extent.first_page, extent.pages);
  used_pages_ -= extent.pages;
  return Status::OK();
}

Status PostingStore::TrimTail() {
  std::lock_guard<std::mutex> lock(mu_);
  if (free_by_start_.empty()) return Status::OK();
  const auto last = std::prev(free_by_start_.end());
  const uint32_t first = last->first, pages = last->second;
  if (first + pages != file_pages_) return Status::OK();
  // Under mu_ so that a concurrent Free cannot merge into the run being cut.
  if (::ftruncate(fd_, static_cast<off_t>(uint64_t{first} * kPostingPageBytes)) != 0) {
    return Errno(path_, "truncate to " + std::to_string(uint64_t{first} * kPostingPageBytes));
  }
  RemoveRunLocked(first, pages);
  file_pages_ = first;
  return Status::OK();
}

PostingStoreStats PostingStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  PostingStoreStats st;
  st.file_bytes = uint64_t{file_pages_} * kPostingPageBytes;
  st.used_pages = used_pages_;
  st.free_pages = free_pages_;
  st.free_runs = free_by_start_.size();
  st.metadata_pages = 1 + (meta_end_ - meta_begin_);
  st.pages_written = pages_written_;
  return st;
}

std::vector<std::pair<uint32_t, uint32_t>> PostingStore::FreeRuns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {free_by_start_.begin(), free_by_start_.end()};
}

Status PostingStore::DecodeList(uint32_t list_id, const PostingListInfo& info, const uint8_t* pages,
                                uint8_t* payload_out) const {
  return DecodePostingPages(path_, list_id, info, pages, payload_out);
}

Status PostingStore::ReadList(uint32_t list_id, const PostingListInfo& info,
                              std::vector<uint8_t>* payload) const {
  if (info.pages != PostingPagesFor(info.bytes)) {
    return Status::InvalidArgument(Ctx(path_) + ": list " + std::to_string(list_id) +
                                   " extent of " + std::to_string(info.pages) +
                                   " pages cannot hold " + std::to_string(info.bytes) + " bytes");
  }
  std::vector<uint8_t> pages(size_t{info.pages} * kPostingPageBytes);
  VECTORD_RETURN_IF_ERROR(PreadAll(fd_, pages.data(), pages.size(),
                                   uint64_t{info.first_page} * kPostingPageBytes, path_));
  payload->resize(info.bytes);
  return DecodeList(list_id, info, pages.data(), payload->data());
}

}  // namespace vectord::storage
