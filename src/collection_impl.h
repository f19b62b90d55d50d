// CollectionImpl: the engine's collection. Owns the vector file, the in-RAM copy of the vectors
// used by exact search, the id maps, payloads and payload indexes; writes go through the
// MetadataStore so that an acknowledged write survives a crash. Write path and recovery are
// described in docs/storage.md.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <roaring/roaring.hh>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "index/flat_search.h"
#include "index/payload_index.h"
#include "src/row_buffer.h"
#include "src/thread_pool.h"
#include "storage/metadata_store.h"
#include "storage/token_store.h"
#include "storage/vector_file.h"
#include "vectord/collection.h"

namespace vectord {
namespace index {
class FdeEncoder;
class ProductQuantizer;
}  // namespace index

class FdePq;
class TokenCodes;

class SpannIndex;
class RowCodes;
class ListSummaries;
class DirtyLog;
struct QueryExplain;

// Catalog JSON <-> config (docs/formats.md "Catalog entry").
Json CollectionConfigToJson(const CollectionConfig& c);
Result<CollectionConfig> CollectionConfigFromJson(const Json& j);
// Reads the integer config field `<section>.<key>` = v into *out when it lies in [lo, hi]; else
// InvalidArgument naming the field, the range and the value.
template <typename T>
Status ConfigUint(const std::string& section, const std::string& key, const Json& v, uint64_t lo,
                  uint64_t hi, T* out) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0) ||
      v.get<uint64_t>() < lo || v.get<uint64_t>() > hi) {
    return Status::InvalidArgument(section + "." + key + " must be an integer in [" +
                                   std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                   v.dump());
  }
  *out = static_cast<T>(v.get<uint64_t>());
  return Status::OK();
}

// Checks `dim` floats (finite; integral and in range for uint8/int8) and stores them as `type`,
// scaled to unit length first when `normalize`. Errors start with `where`.
Status EncodeElements(const std::string& where, const float* v, uint32_t dim, DataType type,
                      bool normalize, uint8_t* dst);
void DecodeElements(const uint8_t* p, uint32_t dim, DataType type, float* v);

class CollectionImpl : public Collection {
 public:
  // Opens (restores) or creates the collection `cid` stored under `dir`. `catalog` is the
  // collection's catalog entry (payload indexes, SPANN index manifest), empty for a new one.
  static Result<std::shared_ptr<CollectionImpl>> Open(
      std::string name, uint32_t cid, const std::string& dir, const CollectionConfig& config,
      const Json& catalog, storage::MetadataStore* store, ThreadPool* pool);
  ~CollectionImpl() override;

  const std::string& name() const override { return name_; }
  CollectionConfig config() const override { return config_; }
  CollectionInfo Info() const override;
  uint32_t cid() const { return cid_; }
  const std::string& dir() const { return dir_; }
  // Stops all further writes (the collection is being dropped). Waits for the writer in flight.
  void MarkDropped();
  // The catalog entry (config + payload index list).
  Json CatalogJson() const;

  Result<uint64_t> Upsert(std::vector<PointStruct> points, bool wait) override;
  Result<uint64_t> Delete(const PointSelector& sel, bool wait) override;
  Result<uint64_t> SetPayload(const PointSelector& sel, const Json& payload,
                              const std::optional<std::string>& key, bool wait) override;
  Result<uint64_t> OverwritePayload(const PointSelector& sel, const Json& payload,
                                    bool wait) override;
  Result<uint64_t> DeletePayloadKeys(const PointSelector& sel, const std::vector<std::string>& keys,
                                     bool wait) override;
  Result<uint64_t> ClearPayload(const PointSelector& sel, bool wait) override;

  Result<std::vector<Record>> Retrieve(const std::vector<PointId>& ids, bool with_payload,
                                       bool with_vector) const override;
  Result<std::vector<ScoredPoint>> Search(const SearchRequest& req) const override;
  // Search reporting the query plan and its cost in *explain (may be null); src/query_planner.h.
  Result<std::vector<ScoredPoint>> SearchWithExplain(const SearchRequest& req,
                                                     QueryExplain* explain) const;
  Result<std::vector<std::vector<ScoredPoint>>> SearchBatch(
      const std::vector<SearchRequest>& reqs) const override;
  Result<ScrollResult> Scroll(const ScrollRequest& req) const override;
  Result<uint64_t> Count(const FilterPtr& filter) const override;

