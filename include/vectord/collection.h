// Collection: one named set of points with a vector config, payloads and payload indexes.
// Thread-safe: any number of readers and writers may call concurrently; readers never wait on
// fsync (writers serialize among themselves).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vectord/explain.h"
#include "vectord/filter.h"
#include "vectord/types.h"

namespace vectord {

// vectord extension "spann_config": once the collection holds `indexing_threshold` points it builds
// a SPANN memory/SSD index in the background (docs/spann.md) and serves approximate search from it.
// From then on the index lives: points written later wait in a bounded in-RAM delta until a
// background updater has put them into their posting lists, splitting lists that grow too large
// and merging small ones (docs/spann.md "Living index").
struct SpannConfig {
  uint64_t indexing_threshold = 20000;  // points before the index is built
  std::string layout = "full";          // posting lists: "full" vectors, "pq4" or "pq8" + re-rank
  uint32_t pq_m = 0;                    // PQ subquantizers (0 = dim/2 for pq4, dim/4 for pq8)
  uint32_t target_list_entries = 0;     // entries per posting list (0 = by layout, ~2 pages)
  std::string centroid_precision = "f16";  // centroids in RAM: "f16" (half the RAM) or "f32"
  uint32_t max_replicas = 8;               // SPANN closure assignment: lists per vector, at most
  float closure_eps = 0.5f;                // assign to c_j while d(x,c_j) <= (1+eps) d(x,c_1)
  float rng_factor = 1.2f;                 // RNG rule factor (0 = off; > 1 keeps more replicas)
  uint64_t cache_bytes = 0;                // RAM cache of hot posting lists, bytes
  // Living index: points not yet in the SSD index at most (writers wait beyond it: back-pressure).
  uint64_t max_delta_points = 50000;
  // A posting list is split past split_entries valid entries and merged below merge_entries
  // (0 = from the build's target list size: 1.5x and 1/4 of it).
  uint32_t split_entries = 0;
  uint32_t merge_entries = 0;
  // After a split, rows of this many nearby lists are checked for reassignment (LIRE).
  uint32_t reassign_neighbors = 4;
  // RNG rule factor of the updater's assignments (rows written after the build, reassigned
  // rows). Centroids made by splits sit closer together than the build's k-means ones, so the
  // build's 1.2 would prune replicas the build keeps: 1.35 keeps replicas per point near the
  // build's (docs/spann.md "Living index").
  float update_rng_factor = 1.35f;
  // A PQ code per indexed row kept in RAM for filtered searches (the planner's code scan,
  // docs/filters.md "Code scan"): "auto" builds them when a single-vector collection has a
  // payload index at build time, "on" always, "off" never. row_code_bytes: their size (rounded down
  // to a divisor of the vector size), the RAM they cost per row.
  std::string row_codes = "auto";
  uint32_t row_code_bytes = 16;
  // Search defaults, overridable per query with params.spann.
  uint32_t nprobe = 32;  // posting lists read at most (recall@10 ~0.97 on SIFT1M, docs/spann.md)
  float eps = 0.6f;      // query-aware pruning: keep list i while d(q,c_i) <= (1+eps) d(q,c_1)
  uint32_t rerank = 64;  // pq layouts: candidates re-ranked with exact distances
};

// Parses the "spann_config" object: unknown fields, wrong types and out-of-range values are
// InvalidArgument naming the field. Defaults fill what is missing.
Result<SpannConfig> ParseSpannConfig(const Json& j);
Json SpannConfigToJson(const SpannConfig& c);

// Qdrant's "multivector_config" plus vectord's "muvera_config" extension: each point is a set of
// vectors scored by Chamfer (MaxSim) similarity. Search encodes the query set as a MUVERA FDE
// (index/muvera.h), takes `candidates` documents from the collection's single-vector index of
// document FDEs (exact, or SPANN above its threshold) and re-ranks them by exact Chamfer over
// their stored vectors (docs/muvera.md).
struct MuveraConfig {
  uint32_t k_sim = 5;           // SimHash bits: 2^k_sim buckets per repetition
  uint32_t d_proj = 8;          // inner projection dimension (<= vector size)
  uint32_t r_reps = 20;         // repetitions
  uint32_t final_dim = 0;       // count-sketch output dimension (0 = none)
  bool fill_empty = true;       // fill empty document buckets from the Hamming-nearest vector
  uint64_t seed = 42;           // everything random derives from it
  std::string center = "auto";  // SimHash origin: "auto" = mean of the first batch, or "none"
  // Candidate documents per query (params.muvera.candidates overrides it); 0 = by the collection's
  // size and the query's limit (MuveraDefaultCandidates, docs/muvera.md "Defaults").
  uint32_t candidates = 0;
  // SPANN over the FDEs: the first round reads the nearest lists that hold candidate_spread x
  // candidates documents and delivers the best `candidates` of them (more: better candidates, more
  // pages read).
  float candidate_spread = 4;
  uint32_t max_vectors = 1024;  // vectors per point, at most
  // Candidate stage while the FDE rows are in RAM (no SPANN index yet): "pq4" = a 4-bit
  // fast-scan PQ of the FDEs (from 1,000 documents on; exact below), its best
  // candidates * fde_pq_rescore re-scored with the float16 FDEs; "exact" = the float16 scan.
  std::string fde_index = "pq4";
  uint32_t fde_pq_m = 0;        // PQ subquantizers (must divide the FDE size); 0 = dims / d_proj
  uint32_t fde_pq_rescore = 1;  // PQ pool = candidates * this, re-scored exactly; 1 = none
  // Once the SPANN index over the FDEs exists, the FDE PQ (fde_pq_rescore 1) keeps serving the
  // candidates while the collection holds at most this many rows (its scan is cheaper and its
  // candidates better than the index's there, docs/muvera.md); 0 = the index serves at once.
  uint64_t fde_pq_max_rows = 200000;
  // Re-rank in two passes when the query has more vectors than this (0 = one pass): Chamfer over
  // this many of the query's vectors (a fixed pseudo-random choice) ranks the candidates, the best
  // quarter (at least 4 x limit) get the exact Chamfer. Token sets in RAM only (on_disk: one pass).
  // Measured on multivec-large (docs/muvera.md): a wash against simply re-ranking fewer
  // candidates, so off by default.
  uint32_t prefilter_vectors = 0;
  // Two-stage re-rank: every candidate is scored by approximate Chamfer on an 8-bit copy of the
  // token vectors kept in RAM (dim rounded up to 4, + 8 bytes per token vector), and only the
  // best max(rerank, 2 x (limit + offset)) by exact Chamfer over the stored vectors. 0 = no 8-bit
  // copy, every candidate scored exactly. Per-query override: params.muvera.rerank. Default 40:
  // the smallest with no recall loss at limit 10 on the benchmark sets (docs/muvera.md).
  uint32_t rerank = 40;
};
struct MultivectorConfig {
  std::string comparator = "max_sim";  // the only one Qdrant defines
  MuveraConfig muvera;
};
Result<MuveraConfig> ParseMuveraConfig(const Json& j, uint32_t dim);
// Floats in one document encoding (FDE): final_dim, or r_reps * 2^k_sim * d_proj.
uint32_t MuveraFdeDim(const MuveraConfig& c);
// A multi-vector collection's SPANN index holds FDEs (thousands of dimensions): the spann_config
// fields that `given` (the request's spann_config object) leaves out get the values measured for
// them (docs/muvera.md "SPANN over the FDEs"): layout "pq4" with pq_m = fde_dim / 8 (pq8 given:
// fde_dim / 16; or the nearest divisor below), target_list_entries 256.
void ApplyFdeSpannDefaults(const Json& given, uint32_t fde_dim, SpannConfig* c);
// Candidates per query where muvera_config.candidates is 0, for `documents` matching documents
// and `k` = limit + offset: max(20 k, a documents^0.8) with a = 0.9 when the SPANN index over the
// FDEs serves them, 0.75 when the FDE PQ or scan in RAM does (the candidates for recall@10 0.9
// measured at two sizes grow as documents^0.8; docs/muvera.md "Defaults").
uint32_t MuveraDefaultCandidates(uint64_t documents, size_t k, bool spann);
Json MuveraConfigToJson(const MuveraConfig& c);

// Stored with the collection in the catalog (JSON, see docs/formats.md).
struct CollectionConfig {
  uint32_t dim = 0;                        // vector dimension, 1..65536
  Distance distance = Distance::kCosine;   // Qdrant's default has none; required on create
  DataType datatype = DataType::kFloat32;  // element type stored on disk and in RAM
  // fsync (fdatasync of the vector file + synced RocksDB WAL) before an upsert with wait=true is
  // acknowledged. Default on. Off trades durability of the last writes for throughput.
  bool fsync = true;
  bool on_disk = false;              // Qdrant's flag, kept and reported; vectors in RAM
  Json extra = Json::object();       // unknown-to-the-engine config echoed back (hnsw_config...)
  std::optional<SpannConfig> spann;  // vectord extension; none = exact search only
  // Multi-vector collection (points are sets of `dim`-sized vectors); none = single vectors.
  std::optional<MultivectorConfig> multivector;
};

enum class PayloadSchemaType : uint8_t { kKeyword, kInteger, kFloat, kBool };
const char* PayloadSchemaName(PayloadSchemaType t);
std::optional<PayloadSchemaType> ParsePayloadSchema(std::string_view s);

struct CollectionInfo {
  std::string status = "green";  // green / yellow (building) / red (failed)
  std::string index_error;       // why the last index build failed (status red)
  // While an index builds (status yellow): rows assigned to posting lists so far, of the total.
  uint64_t index_build_done = 0;
  uint64_t index_build_total = 0;
  uint64_t points_count = 0;  // live points
  uint64_t indexed_vectors_count = 0;
  uint64_t segments_count = 1;
  CollectionConfig config;
  std::vector<std::pair<std::string, PayloadSchemaType>> payload_schema;  // field -> type
  std::vector<std::pair<std::string, uint64_t>> payload_schema_points;    // field -> points indexed
  // The living SPANN index (once built): the delta (points not yet in posting lists on SSD), of
  // it the points the updater has not assigned to lists yet, and what the updater has done.
  struct IndexUpdates {
    uint64_t delta_points = 0;
    uint64_t unassigned_points = 0;
    uint64_t pending_entries = 0;  // list entries waiting in RAM for their list's rewrite
    uint64_t lists = 0;            // posting lists
    uint64_t cycles = 0, splits = 0, merges = 0, reassigned = 0, lists_written = 0, gc_lists = 0;
    uint64_t bytes_written = 0;    // posting pages written by the updater
    double cpu_seconds = 0;        // updater CPU time
    double points_per_second = 0;  // points made durable per second over the last cycles
    uint64_t posting_file_bytes = 0, free_bytes = 0;
  };
  std::optional<IndexUpdates> index_updates;
  // RAM held by each part of the collection, bytes (name -> bytes): where memory goes.
  std::vector<std::pair<std::string, uint64_t>> memory;
  // What the last open of the collection read: rows replayed from the oplog (written after the
  // last point-store checkpoint; 0 after a clean shutdown), or a full scan of every record (no
  // usable checkpoint).
  uint64_t open_replayed_rows = 0;
  bool open_full_scan = false;
};

struct SearchRequest {
  std::vector<float> vector;  // query, dim floats (multi-vector: vector_count x dim floats)
  uint32_t vector_count = 0;  // 0: one query vector; n > 0: a query set of n vectors
  FilterPtr filter;           // may be null
  size_t limit = 10;
  size_t offset = 0;
  std::optional<float> score_threshold;  // Qdrant semantics: >= for similarity, <= for distance
  bool with_payload = false;
  std::vector<std::string> payload_include;  // when non-empty, only these keys
  std::vector<std::string> payload_exclude;
  bool with_vector = false;
  bool exact = false;  // params.exact: brute force even when an index exists
  // params.spann (vectord extension): per-query overrides of the collection's SPANN defaults.
  std::optional<uint32_t> spann_nprobe;
  std::optional<float> spann_eps;
  std::optional<uint32_t> spann_rerank;
  // params.muvera (vectord extension, multi-vector collections): candidate documents, and how
  // many of them the 8-bit Chamfer stage passes on to exact Chamfer (muvera_config.rerank).
  std::optional<uint32_t> muvera_candidates;
  std::optional<uint32_t> muvera_rerank;
};

struct ScrollRequest {
  FilterPtr filter;
  std::optional<PointId> offset;  // first id to return (inclusive)
  size_t limit = 10;
  bool with_payload = true;
  std::vector<std::string> payload_include;
  std::vector<std::string> payload_exclude;
  bool with_vector = false;
};

struct ScrollResult {
  std::vector<Record> points;
  std::optional<PointId> next_page_offset;
};

// Which points a payload/delete operation touches: explicit ids or a filter (one of them).
struct PointSelector {
  std::vector<PointId> ids;
  FilterPtr filter;
};

class Collection {
 public:
  virtual ~Collection() = default;
  virtual const std::string& name() const = 0;
  virtual CollectionConfig config() const = 0;
  virtual CollectionInfo Info() const = 0;

