// Posting-list file of the SPANN index: every posting list stored contiguously as whole 4 KiB
// pages with a per-page trailer (list id + CRC-32C), a checksummed directory and footer.
// Written once by PostingFileWriter (streaming, "<path>.tmp" then rename), read by PostingFile.
// The page format functions below are shared with PostingStore (storage/posting_store.h), the
// mutable version-2 file of a living index. The byte layout is documented in docs/formats.md,
// "Posting-list file, version 1" and "Posting-list file, version 2 (living index)".
#pragma once

#include <cstddef>
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

// ---------------------------------------------------------------------------------------------
// Page format shared by PostingFile (version 1) and PostingStore (version 2, the mutable file of
// a living index, storage/posting_store.h): the header page and list pages are the same in both.

// Byte offset of the u32 version field in the header page.
inline constexpr size_t kPostingHeaderVersionOffset = 8;

// The fields of the header page (page 0).
struct PostingFileHeader {
  uint32_t version = 0;
  uint32_t num_lists = 0;  // version 1: lists in the directory; version 2: informational only
  uint32_t entry_bytes = 0;
  uint32_t layout_tag = 0;
  std::string user_header;  // at most kPostingMaxUserHeader bytes
};

// Fills the kPostingPageBytes bytes at `page` with the header page of `h` (magic, fields, user
// header, zeros, CRC). `h.user_header` must be at most kPostingMaxUserHeader bytes.
void EncodePostingHeader(const PostingFileHeader& h, uint8_t* page);
// Parses a header page: Corruption naming `path` on a bad magic, checksum or user header length.
// The version is returned, not checked: each reader decides which versions it accepts.
Status DecodePostingHeader(const std::string& path, const uint8_t* page, PostingFileHeader* out);
// CRC-32C of a header page as stored at its last 4 bytes (covers bytes [0, 4092)).
uint32_t PostingHeaderCrc(const uint8_t* page);

// Formats list `list_id`'s `bytes` payload bytes as PostingPagesFor(bytes) pages destined for file
// pages first_page, first_page + 1, … into `pages_out` (that many × 4096 bytes): payload pieces,
// zero padding after the last byte, trailers {list_id, CRC-32C seeded with the page index}.
void EncodePostingPages(uint32_t list_id, uint32_t first_page, const uint8_t* payload,
                        uint32_t bytes, uint8_t* pages_out);
// Verifies the trailers (owner list id and CRC) of list `list_id` read into `pages`
// (info.pages × 4096 bytes, from file page info.first_page) and copies its info.bytes payload bytes
// contiguously into `payload_out`. Corruption names `path`, the list, the page and its file offset;
// InvalidArgument when info.pages != PostingPagesFor(info.bytes).
Status DecodePostingPages(const std::string& path, uint32_t list_id, const PostingListInfo& info,
                          const uint8_t* pages, uint8_t* payload_out);

// Reads and verifies the footer and directory of the version-1 file open on `fd` (`file_bytes`
// long, whose header says `num_lists` lists) into `dir` (indexed by list id). *data_end_page
// receives D + 1: the first page after the list pages, where the directory begins. Corruption
// names `path` and the field or offset.
Status ReadPostingDirectoryV1(int fd, const std::string& path, uint64_t file_bytes,
                              uint32_t num_lists, std::vector<PostingListInfo>* dir,
                              uint32_t* data_end_page);

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