  Result<uint64_t> CreatePayloadIndex(const std::string& field, PayloadSchemaType type,
                                      bool wait) override;
  Result<uint64_t> DeletePayloadIndex(const std::string& field, bool wait) override;

 private:
  CollectionImpl(std::string name, uint32_t cid, std::string dir, CollectionConfig config,
                 storage::MetadataStore* store, ThreadPool* pool);

  Status Restore(const Json& catalog);
  // Starts a background SPANN build when the config asks for one and the collection is big
  // enough. write_mu_ held.
  void MaybeStartBuild();
  void BuildIndex(uint64_t rows, uint64_t gen);  // the build thread's body
  // Top-k over rows [first, first + n) whose bytes are at `data`, limited to `allowed` (absolute
  // row ids) or to live rows when null. Needs mu_ held (shared).
  std::vector<index::Neighbor> SearchRange(const uint8_t* data, uint64_t first, uint64_t n,
                                           const float* q, size_t k, const Roaring* allowed) const;
  // Exact top-k over every row, SSD rows included. Needs mu_ held (shared).
  Result<std::vector<index::Neighbor>> ExactSearch(const float* q, size_t k,
                                                   const Roaring* allowed) const;
  // Exact top-k over the rows of `allowed` below ram_base_ (SPANN rows), read with O_DIRECT in
  // runs of nearby rows (SpannIndex::ReadRows); *scored += rows scored, *pages += 4 KiB pages
  // read. Needs mu_ held (shared).
  // The planner's code scan: every row of `allowed` below ram_base_ scored from `codes`, the
  // best r re-ranked exactly (in two rounds, PlannerCosts::code_first_round).
  Result<std::vector<index::Neighbor>> CodeScan(const float* q, size_t k, const Roaring& allowed,
                                                const RowCodes& codes, size_t r, QueryExplain* ex,
                                                uint64_t* pages) const;
  Result<std::vector<index::Neighbor>> BruteForceRows(const float* q, size_t k,
                                                      const Roaring& allowed, uint64_t* scored,
                                                      uint64_t* pages) const;
  // Checks and converts one point's vector to stored bytes (appended to `out`).
  Status EncodeVector(size_t point_index, const std::vector<float>& v,
                      std::vector<uint8_t>* out) const;
  Result<std::vector<float>> DecodeRow(InternalId row) const;  // needs mu_ held (shared)
  // The row's vector (single-vector collections) or token set (multi-vector) for with_vector.
  // Needs mu_ held (shared).
  Status FillVector(InternalId row, std::optional<std::vector<float>>* v, uint32_t* count) const;

