// The in-RAM navigation structure over the SPANN centroids: given a query, the nearest posting
// lists. Three kinds, chosen by measurement (docs/spann.md "Centroid navigation"): brute force with
// our AVX-512/AVX2 kernels, a two-level tree from the hierarchical k-means (SPTAG's BKT idea with
// one inner level), and Faiss HNSW. Brute force and the tree are living: WithEdits makes the next
// immutable snapshot after list splits and merges (SPFresh's LIRE) sharing what did not change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vectord/status.h"

namespace faiss {
struct IndexHNSWFlat;
}

namespace vectord::index {

enum class CentroidIndexKind : uint8_t { kBruteForce = 0, kTree = 1, kHnsw = 2 };
const char* CentroidIndexKindName(CentroidIndexKind k);  // "brute", "tree", "hnsw"

// How the centroids are held in RAM and in the centroid file: float32, or IEEE half (2 bytes a
// dimension: half the RAM, so twice the lists for the same budget; docs/spann.md "Centroid
// precision" measures the recall and speed). The tree's group centroids stay float32.
enum class CentroidPrecision : uint8_t { kF32 = 0, kF16 = 1 };
const char* CentroidPrecisionName(CentroidPrecision p);  // "f32", "f16"

struct CentroidHit {
  float dist;  // squared L2 between query and centroid
  uint32_t id;
};

struct CentroidSearchParams {
  // kTree: top-level groups whose members are scanned (default 0 = auto: max(8, k / 2)).
  uint32_t tree_groups = 0;
  // kHnsw: efSearch (0 = auto: max(2k, 64)).
  uint32_t ef = 0;
  // When set, Search adds the distances it computed (kTree: group centroids and the probed
  // groups' members; kBruteForce: every alive centroid; kHnsw: not counted): the navigation's
  // work, to compare structures at equal cost.
  uint64_t* distances = nullptr;
};

// One batch of navigation edits (a list split removes one centroid and adds two; a merge removes
// one). Removals are applied first, then additions in order, so a batch may remove an id and add
// it again with a new centroid.
struct CentroidEdits {
  std::vector<uint32_t> removed;  // ids to remove; each alive, each once
  // Ids to add, each either the next never-used id (size(), size() + 1, ... in order) or an id
  // that is removed (before this batch or by it).
  std::vector<uint32_t> added_ids;
  std::vector<float> added;  // added_ids.size() x dim() float32 centroids, finite
};

namespace centroid_store {
struct Group;
struct GroupBlock;
struct Place;
struct PlaceChunk;
}  // namespace centroid_store

// Thread-safety: every const method may run from many threads at once; an index reached through
// a shared_ptr<const CentroidIndex> is never modified (readers hold their snapshot while
// WithEdits prepares the next one).
class CentroidIndex {
 public:
  // `centroids` (n x dim) are copied. `group`/`group_centroids` come from HierarchicalKMeans and
  // are needed for kTree only (ignored otherwise); `group` must be non-decreasing.
  static Result<std::unique_ptr<CentroidIndex>> Build(CentroidIndexKind kind,
                                                      const float* centroids, uint32_t n,
                                                      uint32_t dim,
                                                      const std::vector<uint32_t>& group,
                                                      const std::vector<float>& group_centroids);
  ~CentroidIndex();
  CentroidIndex(const CentroidIndex&) = delete;
  CentroidIndex& operator=(const CentroidIndex&) = delete;

  // Up to k nearest alive centroids, nearest first (ties to the lower id). Thread-safe.
  void Search(const float* q, uint32_t k, const CentroidSearchParams& params,
              std::vector<CentroidHit>* out) const;
  // The k nearest alive centroids to alive centroid `id`, itself left out, nearest first: Search
  // with its stored vector for k + 1 (so as exact as Search; widen params.tree_groups for more).
  // For LIRE's neighbourhood of a split list. InvalidArgument when `id` is not alive.
  Status NeighboursOf(uint32_t id, uint32_t k, const CentroidSearchParams& params,
                      std::vector<CentroidHit>* out) const;

