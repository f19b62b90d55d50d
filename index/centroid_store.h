// The storage behind CentroidIndex (index/centroid_graph.h), shared between its snapshots: each
// navigation group's members (ids and rows) in chunks, group slots with their group centroids in
// blocks, and the id -> place map in chunks. Every piece is immutable once a snapshot that holds it
// is published and is held by shared_ptr, so an edited snapshot copies only the pieces it changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace vectord::index::centroid_store {

// Where an alive centroid is: group slot and position among the group's members.
struct Place {
  uint32_t group;
  uint32_t pos;
};
constexpr uint32_t kNoGroup = UINT32_MAX;  // Place::group of a removed (or never used) id

constexpr uint32_t kPlaceBits = 8;
constexpr uint32_t kPlacesPerChunk = 1u << kPlaceBits;  // 2 KiB chunks
struct PlaceChunk {
  Place at[kPlacesPerChunk];
};

// Consecutive members of one group: ids and rows in the index's precision.
struct MemberChunk {
  uint32_t count = 0;
  uint32_t first_id = 0;      // ids are first_id + j while `ids` is empty (as built)
  std::vector<uint32_t> ids;  // count ids, or empty
  std::vector<float> f32;     // count x dim when float32, else empty
  std::vector<uint16_t> f16;  // count x dim IEEE half when half, else empty
  uint32_t id(uint32_t j) const { return ids.empty() ? first_id + j : ids[j]; }
  size_t MemoryBytes() const {
    return sizeof(*this) + ids.capacity() * sizeof(uint32_t) + f32.capacity() * sizeof(float) +
           f16.capacity() * sizeof(uint16_t);
  }
};

// A navigation group: member p is chunks[p / chunk_members] at p % chunk_members; every chunk but
// the last holds exactly chunk_members members, the last at least one.
struct Group {
  uint32_t size = 0;
  uint32_t chunk_members = 0;
  std::vector<std::shared_ptr<const MemberChunk>> chunks;
  size_t MemoryBytes() const {
    size_t b = sizeof(*this) + chunks.capacity() * sizeof(chunks[0]);
    for (const auto& c : chunks) b += c->MemoryBytes();
    return b;
  }
};

constexpr uint32_t kGroupBits = 3;
constexpr uint32_t kGroupsPerBlock = 1u << kGroupBits;
// kGroupsPerBlock consecutive group slots. The group centroids of a block are contiguous, so the
// tree's first level scans them block by block at the speed of one array.
struct GroupBlock {
  std::vector<float> centroids;                          // kGroupsPerBlock x dim float32
  std::shared_ptr<const Group> groups[kGroupsPerBlock];  // null: empty slot
};

// IEEE half to float for d values, exact (the same values as HalfToFloat) and branch-free so that
// it vectorizes: the edits decode whole groups to recompute their means. The 15 bits below the
// sign, moved to a float's exponent and mantissa and scaled by 2^(127 - 15), give every normal and
// subnormal half exactly; the all-ones exponent (inf, NaN) is set apart.
inline void HalfRowToFloat(const uint16_t* h, float* out, size_t d) {
  for (size_t j = 0; j < d; ++j) {
    const uint32_t x = h[j];
    const uint32_t mag = (x & 0x7FFFu) << 13;
    float f;
    std::memcpy(&f, &mag, sizeof(f));
    f *= 0x1p112f;
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    bits |= (x & 0x7C00u) == 0x7C00u ? 0x7F800000u : 0u;
    bits |= (x & 0x8000u) << 16;
    std::memcpy(out + j, &bits, sizeof(bits));
  }
}

}  // namespace vectord::index::centroid_store