  // Multi-vector collections (src/collection_multi.cc).
  struct MultiBatch {
    std::vector<uint8_t> tokens;            // kept points' token vectors, stored form
    std::vector<uint32_t> counts;           // vectors per kept point
    std::vector<uint8_t> fde_bytes;         // kept points' FDEs (vector-file rows)
    std::vector<storage::TokenSpan> spans;  // filled by the token append
    std::vector<uint8_t> records;           // the appended records (RAM-resident token sets)
    std::shared_ptr<const index::FdeEncoder> encoder;  // set when this batch fixed the centre
    std::vector<float> center;
    std::shared_ptr<const index::ProductQuantizer> pq;  // fde_pq_'s encoder when trained
    std::vector<uint8_t> pq_codes;                      // kept points' PQ codes (pq set)
    std::vector<uint8_t> int8_rows;  // kept points' token vectors as TokenCodes rows (rerank > 0)
  };
  // Opens the token files and reconciles them with the vector file (crash recovery); loads the
  // MUVERA centre from the catalog and makes the encoder.
  Status RestoreTokens(const Json& catalog);
  // At open (muvera_config.rerank > 0): token_codes_ from every stored token set, read from
  // token_ram_ or (on_disk) from the token files in CRC-checked batches.
  Status LoadTokenCodes();
  // Checks one point's vector set and appends its stored bytes to *out.
  Status EncodeTokens(size_t point_index, const PointStruct& p, std::vector<uint8_t>* out) const;
  // Under write_mu_: packs the kept points' token sets and encodes their FDEs (making the encoder
  // from this batch when the centre is "auto" and not fixed yet).
  Status PrepareMulti(const std::vector<std::vector<uint8_t>>& token_bytes,
                      const std::vector<size_t>& keep, MultiBatch* mb) const;
  // The FDE PQ stage (src/fde_pq.h). Encodes n stored FDE rows at `fde_rows` with `pq`.
  void EncodeFdePq(const index::ProductQuantizer& pq, const uint8_t* fde_rows, size_t n,
                   uint8_t* codes) const;
  // Under write_mu_ (or at open): when the collection has reached FdePq::TrainRows' next step
  // and its FDE rows are all in RAM, starts TrainFdePq on fde_pq_thread_ (one at a time). The
  // current PQ (or the exact FDE scan) serves until the new one is installed.
  void MaybeTrainFdePq();
  // The background job: samples and trains outside write_mu_, encodes the rows present (a chunk
  // at a time under a shared mu_), then under write_mu_ encodes the rows written meanwhile and
  // installs the PQ.
  void TrainFdePq();
  // Under write_mu_: starts BuildRowCodes on row_codes_thread_ when the SPANN index lacks row
  // codes that the configuration asks for (spann_config.row_codes; "auto": a payload index
  // exists now).
  void MaybeBuildRowCodes();
  void BuildRowCodes(std::shared_ptr<const SpannIndex> index, std::string dir);
  // Under write_mu_: once the rows changed since the list summaries were built (searches score
  // them exactly, and the dirty log keeps growing) pass max(256, indexed rows / 32), starts
  // RefreshSummaries on summaries_thread_.
  void MaybeRefreshSummaries();
  // Rebuilds the summaries from the payloads (changes meanwhile tracked as at a SPANN build),
  // writes them with those changes as their build-dirty rows, replaces the dirty log with an
  // empty one (a new file renamed over the old) and installs both.
  void RefreshSummaries(std::shared_ptr<const SpannIndex> index, std::string dir);
  // Under write_mu_: joins *thread (a finished earlier run) and runs job on it, `running` true
  // until it returns.
  void StartJob(std::thread* thread, std::atomic<bool>* running, std::function<void()> job);
  // Tests' waits: calls maybe_start under write_mu_ until `running` is false.
  void WaitForJob(void (CollectionImpl::*maybe_start)(), const std::atomic<bool>& running);

 public:
  // Tests: waits until no FDE PQ training is running or pending.
  void WaitForFdePq();
  // Tests and benchmarks: RAM held by the 8-bit token copy (0 without one).
  size_t TokenCodesBytes() const;
  // Tests: waits until no row-code build is running or pending.
  void WaitForRowCodes();
  // Tests: waits until no summary refresh is running or pending; the rows changed since the
  // summaries were built.
  void WaitForSummaries();
  uint64_t SummaryDirtyRows() const;

