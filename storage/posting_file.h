// Posting-list file of the SPANN index: every posting list stored contiguously as whole 4 KiB
// pages with a per-page trailer (list id + CRC-32C), a checksummed directory and footer.
// Written once by PostingFileWriter (streaming, "<path>.tmp" then rename), read by PostingFile.
// The byte layout is documented in docs/formats.md, "Posting-list file".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vectord/status.h"

namespace vectord::storage {

// Where a list lives in the file. An empty list has pages == 0 and bytes == 0 (first_page 0).
struct PostingListInfo {
  uint32_t first_page = 0;  // page index (file offset / 4096) of the list's first page
  uint32_t pages = 0;       // ceil(bytes / kPostingPagePayload)
  uint32_t count = 0;       // entries in the list (opaque to this file; given by the builder)
  uint32_t bytes = 0;       // payload bytes
};

inline constexpr uint32_t kPostingPageBytes = 4096;
inline constexpr uint32_t kPostingPageTrailer = 8;  // {u32 list_id, u32 crc32c}
inline constexpr uint32_t kPostingPagePayload = kPostingPageBytes - kPostingPageTrailer;  // 4088
inline constexpr uint32_t kPostingMaxUserHeader = 2048;

// Pages a list of `bytes` payload bytes occupies.
constexpr uint32_t PostingPagesFor(uint32_t bytes) {
  return (bytes + kPostingPagePayload - 1) / kPostingPagePayload;
}

// Streaming builder. Not thread-safe. Pages are written as lists arrive, so memory is
// O(num_lists * 16 bytes) for the directory plus one list's pages. If the writer is destroyed
// without a successful Finish(), the temporary file is removed and `path` is left untouched.
class PostingFileWriter {
 public:
  // Creates "<path>.tmp" (truncating a stale one) and writes the header page. `entry_bytes` and
  // `layout_tag` describe the payload for the index (stored, not interpreted here);
  // `user_header` is an opaque blob of at most kPostingMaxUserHeader bytes.
  static Result<std::unique_ptr<PostingFileWriter>> Create(const std::string& path,
                                                           uint32_t num_lists, uint32_t entry_bytes,
                                                           uint32_t layout_tag,
                                                           std::string_view user_header);
  ~PostingFileWriter();
  PostingFileWriter(const PostingFileWriter&) = delete;
  PostingFileWriter& operator=(const PostingFileWriter&) = delete;

  // Appends list `list_id` (< num_lists) with `bytes` payload bytes holding `count` entries.
  // Lists may be appended in any order, each at most once; lists never appended are empty.
  // After an error the writer is unusable (Finish fails).
  Status AppendList(uint32_t list_id, const uint8_t* payload, uint32_t bytes, uint32_t count);
  // Writes directory and footer, fsyncs, renames "<path>.tmp" to `path` and fsyncs the directory.
  Status Finish();

  uint64_t bytes_written() const { return uint64_t{next_page_} * kPostingPageBytes; }

 private:
  PostingFileWriter(std::string path, int fd, uint32_t num_lists);

  std::string path_;      // final path
  std::string tmp_path_;  // path_ + ".tmp"
  int fd_;
  uint32_t next_page_ = 1;  // page 0 is the header
  bool failed_ = false;
  bool finished_ = false;
  std::vector<PostingListInfo> dir_;
  std::vector<bool> appended_;
  std::vector<uint8_t> page_buf_;  // reused staging buffer for one list's pages
};

// Reader. Thread-safe: every method is const and the state is immutable after Open.
// List pages are read by the caller (e.g. through IoReader on direct_fd(), at offset
// info(list).first_page * 4096, info(list).pages * 4096 bytes) and checked with DecodeList.
class PostingFile {
 public:
  static constexpr char kMagic[8] = {'V', 'D', 'P', 'O', 'S', 'T', '0', '1'};
  static constexpr char kFooterMagic[8] = {'V', 'D', 'P', 'O', 'S', 'T', 'F', 'T'};
  static constexpr uint32_t kVersion = 1;

  // Reads and verifies header, footer and directory (Corruption naming the file and field on any
  // mismatch), then opens a second descriptor with O_DIRECT for list reads; where the filesystem
  // refuses O_DIRECT (EINVAL, e.g. tmpfs) that descriptor is a buffered one and direct_io() is
  // false. `force_buffered` skips O_DIRECT (tests, benchmarks of the page-cache path).
  static Result<std::unique_ptr<PostingFile>> Open(const std::string& path,
                                                   bool force_buffered = false);
  ~PostingFile();
  PostingFile(const PostingFile&) = delete;
  PostingFile& operator=(const PostingFile&) = delete;

  uint32_t num_lists() const { return static_cast<uint32_t>(dir_.size()); }
  uint32_t entry_bytes() const { return entry_bytes_; }
  uint32_t layout_tag() const { return layout_tag_; }
  std::string_view user_header() const { return user_header_; }
  // `list` must be < num_lists().
  const PostingListInfo& info(uint32_t list) const { return dir_[list]; }
  uint64_t list_offset(uint32_t list) const {
    return uint64_t{dir_[list].first_page} * kPostingPageBytes;
  }
  uint64_t list_read_bytes(uint32_t list) const {
    return uint64_t{dir_[list].pages} * kPostingPageBytes;
  }

  // Descriptor for list reads: O_DIRECT when direct_io(), so offsets, lengths and buffers must be
  // 4096-aligned (AlignedBuffer). Owned by this object.
  int direct_fd() const { return direct_fd_; }
  bool direct_io() const { return direct_io_; }

  // Verifies the page trailers (list id and CRC-32C) of list `list` read into `pages`
  // (info(list).pages * 4096 bytes) and copies its payload (info(list).bytes bytes) contiguously
  // into `payload_out`. Corruption names the file, list, page and file offset.
  Status DecodeList(uint32_t list, const uint8_t* pages, uint8_t* payload_out) const;
  // Convenience for tools and tests: synchronous pread of one list (buffered descriptor) +
  // DecodeList into `payload` (resized to info(list).bytes).
  Status ReadList(uint32_t list, std::vector<uint8_t>* payload) const;

  uint64_t file_bytes() const { return file_bytes_; }
  const std::string& path() const { return path_; }

 private:
  PostingFile() = default;

  std::string path_;
  int fd_ = -1;         // buffered, for metadata and ReadList
  int direct_fd_ = -1;  // O_DIRECT when direct_io_
  bool direct_io_ = false;
  uint32_t entry_bytes_ = 0;
  uint32_t layout_tag_ = 0;
  std::string user_header_;
  uint64_t file_bytes_ = 0;
  std::vector<PostingListInfo> dir_;
};

}  // namespace vectord::storage
