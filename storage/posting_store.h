// PostingStore: the block-allocated, mutable posting-list file of a living SPANN index (version 2
// of the posting-list file, docs/formats.md "Posting-list file, version 2 (living index)"). Lists
// are rewritten copy-on-write into freshly allocated runs of contiguous pages; the list directory
// is not in the file but kept by the engine (checkpoint + journal, storage/record_log.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/aligned_buffer.h"
#include "storage/posting_file.h"
#include "vectord/status.h"

namespace vectord::storage {

// Counters of a PostingStore. Once the allocator is initialized,
// file_bytes / 4096 == metadata_pages + used_pages + free_pages.
struct PostingStoreStats {
  uint64_t file_bytes = 0;      // the file's length (whole pages)
  uint64_t used_pages = 0;      // pages owned by lists: InitAllocator's + WriteList's − Free'd
  uint64_t free_pages = 0;      // pages reusable without growing the file
  uint64_t free_runs = 0;       // maximal runs of free pages (fragmentation)
  uint64_t metadata_pages = 0;  // the header page; plus a version-1 file's directory and footer
                                // pages until UpgradeHeader()
  uint64_t pages_written = 0;   // list pages written since Open/Create (× 4096 = bytes written)
};

// Thread safety:
// - One writer thread calls WriteList, Sync, TrimTail, UpgradeHeader and InitAllocator.
// - Free may be called from any thread at any time (an old extent is released when the last
//   reader of an index snapshot that referenced it lets go). The allocator is guarded by an
//   internal mutex; writes to the file happen outside it, on pages the writer owns.
// - Readers use direct_fd(), DecodeList and ReadList with extents from their snapshot of the
//   directory; these never take the allocator lock and read only state fixed at Open.
// Durability: WriteList's pages are durable after Sync() (fdatasync). The engine must Sync before
// it commits a journal record that references them, and may reuse (Free) the pages of an old
// extent only once the record that replaced it is durable; then a crash at any point leaves
// every committed extent intact, and pages that no committed record references are free space
// at the next InitAllocator.
class PostingStore {
 public:
  static constexpr uint32_t kVersion = 2;

  // Creates a new empty version-2 file at `path` (AlreadyExists if something is there): header
  // page written to "<path>.tmp", fsynced, renamed, directory fsynced. The allocator is ready (no
  // lists). `entry_bytes`, `layout_tag` and `user_header` (≤ kPostingMaxUserHeader bytes) are
  // stored for the index, not interpreted. `force_buffered` skips O_DIRECT (tests).
  static Result<std::unique_ptr<PostingStore>> Create(const std::string& path, uint32_t entry_bytes,
                                                      uint32_t layout_tag,
                                                      std::string_view user_header,
                                                      bool force_buffered = false);

  // Opens an existing posting-list file for reading and writing.
  // - Version 2: *v1_directory is cleared; the directory comes from the engine's checkpoint and
  //   journal, given to InitAllocator. A partial page at the end (a crash while the file grew;
  //   never referenced by a committed record) is cut off.
  // - Version 1 (written by PostingFileWriter): footer and directory are verified and the
  //   directory (indexed by list id) is returned in *v1_directory for the engine to adopt.
  //   header_version() is 1 until UpgradeHeader(): until then the directory and footer pages are
  //   kept (metadata, neither free nor writable) and WriteList is refused, so the file stays a
  //   valid version-1 file while the engine has not durably recorded the directory elsewhere.
  //   A header torn by a crash during UpgradeHeader (checksum valid only with the version field
  //   read as the other of 1 and 2) opens as version 1 again.
  // Corruption names the file and the field. `force_buffered` skips O_DIRECT.
  static Result<std::unique_ptr<PostingStore>> Open(const std::string& path,
                                                    std::vector<PostingListInfo>* v1_directory,
                                                    bool force_buffered = false);
  ~PostingStore();
  PostingStore(const PostingStore&) = delete;
  PostingStore& operator=(const PostingStore&) = delete;

  // Version 1 only: rewrites the header page as version 2 (one 4 KiB-aligned page write, then
  // fdatasync) and releases the version-1 directory and footer pages to the free pool. Call it
  // once the engine's own checkpoint (holding the adopted directory) is durable: from here on the
  // footer is gone for good. FailedPrecondition on a version-2 file.
  Status UpgradeHeader();

  // Marks the pages of every list of `directory` (indexed by list id) in use; every other page
  // after the header (and, for an un-upgraded version-1 file, before its directory) is free.
  // Call once, after Open (Create initializes an empty allocator itself). Corruption naming the
  // lists when two overlap, and naming the list when one lies outside the file's list pages or
  // its page count does not match its bytes. An empty list (pages == 0) owns no page.
  Status InitAllocator(const std::vector<PostingListInfo>& directory);