 private:
  // With mu_ held exclusively, applying an upsert of n rows: appends the batch's PQ codes.
  void AppendFdePq(const MultiBatch& mb, size_t n);
  // The MUVERA candidates (ascending rows) by the PQ scan, re-scored with float16 FDEs. mu_.
  std::vector<uint32_t> FdePqCandidates(const float* fq, uint32_t cand, const Roaring* allowed,
                                        QueryExplain* ex) const;
  // Stored token bytes -> floats.
  void DecodeTokens(const uint8_t* src, size_t n_vectors, float* out) const;
  // The query set checked (list shape, size, finite) and unit-normalised for Cosine.
  Result<std::vector<float>> PrepareMultiQuery(const SearchRequest& req) const;
  // Top-k rows by Chamfer: exact over every matching row (params.exact, or no encoder yet), else
  // MUVERA candidates from the FDE index re-ranked. Needs mu_ (shared).
  Result<std::vector<index::Neighbor>> SearchMultiRows(const std::vector<float>& q, size_t k,
                                                       const SearchRequest& req,
                                                       const Roaring* allowed,
                                                       QueryExplain* ex) const;
  // The two-stage re-rank's first stage: the best `r` of `rows` by approximate Chamfer on
  // token_codes_ (index/chamfer_int8.h), ascending. Needs mu_ (shared).
  std::vector<uint32_t> Int8Best(const float* q, uint32_t nq, const std::vector<uint32_t>& rows,
                                 size_t r) const;
  // Exact Chamfer top-k over `rows` (ascending): token sets from RAM, or (on_disk) read in
  // batches with O_DIRECT; *pages counts the pages read. Needs mu_ (shared).
  Result<std::vector<index::Neighbor>> ChamferRows(const float* q, size_t nq,
                                                   const std::vector<uint32_t>& rows, size_t k,
                                                   uint64_t* pages) const;
  // Top-k rows of the single-vector index for the prepared query `q` (vdim_ floats) under the
  // request's filter and parameters: the body of single-vector search. Needs mu_ (shared).
  Result<std::vector<index::Neighbor>> SearchVectors(const float* q, size_t k,
                                                     const SearchRequest& req,
                                                     const Roaring* allowed,
                                                     QueryExplain* ex) const;
  std::vector<float> PrepareQuery(const std::vector<float>& q) const;
  Json ProjectPayload(const Json& p, const std::vector<std::string>& include,
                      const std::vector<std::string>& exclude) const;
  bool IsLive(InternalId row) const {  // needs mu_ held
    return row < rows_ && (live_bits_[row >> 6] >> (row & 63) & 1);
  }
  // Rows a selector names that exist now (needs mu_ held, shared).
  Result<std::vector<InternalId>> ResolveRows(const PointSelector& sel) const;
  Roaring SelectRows(const Filter& filter) const;  // needs mu_ held (shared)
  // Applies payload changes: new_payloads[i] replaces rows[i]'s payload. write_mu_ held.
  Result<uint64_t> CommitPayloads(const std::vector<InternalId>& rows,
                                  std::vector<Json> new_payloads, bool wait);
  Status CheckWritable() const;  // write_mu_ held
  // Summaries of `index`'s posting lists over the payload-indexed fields, from the current
  // payloads (takes mu_ shared per list unless `locked`: the caller holds it). `dirty`: rows
  // changed during the build, recorded in the summaries.
  Result<std::unique_ptr<ListSummaries>> BuildSummaries(const SpannIndex& index, bool locked,
                                                        Roaring dirty) const;
  // Restore: loads the summaries of spann_ (file + dirty log), rebuilding them when they are
  // missing or damaged. mu_ not needed (no concurrency yet).
  void LoadSummaries(const std::string& idx_dir);
  bool SyncOn(bool wait) const { return wait && config_.fsync; }

  const std::string name_;
  const uint32_t cid_;
  const std::string dir_;
  const CollectionConfig config_;
  // The vector file's rows: the collection's vectors, or (multi-vector) the documents' MUVERA
  // encodings, float32 scored by Dot.
  const uint32_t vdim_;
  const DataType vtype_;
  const Distance vdist_;
  const uint32_t row_bytes_;
  storage::MetadataStore* const store_;
  ThreadPool* const pool_;

  // Serializes writers (file append, metadata commit, apply). Never held by readers, so a
  // reader never waits for an fsync.
  std::mutex write_mu_;
  bool dropped_ = false;                       // guarded by write_mu_
  std::unique_ptr<storage::VectorFile> file_;  // guarded by write_mu_
  uint64_t op_seq_ = 0;                        // guarded by write_mu_

