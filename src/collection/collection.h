// CollectionImpl: the engine's collection, a coordinator over parts that each own one concern —
// the vector store (src/vectors/), the points (ids, payloads, the live set and payload indexes),
// the SPANN index over its life (src/spann/collection_index.h), the search executor that the query
// planner drives (src/search/), the multi-vector store (src/multivector/) — and the jobs they run
// on the database's scheduler (src/jobs/). It sequences the write path (validate -> append vectors
// -> commit metadata -> apply in RAM) so that an acknowledged write survives a crash, and gives
// every read one consistent view of the parts. docs/storage.md.
//
// Locks: write_mu_ serializes writers (file appends, metadata commits, applying them) and is
// never held by readers, so a reader never waits for an fsync; mu_ guards the RAM state of every
// part: readers hold it shared for a whole request, writers and jobs take it exclusively only to
// apply a change that is already durable.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <roaring/roaring.hh>
#include <shared_mutex>
#include <string>
#include <vector>

#include "index/flat_search.h"
#include "index/payload_index.h"
#include "src/jobs/job_scheduler.h"
#include "src/points/point_store.h"
#include "src/spann/collection_index.h"
#include "src/vectors/row_buffer.h"
#include "storage/metadata_store.h"
#include "storage/token_store.h"
#include "vectord/collection.h"

namespace vectord {
namespace index {
class FdeEncoder;
class ProductQuantizer;
}  // namespace index

class FdePq;
class ThreadPool;
class TokenCodes;
class VectorStore;
struct SearchSources;

// What a collection shares with the others of its database.
// Shared ownership: a collection a caller still holds keeps them alive after the database is gone.
struct CollectionEnv {
  std::shared_ptr<storage::MetadataStore> store;
  std::shared_ptr<ThreadPool> pool;  // search threads (batch search, encoding)
  std::shared_ptr<JobScheduler> jobs;
};

class CollectionImpl : public Collection, private IndexHost {
 public:
  // Opens (restores) or creates the collection `cid` stored under `dir`. `catalog` is the
  // collection's catalog entry (payload indexes, SPANN index manifest), empty for a new one.
  static Result<std::shared_ptr<CollectionImpl>> Open(std::string name, uint32_t cid,
                                                      const std::string& dir,
                                                      const CollectionConfig& config,
                                                      const Json& catalog,
                                                      const CollectionEnv& env);
  ~CollectionImpl() override;

  const std::string& name() const override { return name_; }
  CollectionConfig config() const override { return config_; }
  CollectionInfo Info() const override;
  uint32_t cid() const { return cid_; }
  const std::string& dir() const { return dir_; }
  // Stops all further writes and background work (the collection is being dropped). Waits for
  // the writer in flight.
  void MarkDropped();
  // The database is closing: background work stops, the parts that hold the metadata store go,
  // and every later call fails with FailedPrecondition.
  void Close();
  // The catalog entry (config, payload indexes, index manifest, MUVERA centre).
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
  using Collection::Search;
  Result<std::vector<ScoredPoint>> Search(const SearchRequest& req,
                                          QueryExplain* explain) const override;
  Result<std::vector<std::vector<ScoredPoint>>> SearchBatch(
      const std::vector<SearchRequest>& reqs) const override;
  Result<ScrollResult> Scroll(const ScrollRequest& req) const override;
  Result<uint64_t> Count(const FilterPtr& filter) const override;

  Result<uint64_t> CreatePayloadIndex(const std::string& field, PayloadSchemaType type,
                                      bool wait) override;
  Result<uint64_t> DeletePayloadIndex(const std::string& field, bool wait) override;
  bool WaitIdle(uint64_t timeout_ms) const override;
  Result<Json> Verify() const override;

  // Tests and benchmarks: RAM held by the 8-bit token copy (0 without one); rows whose payload
  // changed since the list summaries were built.
  size_t TokenCodesBytes() const;
  uint64_t SummaryDirtyRows() const;

 private:
  CollectionImpl(std::string name, uint32_t cid, std::string dir, CollectionConfig config,
                 const CollectionEnv& env);

  Status Restore(const Json& catalog);
  // After a write was applied (write_mu_ held): background work that became due.
  void MaybeStartWork();

  // IndexHost.
  std::mutex& write_mu() override { return write_mu_; }
  std::shared_mutex& mu() override { return mu_; }
  Status CommitCatalog() override;
  void OnIndexInstalled(uint64_t rows) override;
  std::vector<std::string> PayloadIndexFields() const override;
  Status ReadPayloads(const std::vector<uint32_t>& rows, std::vector<Json>* out) const override;
  uint64_t LivePoints() const override { return points_->live_count(); }
  Roaring LiveRows() const override { return points_->live(); }
  void OnRowsAssigned(uint64_t rows) override;