  // Writes list `list_id` (`bytes` payload bytes holding `count` entries; opaque here) to
  // PostingPagesFor(bytes) contiguous pages: the smallest free run that fits (the lowest one among
  // equals), else the free run at the end of the file extended, else new pages at the end
  // (growing the file). Returns the new extent. Not durable before Sync(). An empty list gets
  // {0, 0, count, 0} and no page. FailedPrecondition before InitAllocator or on an un-upgraded
  // version-1 file; IOError names the file and offset (the pages are returned to the pool).
  // `below_page` (0 = anywhere): only a free run ending at or before that page will do
  // (compaction: moving a list towards the start of the file so that its end can be trimmed);
  // NotFound when there is none.
  Result<PostingListInfo> WriteList(uint32_t list_id, const uint8_t* payload, uint32_t bytes,
                                    uint32_t count, uint32_t below_page = 0);
  // fdatasync: every WriteList before it is durable.
  Status Sync();
  // Returns the pages of `extent` to the free pool, merging it with free neighbours. Any thread.
  // InvalidArgument when the extent is not wholly in use (outside the file, the header, metadata,
  // or pages already free: a double free), and nothing changes then.
  Status Free(const PostingListInfo& extent);
  // Gives the free run at the end of the file (if any) back to the file system (ftruncate).
  Status TrimTail();

  PostingStoreStats stats() const;
  // The free runs as {first_page, pages} in page order (diagnostics and tests).
  std::vector<std::pair<uint32_t, uint32_t>> FreeRuns() const;

  // Reading, as PostingFile offers it. The search path reads info.pages × 4096 bytes at
  // info.first_page × 4096 through direct_fd() (storage/io_reader.h) into a 4096-aligned buffer.
  int direct_fd() const { return direct_fd_; }
  bool direct_io() const { return direct_io_; }
  // Verifies every page trailer (owner list id, CRC) of list `list_id` read into `pages` and
  // copies its payload into `payload_out` (info.bytes bytes). Corruption names file, list, page
  // and offset.
  Status DecodeList(uint32_t list_id, const PostingListInfo& info, const uint8_t* pages,
                    uint8_t* payload_out) const;
  // Synchronous buffered pread of one list + DecodeList into `payload` (resized to info.bytes).
  Status ReadList(uint32_t list_id, const PostingListInfo& info,
                  std::vector<uint8_t>* payload) const;

  // 1 for an adopted version-1 file until UpgradeHeader(), else 2.
  uint32_t header_version() const { return header_version_.load(std::memory_order_acquire); }
  uint32_t entry_bytes() const { return entry_bytes_; }
  uint32_t layout_tag() const { return layout_tag_; }
  std::string_view user_header() const { return user_header_; }
  const std::string& path() const { return path_; }

 private:
  PostingStore() = default;
  Status OpenDescriptors(bool force_buffered);
  // Writes `pages` formatted pages at file page `first_page` (O_DIRECT when possible).
  Status WritePages(uint32_t first_page, const uint8_t* data, uint32_t pages);

  // Free-run bookkeeping; mu_ held.
  void AddRunLocked(uint32_t first, uint32_t pages);
  void RemoveRunLocked(uint32_t first, uint32_t pages);
  void FreeLocked(uint32_t first, uint32_t pages);  // coalesces with neighbours
  // First page of `pages` newly allocated pages; 0 when the file would exceed 2^32 - 1 pages.
  uint32_t AllocateLocked(uint32_t pages);
  // First page of a best-fit run wholly below page `below`; 0 when there is none.
  uint32_t AllocateBelowLocked(uint32_t pages, uint32_t below);
  // Takes the first `pages` of the free run [first, first + run_pages); the rest stays free.
  uint32_t TakeFromRunLocked(uint32_t first, uint32_t run_pages, uint32_t pages);

  // Fixed at Open/Create.
  std::string path_;
  int fd_ = -1;         // buffered read-write: header, ReadList, ftruncate, fdatasync
  int direct_fd_ = -1;  // O_RDWR | O_DIRECT when direct_io_, else == fd_
  bool direct_io_ = false;
  uint32_t entry_bytes_ = 0;
  uint32_t layout_tag_ = 0;
  uint32_t v1_num_lists_ = 0;  // the header's num_lists, kept when the header is rewritten
  std::string user_header_;
  std::atomic<uint32_t> header_version_{kVersion};

  // Writer thread only.
  bool direct_writes_ = false;  // false after the file system refused an O_DIRECT write
  AlignedBuffer write_buf_;     // staging for one list's pages

  mutable std::mutex mu_;
  bool allocator_ready_ = false;  // guarded by mu_
  uint32_t file_pages_ = 1;       // guarded by mu_: pages in the file (the header included)
  // guarded by mu_: a version-1 file's directory + footer pages [meta_begin_, meta_end_) until
  // UpgradeHeader; empty (0, 0) otherwise.
  uint32_t meta_begin_ = 0, meta_end_ = 0;
  std::map<uint32_t, uint32_t> free_by_start_;            // guarded by mu_: first page -> pages
  std::set<std::pair<uint32_t, uint32_t>> free_by_size_;  // guarded by mu_: {pages, first page}
  uint64_t free_pages_ = 0;                               // guarded by mu_
  uint64_t used_pages_ = 0;                               // guarded by mu_
  uint64_t pages_written_ = 0;                            // guarded by mu_
};

}  // namespace vectord::storage