  // A new index with `edits` applied; *this is unchanged and stays valid for its readers. The new
  // index shares all storage it did not change with *this: it copies a few storage chunks (each
  // up to ~16 KiB) per edit and the top-level tables (size() / 256 + groups / 8 pointers); time
  // O(edits x groups x dim + members of the touched groups x dim) (docs/spann.md "Living
  // navigation"). The result depends on nothing but *this and `edits`, not even the CPU
  // (replaying a journal of edits rebuilds the same index). Added centroids are stored in
  // precision(). kTree: an added centroid joins the group with the nearest group centroid, a group
  // grown past the split bound is split by a 2-means of its members, emptied groups disappear,
  // changed groups get the mean of their members as group centroid. InvalidArgument for bad edits
  // (nothing is made), FailedPrecondition for kHnsw.
  Result<std::shared_ptr<const CentroidIndex>> WithEdits(const CentroidEdits& edits) const;

  // The same index (the same answers, the same results of future edits) with each group's members
  // in one contiguous chunk, as built or loaded. O(all centroids): a copy of every row. After many
  // edits a group's chunks lie scattered in memory and the tree searches 10-25 % slower than in
  // this layout (docs/spann.md "Living navigation"); the engine can swap this in when it rewrites
  // the centroid file anyway.
  std::shared_ptr<const CentroidIndex> Compacted() const;

  CentroidIndexKind kind() const { return kind_; }
  // Id space: ids 0 .. size() - 1, removed ones included.
  uint32_t size() const { return n_; }
  uint32_t alive_count() const { return alive_; }
  bool alive(uint32_t id) const;
  uint32_t dim() const { return dim_; }
  CentroidPrecision precision() const { return precision_; }
  // Converts float32 centroids to `p` (the builder does so after assignment, before writing the
  // centroid file). kF16 is refused for kHnsw (Faiss keeps its own float32 copy anyway).
  Status SetPrecision(CentroidPrecision p);
  // Squared L2 / inner product between a float32 query and centroid i, in either precision.
  // Removed ids: +infinity / -infinity.
  float L2(const float* q, uint32_t i) const;
  float Ip(const float* q, uint32_t i) const;
  // Centroid i as float32 (decoded from half where need be); a removed id gives NaNs.
  void Decode(uint32_t i, float* out) const;
  // All size() centroids as float32, id-major (removed ids: NaNs).
  std::vector<float> DecodeAll() const;
  // float32 storage only (precision() == kF32; the build works on float32): centroid i, nullptr
  // when i is not alive. Valid while this index lives.
  const float* centroid(uint32_t i) const;

  // The tree as built (kTree from Build or from a blob written before any edit; empty otherwise,
  // e.g. after WithEdits): group g holds centroids [member_start()[g], member_start()[g+1]),
  // stored contiguously, so centroid(member_start()[g]) points at all of them (float32).
  const std::vector<uint32_t>& member_start() const;
  // The groups' centroids, groups x dim float32, for the tree as built (empty otherwise).
  std::vector<float> group_centroids() const;
  // Members of each group slot (kTree; one slot for kBruteForce and kHnsw; 0 = empty slot).
  std::vector<uint32_t> GroupSizes() const;

  // Bytes held in RAM by this snapshot: centroids, ids, the id map, tree, graph. Storage shared
  // with other snapshots is counted in each of them, once per snapshot; what holding this
  // snapshot costs beyond another is UnsharedBytes.
  size_t MemoryBytes() const;
  // Bytes of this snapshot's storage that `other` does not share (after WithEdits: what the
  // edits cost beyond the index they were applied to).
  size_t UnsharedBytes(const CentroidIndex& other) const;

