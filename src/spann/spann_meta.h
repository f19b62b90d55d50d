// The SPANN index's in-RAM part as stored on disk: the centroid file `spann.vdc` (centroids and
// their navigation structure, PQ codebooks, per-list probe statistics, build parameters), written
// last by the builder so that its presence marks a complete index. Format: docs/spann.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/centroid_graph.h"
#include "index/posting_codec.h"
#include "index/pq.h"
#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord {

inline constexpr char kSpannCentroidFile[] = "spann.vdc";
inline constexpr char kSpannPostingFile[] = "postings.vdp";

struct SpannMeta {
  static constexpr char kMagic[8] = {'V', 'D', 'S', 'P', 'A', 'N', 'N', '1'};
  // Version 2: the navigation blob may hold IEEE half centroids (`VDCH`); version 1 files (float32
  // centroids only) are still read.
  static constexpr uint32_t kVersion = 2;

  uint32_t dim = 0;
  DataType dtype = DataType::kFloat32;
  Distance metric = Distance::kEuclid;
  index::PostingLayout layout = index::PostingLayout::kPq4;
  bool residual = true;  // PQ codes encode x - centroid(list)
  uint64_t rows = 0;     // rows indexed: InternalIds [0, rows)
  std::unique_ptr<index::CentroidIndex> centroids;
  std::unique_ptr<index::ProductQuantizer> pq;  // null for kFull
  // How often each list was among the nearest 8 of a build row (the static cache's ranking).
  std::vector<uint32_t> list_hits;
  std::string build_info;  // JSON: build parameters and statistics

  uint32_t num_lists() const { return centroids ? centroids->size() : 0; }
};

// Writes "<dir>/spann.vdc" (temp file, fsync, rename, fsync dir).
Status WriteSpannMeta(const std::string& dir, const SpannMeta& meta);
// Reads and verifies (magic, version, CRC-32C, sizes); Corruption names the file and field.
Result<SpannMeta> ReadSpannMeta(const std::string& dir);

}  // namespace vectord