  // The parts a single-vector search reads (mu_ held).
  SearchSources Sources() const;
  // The row's vector (single-vector collections) or token set (multi-vector) for with_vector.
  // Needs mu_ held (shared).
  Status FillVector(InternalId row, std::optional<std::vector<float>>* v, uint32_t* count) const;
  std::vector<float> PrepareQuery(const std::vector<float>& q) const;

  // Multi-vector collections (src/multivector/collection_multi.cc).
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
  // The FDE PQ stage (src/multivector/fde_pq.h). Encodes n stored FDE rows at `fde_rows`.
  void EncodeFdePq(const index::ProductQuantizer& pq, const uint8_t* fde_rows, size_t n,
                   uint8_t* codes) const;
  // Under write_mu_ (or at open): asks for TrainFdePq when the collection has reached
  // FdePq::TrainRows' next step and its FDE rows are all in RAM or FdePqBesideIndex(). The current
  // PQ (or the collection's FDE index) serves until the new one is installed.
  void MaybeTrainFdePq();
  // The job: samples and trains outside write_mu_, encodes the rows present (a chunk at a time
  // under a shared mu_), then under write_mu_ encodes the rows written meanwhile and installs it.
  void TrainFdePq(Job& job);
  // Whether the FDE PQ serves beside a SPANN index (muvera_config: fde_index "pq4", no re-scoring,
  // at most fde_pq_max_rows rows). mu_.
  bool FdePqBesideIndex() const;
  // Whether the FDE PQ may serve the candidates: no SPANN index yet, or FdePqBesideIndex(). mu_.
  bool FdePqMayServe() const;
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

  // Rows a selector names that exist now (needs mu_ held, shared).
  Result<std::vector<InternalId>> ResolveRows(const PointSelector& sel) const;
  // Applies payload changes: new_payloads[i] replaces rows[i]'s payload (`old`: their current
  // payloads when read already). write_mu_ held.
  Result<uint64_t> CommitPayloads(const std::vector<InternalId>& rows,
                                  std::vector<Json> new_payloads, bool wait,
                                  std::vector<Json>* old = nullptr);
  Status CheckWritable() const;  // write_mu_ held
  Status Closed() const;
  bool SyncOn(bool wait) const { return wait && config_.fsync; }

  const std::string name_;
  const uint32_t cid_;
  const std::string dir_;
  const CollectionConfig config_;
  std::shared_ptr<storage::MetadataStore> store_owner_;  // released by Close()
  const std::shared_ptr<ThreadPool> pool_owner_;
  storage::MetadataStore* const store_;
  ThreadPool* const pool_;

  std::mutex write_mu_;
  bool dropped_ = false;  // guarded by write_mu_
  bool closed_ = false;   // guarded by write_mu_ and mu_ (set holding both)
  uint64_t op_seq_ = 0;   // guarded by write_mu_
  mutable std::shared_mutex mu_;

  // The vector file's rows: the collection's vectors, or (multi-vector) the documents' MUVERA
  // encodings, float16 scored by Dot. Appends under write_mu_, RAM state under mu_.
  std::unique_ptr<VectorStore> vectors_;
  // Background work of every part; ~CollectionImpl cancels it and waits for runs in flight before
  // any part goes.
  std::unique_ptr<JobSet> jobs_;
  // The SPANN index part (null without spann_config).
  std::unique_ptr<CollectionIndex> index_;

  // Ids, payloads, the live set and payload indexes (src/points/point_store.h); its RAM state is
  // guarded by mu_, its writes by write_mu_.
  std::unique_ptr<points::PointStore> points_;
  Job* checkpoint_job_ = nullptr;  // the point store's checkpoints

  // Multi-vector collections: token sets on disk (appends under write_mu_, reads thread-safe),
  // each row's span (guarded by mu_), the FDE encoder and its SimHash centre (set once, then
  // immutable; guarded by mu_).
  std::unique_ptr<storage::TokenStore> tokens_;
  std::vector<storage::TokenSpan> token_spans_;
  // Unless config_.on_disk: the token data file's records in RAM (byte i = file byte
  // kHeaderBytes + i), so search re-ranks without I/O. Guarded by mu_.
  RowBuffer token_ram_;
  // The 8-bit copy of every row's token set (src/multivector/token_codes.h) for the two-stage
  // re-rank; null when muvera_config.rerank is 0. Appended with the token sets. Guarded by mu_.
  std::unique_ptr<TokenCodes> token_codes_;
  std::shared_ptr<const index::FdeEncoder> fde_;
  std::vector<float> muvera_center_;
  // The FDE PQ candidate stage over every row while no SPANN index serves any
  // (src/multivector/fde_pq.h); its encoder is immutable, the codes grow with each upsert.
  // Guarded by mu_.
  std::unique_ptr<FdePq> fde_pq_;
  Job* fde_pq_job_ = nullptr;
};

}  // namespace vectord