  // Self-contained byte form; no checksum (the SPANN centroid file has one over everything).
  // An index never edited keeps the format of its build (`VDCG` float32 / `VDCH` half, which
  // every version reads); an edited one is written as `VDCE` version 1 (alive ids, groups and
  // their members in order: the same index, and the same future edits, after a round trip).
  // docs/spann.md "Navigation blob".
  std::string Serialize() const;
  static Result<std::unique_ptr<CentroidIndex>> Deserialize(std::string_view bytes);

 private:
  friend class CentroidEditor;
  CentroidIndex();

  // The group in slot g (nullptr for an empty slot) and its group centroid (dim float32).
  const centroid_store::Group* group(uint32_t g) const;
  const float* group_centroid(uint32_t g) const;
  // Where centroid id < size() is (group kNoGroup when not alive).
  centroid_store::Place PlaceOf(uint32_t id) const;
  // The stored row (float or uint16 half) of centroid `id`, nullptr when not alive.
  const void* Row(uint32_t id) const;
  // out->push_back({L2(q, member), member id}) for every member of `g`; `next` (may be null) is
  // the group to be scanned next.
  void ScanGroup(const float* q, const centroid_store::Group& g, const centroid_store::Group* next,
                 std::vector<CentroidHit>* out) const;
  void SearchBrute(const float* q, uint32_t k, std::vector<CentroidHit>* out) const;
  // Returns the members scanned.
  uint64_t SearchTree(const float* q, uint32_t k, uint32_t groups,
                      std::vector<CentroidHit>* out) const;
  void SearchHnsw(const float* q, uint32_t k, uint32_t ef, std::vector<CentroidHit>* out) const;
  // Fills the storage of an unedited index from n x dim rows (float, or half when
  // precision_ == kF16) laid out group after group as `start` says (one group [0, n) if empty).
  Status Fill(const void* rows, std::vector<uint32_t> start, const std::vector<float>& gcents);
  Status BuildHnsw(const float* centroids);
  // Sets prefetch_ from the rows' total size.
  void SetPrefetch();
  void SerializeBuilt(std::string* s) const;
  void SerializeEdited(std::string* s) const;
  static Result<std::unique_ptr<CentroidIndex>> DeserializeEdited(std::string_view s);

  CentroidIndexKind kind_ = CentroidIndexKind::kBruteForce;
  uint32_t n_ = 0;      // id space
  uint32_t alive_ = 0;  // ids that are members of a group
  uint32_t dim_ = 0;
  CentroidPrecision precision_ = CentroidPrecision::kF32;
  // Members per storage chunk of a group that edits have touched (~16 KiB of rows; a group as
  // built or loaded is one chunk until its first edit).
  uint32_t chunk_members_ = 0;
  uint32_t group_slots_ = 0;  // kTree: group slots (empty ones included); 1 otherwise
  uint32_t live_groups_ = 0;  // non-empty group slots
  // Mean members per group when the tree was built: with sqrt(alive) it sets the split bound.
  uint32_t build_group_size_ = 0;
  bool edited_ = false;  // made by WithEdits (or read from a `VDCE` blob)
  // Whether Search prefetches the next chunk or group (the rows are too many to sit in a core's
  // L2 cache; see SetPrefetch).
  bool prefetch_ = false;
  // The storage, immutable and shared between snapshots: group slots in blocks of 8 (group
  // centroid + members), and the id -> (group slot, position) map in chunks of 256 ids. A null
  // map chunk means its ids are where the build put them: in the group whose range of
  // build_start_ holds them, at id - start (the map costs nothing until edits move ids).
  std::vector<std::shared_ptr<const centroid_store::GroupBlock>> blocks_;
  std::vector<std::shared_ptr<const centroid_store::PlaceChunk>> places_;
  // Group g held ids [start[g], start[g+1]) as built (one group [0, n) but for kTree); null for
  // an index read from a `VDCE` blob (its map has no null chunks).
  std::shared_ptr<const std::vector<uint32_t>> build_start_;
  std::unique_ptr<faiss::IndexHNSWFlat> hnsw_;
};

}  // namespace vectord::index