  // Validates every point first (dimension, finite values, data type range); a batch with one
  // bad point is rejected whole and changes nothing. `wait` = durable before returning (if the
  // collection's fsync is on); without it the write is still applied before returning, only the
  // sync is skipped. Returns the operation sequence number.
  virtual Result<uint64_t> Upsert(std::vector<PointStruct> points, bool wait) = 0;
  virtual Result<uint64_t> Delete(const PointSelector& sel, bool wait) = 0;

  // Payload operations, Qdrant semantics. `key` (optional) applies SetPayload at a nested path.
  virtual Result<uint64_t> SetPayload(const PointSelector& sel, const Json& payload,
                                      const std::optional<std::string>& key, bool wait) = 0;
  virtual Result<uint64_t> OverwritePayload(const PointSelector& sel, const Json& payload,
                                            bool wait) = 0;
  virtual Result<uint64_t> DeletePayloadKeys(const PointSelector& sel,
                                             const std::vector<std::string>& keys, bool wait) = 0;
  virtual Result<uint64_t> ClearPayload(const PointSelector& sel, bool wait) = 0;

  // Missing ids are skipped (Qdrant semantics).
  virtual Result<std::vector<Record>> Retrieve(const std::vector<PointId>& ids, bool with_payload,
                                               bool with_vector) const = 0;
  // `explain` (may be null) receives the plan and what it cost (vectord/explain.h).
  virtual Result<std::vector<ScoredPoint>> Search(const SearchRequest& req,
                                                  QueryExplain* explain) const = 0;
  Result<std::vector<ScoredPoint>> Search(const SearchRequest& req) const {
    return Search(req, nullptr);
  }
  // Many queries at once, spread over the search threads.
  virtual Result<std::vector<std::vector<ScoredPoint>>> SearchBatch(
      const std::vector<SearchRequest>& reqs) const = 0;
  virtual Result<ScrollResult> Scroll(const ScrollRequest& req) const = 0;
  virtual Result<uint64_t> Count(const FilterPtr& filter) const = 0;

  virtual Result<uint64_t> CreatePayloadIndex(const std::string& field, PayloadSchemaType type,
                                              bool wait) = 0;
  virtual Result<uint64_t> DeletePayloadIndex(const std::string& field, bool wait) = 0;

  // Waits until no background work of this collection is queued or running (index build and
  // updates, row codes, summaries, checkpoints) or `timeout_ms` passes; true when idle. For tests,
  // benchmarks and tools that want a settled state (the HTTP API reports it as status green).
  virtual bool WaitIdle(uint64_t timeout_ms) const = 0;

  // Checks the collection's SSD index against its points (checksums of every page read, every
  // live point reachable, list sizes; `vectorctl check`). {"ok": bool, "problems": [...], ...}.
  virtual Result<Json> Verify() const = 0;
};

// Collection::Search with the plan reported in *explain (when not null).
inline Result<std::vector<ScoredPoint>> SearchExplained(const Collection& c,
                                                        const SearchRequest& req,
                                                        QueryExplain* explain) {
  return c.Search(req, explain);
}

}  // namespace vectord