  // In-RAM state; writers take it exclusively only to apply an already durable change.
  mutable std::shared_mutex mu_;
  uint64_t rows_ = 0;  // guarded by mu_
  // Rows [ram_base_, rows_) in RAM; rows below ram_base_ are indexed by spann_ and read from
  // reader_ when needed. Guarded by mu_.
  RowBuffer vectors_;
  uint64_t ram_base_ = 0;                        // guarded by mu_
  std::shared_ptr<const SpannIndex> spann_;      // guarded by mu_
  std::unique_ptr<storage::VectorFile> reader_;  // read-only handle; guarded by mu_
  std::string status_ = "green";                 // guarded by mu_
  std::string index_error_;                      // guarded by mu_
  Json spann_manifest_;                          // {"gen","rows"} of spann_; guarded by mu_
  // Per-posting-list summaries of spann_ (src/list_summary.h, docs/filters.md); null when none.
  // summary_dirty_: rows whose payload changed after they were built (always brute-forced when a
  // search skips lists). Guarded by mu_.
  std::shared_ptr<const ListSummaries> summaries_;
  Roaring summary_dirty_;
  // While a build computes summaries: rows whose payload changed since it started. Guarded by mu_.
  bool summary_tracking_ = false;
  Roaring summary_pending_dirty_;
  std::unique_ptr<DirtyLog> dirty_log_;  // of summaries_; guarded by write_mu_

  // Background SPANN build. build_thread_ is started and joined under write_mu_ (or in the
  // destructor); the thread takes write_mu_ and mu_ itself to install its result.
  std::thread build_thread_;
  bool building_ = false;      // guarded by write_mu_
  bool build_failed_ = false;  // guarded by write_mu_
  uint64_t spann_gen_ = 0;     // guarded by write_mu_
  std::atomic<bool> cancel_build_{false};
  // Background FDE PQ training (multi-vector collections). Started and joined under write_mu_ (or
  // in the destructor).
  std::thread fde_pq_thread_;
  std::atomic<bool> fde_pq_training_{false};
  // Row codes built after the SPANN index (src/row_codes.h): its index had none (row_codes
  // "auto" without a payload index at build time, an index from before row codes) or its file
  // was damaged. Started and joined under write_mu_ (or in the destructor).
  std::thread row_codes_thread_;
  std::atomic<bool> row_codes_building_{false};
  // Summaries rebuilt once many rows changed after them (RefreshSummaries). Started and joined
  // under write_mu_ (or in the destructor).
  std::thread summaries_thread_;
  std::atomic<bool> summaries_refreshing_{false};
  std::atomic<uint64_t> build_done_rows_{0}, build_total_rows_{0};
  std::vector<uint64_t> live_bits_;          // guarded by mu_
  Roaring live_;                             // guarded by mu_
  std::map<PointId, InternalId> id_to_row_;  // guarded by mu_ (ordered: scroll)
  std::vector<PointId> row_to_id_;           // guarded by mu_
  std::vector<Json> payloads_;               // per row, null = none; guarded by mu_
  index::PayloadIndexSet indexes_;           // guarded by mu_
  // Multi-vector collections: token sets on disk (appends under write_mu_, reads thread-safe),
  // each row's span (guarded by mu_), the FDE encoder and its SimHash centre (set once, then
  // immutable; guarded by mu_).
  std::unique_ptr<storage::TokenStore> tokens_;
  std::vector<storage::TokenSpan> token_spans_;
  // Unless config_.on_disk: the token data file's records in RAM (byte i = file byte
  // kHeaderBytes + i), so search re-ranks without I/O. Guarded by mu_.
  RowBuffer token_ram_;
  // The 8-bit copy of every row's token set (src/token_codes.h) for the two-stage re-rank; null
  // when muvera_config.rerank is 0. Appended with the token sets. Guarded by mu_.
  std::unique_ptr<TokenCodes> token_codes_;
  std::shared_ptr<const index::FdeEncoder> fde_;
  std::vector<float> muvera_center_;
  // The FDE PQ candidate stage over rows [0, rows_) while ram_base_ == 0 (src/fde_pq.h); its
  // encoder is immutable, the codes grow with each upsert. Guarded by mu_.
  std::unique_ptr<FdePq> fde_pq_;
};

}  // namespace vectord
