// Larger multi-vector (Chamfer) benchmark set in the mate/multivec layout
// (../shared/data/README.md) for bench_muvera: the real documents and queries of a multivec set
// unchanged (document ids 0 .. n_real-1 kept, so source.ivecs stays valid), plus distractor
// documents that are real image tiles cut from a SIFT base set made by
// ../shared/tools/make_sift_sets.py (base.bvecs and attrs.jsonl with image, view, x, y per
// descriptor): other random views (rotation, scale, exposure) of the same pictures, at another
// resolution.
//
// Distractors: base descriptors grouped into tiles by (image, view, x / tile, y / tile), tiles with
// at least --min-vectors kept, the first --max-vectors descriptors of a tile in file order, each
// converted to RootSIFT x 255 rounded to uint8 exactly as make_sift_sets.py root() does
// (float32: d / max(sum d, 1e-9), sqrt, x 255, round half to even, clip). Tiles are appended in the
// order of their first descriptor in the base. Ground truth is recomputed exactly over all
// documents: vectors / 255 scaled to unit length, Chamfer top-100 (ties: lower id), on --threads
// threads with index/chamfer.h.
//
//   gen_multivec --real DIR --sift DIR --out DIR [--tile 112] [--min-vectors 8] [--max-vectors 64]
//                [--max-docs N] [--threads 0]
// Writes OUT/docs.u8bin, docs.offsets, queries.u8bin, queries.offsets (copied), gt.ivecs,
// source.ivecs (copied), README.md (counts and the command).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "index/chamfer.h"
#include "storage/dataset_io.h"

namespace {

using vectord::storage::DatasetReader;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kDim = 128;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "gen_multivec: %s\n", what.c_str());
  std::exit(1);
}

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<uint8_t> ReadU8(const std::string& path, size_t* n) {
  auto reader = DatasetReader::Open(path);
  if (!reader.ok()) Die(reader.status().ToString());
  const auto& info = (*reader)->info();
  if (info.dim != kDim || info.type != vectord::storage::ElementType::kUint8) {
    Die(path + ": expected uint8 vectors of 128 dimensions, got dim " + std::to_string(info.dim));
  }
  std::vector<uint8_t> out(info.n * kDim);
  const vectord::Status st = (*reader)->ReadRaw(0, info.n, out.data());
  if (!st.ok()) Die(st.ToString());
  *n = info.n;
  return out;
}

// int32 m, int32 1, then m int64.
std::vector<uint64_t> ReadOffsets(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  int32_t hdr[2] = {0, 0};
  in.read(reinterpret_cast<char*>(hdr), sizeof(hdr));
  if (!in || hdr[0] < 1 || hdr[1] != 1) Die(path + ": bad offsets header");
  std::vector<uint64_t> out(static_cast<size_t>(hdr[0]));
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size() * 8));
  if (!in) Die(path + ": truncated");
  return out;
}

void WriteU8bin(const std::string& path, const std::vector<uint8_t>& rows) {
  std::ofstream out(path, std::ios::binary);
  const int32_t hdr[2] = {static_cast<int32_t>(rows.size() / kDim), static_cast<int32_t>(kDim)};
  out.write(reinterpret_cast<const char*>(hdr), sizeof(hdr));
  out.write(reinterpret_cast<const char*>(rows.data()), static_cast<std::streamsize>(rows.size()));
  if (!out) Die(path + ": write failed");
}

void WriteOffsets(const std::string& path, const std::vector<uint64_t>& off) {
  std::ofstream out(path, std::ios::binary);
  const int32_t hdr[2] = {static_cast<int32_t>(off.size()), 1};
  out.write(reinterpret_cast<const char*>(hdr), sizeof(hdr));
  out.write(reinterpret_cast<const char*>(off.data()),
            static_cast<std::streamsize>(off.size() * 8));
  if (!out) Die(path + ": write failed");
}

// texmex ivecs: per row int32 d, then d int32.
void WriteIvecs(const std::string& path, const std::vector<int32_t>& rows, int32_t d) {
  std::ofstream out(path, std::ios::binary);
  for (size_t r = 0; r < rows.size() / d; ++r) {
    out.write(reinterpret_cast<const char*>(&d), 4);
    out.write(reinterpret_cast<const char*>(rows.data() + r * d), 4 * d);
  }
  if (!out) Die(path + ": write failed");
}

// make_sift_sets.py root(): float32 d / max(sum, 1e-9), sqrt, * 255, np.round (half to even),
// clip to [0, 255].
void RootSift(const uint8_t* sift, uint8_t* out) {
  float sum = 0.0f;  // integers below 2^24: exact in float32, as numpy's sum
  for (uint32_t k = 0; k < kDim; ++k) sum += static_cast<float>(sift[k]);
  const float denom = std::max(sum, 1e-9f);
  for (uint32_t k = 0; k < kDim; ++k) {
    const float d = static_cast<float>(sift[k]) / denom;
    const float r = std::nearbyint(std::sqrt(d) * 255.0f);
    out[k] = static_cast<uint8_t>(std::clamp(r, 0.0f, 255.0f));
  }
}

// uint8 rows -> float / 255, unit length (as bench_muvera reads them).
std::vector<float> UnitFloats(const std::vector<uint8_t>& rows) {
  const size_t n = rows.size() / kDim;
  std::vector<float> out(rows.size());
  for (size_t i = 0; i < n; ++i) {
    double norm = 0;
    for (uint32_t k = 0; k < kDim; ++k) {
      const float v = rows[i * kDim + k] / 255.0f;
      norm += double{v} * v;
    }
    const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
    for (uint32_t k = 0; k < kDim; ++k) out[i * kDim + k] = rows[i * kDim + k] / 255.0f * inv;
  }
  return out;
}

void CopyFile(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) Die("copy " + from + " -> " + to + ": " + ec.message());
  // The source may be read-only (../shared/data): keep the copy writable so a rerun can replace it.
  std::filesystem::permissions(to, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add, ec);
}

}  // namespace

int main(int argc, char** argv) {
  std::string real, sift, out;
  uint32_t tile = 112, min_vectors = 8, max_vectors = 64;
  size_t max_docs = SIZE_MAX;
  unsigned threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (v == nullptr) Die("usage: see the header of bench/gen_multivec.cc");
    if (a == "--real") {
      real = v;
    } else if (a == "--sift") {
      sift = v;
    } else if (a == "--out") {
      out = v;
    } else if (a == "--tile") {
      tile = static_cast<uint32_t>(std::stoul(v));
    } else if (a == "--min-vectors") {
      min_vectors = static_cast<uint32_t>(std::stoul(v));
    } else if (a == "--max-vectors") {
      max_vectors = static_cast<uint32_t>(std::stoul(v));
    } else if (a == "--max-docs") {
      max_docs = std::stoul(v);
    } else if (a == "--threads") {
      threads = static_cast<unsigned>(std::stoul(v));
    } else {
      Die("unknown argument " + a + " (usage: see the header of bench/gen_multivec.cc)");
    }
    ++i;
  }
  if (real.empty() || sift.empty() || out.empty()) Die("--real, --sift and --out are required");
  if (tile == 0 || min_vectors == 0 || max_vectors < min_vectors) {
    Die("need tile > 0 and 0 < min-vectors <= max-vectors");
  }
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  std::filesystem::create_directories(out);
  const auto t0 = Clock::now();

  // The real set.
  size_t n_real_vec = 0, n_query_vec = 0;
  std::vector<uint8_t> doc_rows = ReadU8(real + "/docs.u8bin", &n_real_vec);
  std::vector<uint64_t> doc_off = ReadOffsets(real + "/docs.offsets");
  const std::vector<uint8_t> query_rows = ReadU8(real + "/queries.u8bin", &n_query_vec);
  const std::vector<uint64_t> query_off = ReadOffsets(real + "/queries.offsets");
  if (doc_off.back() != n_real_vec || query_off.back() != n_query_vec) {
    Die("offsets do not match the vector files in " + real);
  }
  const size_t n_real = doc_off.size() - 1, nq = query_off.size() - 1;

  // The SIFT base and its attributes.
  size_t n_base = 0;
  const std::vector<uint8_t> base = ReadU8(sift + "/base.bvecs", &n_base);
  std::ifstream attrs(sift + "/attrs.jsonl");
  if (!attrs) Die(sift + "/attrs.jsonl: cannot open");
  std::unordered_map<std::string, uint32_t> image_ids;
  // Tile key (image, view, tile x, tile y) -> tile index; tiles in order of their first vector.
  std::map<std::tuple<uint32_t, int64_t, int64_t, int64_t>, uint32_t> tile_of;
  std::vector<std::vector<uint32_t>> tiles;  // base rows per tile, file order
  std::string line;
  size_t row = 0;
  while (std::getline(attrs, line)) {
    if (row >= n_base) Die(sift + "/attrs.jsonl has more lines than base.bvecs rows");
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("image") || !j.contains("view") || !j.contains("x") ||
        !j.contains("y") || !j["image"].is_string() || !j["view"].is_number_integer() ||
        !j["x"].is_number_integer() || !j["y"].is_number_integer()) {
      Die(sift + "/attrs.jsonl line " + std::to_string(row + 1) + ": need image, view, x, y");
    }
    const auto [it, added] = image_ids.try_emplace(j["image"].get<std::string>(),
                                                   static_cast<uint32_t>(image_ids.size()));
    (void)added;
    const int64_t x = j["x"].get<int64_t>(), y = j["y"].get<int64_t>();
    const auto key = std::make_tuple(it->second, j["view"].get<int64_t>(), x >= 0 ? x / tile : -1,
                                     y >= 0 ? y / tile : -1);
    const auto [t, fresh] = tile_of.try_emplace(key, static_cast<uint32_t>(tiles.size()));
    if (fresh) tiles.emplace_back();
    tiles[t->second].push_back(static_cast<uint32_t>(row));
    ++row;
  }
  if (row != n_base) Die(sift + "/attrs.jsonl has fewer lines than base.bvecs rows");
  std::printf(
      "read %zu real documents (%zu vectors), %zu queries, %zu base vectors of %zu images "
      "in %zu tiles (%.1f s)\n",
      n_real, n_real_vec, nq, n_base, image_ids.size(), tiles.size(), Since(t0));

  // Distractor documents.
  size_t kept = 0, truncated = 0, dropped = 0;
  uint8_t rs[kDim];
  for (const std::vector<uint32_t>& t : tiles) {
    if (t.size() < min_vectors) {
      ++dropped;
      continue;
    }
    if (n_real + kept >= max_docs) break;
    truncated += t.size() > max_vectors;
    const size_t take = std::min<size_t>(t.size(), max_vectors);
    for (size_t i = 0; i < take; ++i) {
      RootSift(base.data() + size_t{t[i]} * kDim, rs);
      doc_rows.insert(doc_rows.end(), rs, rs + kDim);
    }
    doc_off.push_back(doc_off.back() + take);
    ++kept;
  }
  const size_t n_docs = doc_off.size() - 1, n_vec = doc_off.back();
  std::printf(
      "distractors: %zu tiles kept (%zu truncated to %u vectors), %zu with < %u vectors "
      "dropped; total %zu documents, %zu vectors (%.1f per document)\n",
      kept, truncated, max_vectors, dropped, min_vectors, n_docs, n_vec,
      static_cast<double>(n_vec) / n_docs);
  WriteU8bin(out + "/docs.u8bin", doc_rows);
  WriteOffsets(out + "/docs.offsets", doc_off);
  CopyFile(real + "/queries.u8bin", out + "/queries.u8bin");
  CopyFile(real + "/queries.offsets", out + "/queries.offsets");
  CopyFile(real + "/source.ivecs", out + "/source.ivecs");

  // Exact Chamfer top-100 over all documents.
  const auto t1 = Clock::now();
  const std::vector<float> docs_f = UnitFloats(doc_rows);
  const std::vector<float> queries_f = UnitFloats(query_rows);
  const vectord::index::MultiVectorView view{docs_f.data(), doc_off.data(), n_docs, kDim};
  constexpr size_t kTop = 100;
  std::vector<int32_t> gt(nq * kTop, -1);
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < threads; ++w) {
    pool.emplace_back([&] {
      for (size_t q = next++; q < nq; q = next++) {
        const auto top =
            vectord::index::ChamferTopK(queries_f.data() + query_off[q] * kDim,
                                        query_off[q + 1] - query_off[q], view, nullptr, 0, kTop);
        for (size_t i = 0; i < top.size(); ++i) gt[q * kTop + i] = static_cast<int32_t>(top[i].row);
      }
    });
  }
  for (std::thread& t : pool) t.join();
  WriteIvecs(out + "/gt.ivecs", gt, kTop);
  const double gt_s = Since(t1);

  // Checks: the source tile in the new top 10, and the new ground truth restricted to real
  // documents against the old one (equal up to float rounding in near ties).
  size_t n_src = 0, real_in_top10 = 0;
  double agree = 0;
  {
    auto reader = DatasetReader::Open(real + "/source.ivecs");
    auto old_gt = DatasetReader::Open(real + "/gt.ivecs");
    if (!reader.ok() || !old_gt.ok()) Die("cannot reopen source.ivecs / gt.ivecs in " + real);
    std::vector<int32_t> src((*reader)->info().n);
    std::vector<int32_t> og((*old_gt)->info().n * (*old_gt)->info().dim);
    const size_t od = (*old_gt)->info().dim;
    if (!(*reader)->ReadRaw(0, src.size(), src.data()).ok() ||
        !(*old_gt)->ReadRaw(0, (*old_gt)->info().n, og.data()).ok()) {
      Die("cannot read source.ivecs / gt.ivecs in " + real);
    }
    const size_t nc = std::min({nq, src.size(), (*old_gt)->info().n});
    for (size_t q = 0; q < nc; ++q) {
      for (size_t i = 0; i < 10; ++i) {
        n_src += gt[q * kTop + i] == src[q];
        real_in_top10 += gt[q * kTop + i] < static_cast<int32_t>(n_real);
      }
      std::vector<int32_t> mine;  // new gt, real documents only, first 10
      for (size_t i = 0; i < kTop && mine.size() < 10; ++i) {
        if (gt[q * kTop + i] < static_cast<int32_t>(n_real)) mine.push_back(gt[q * kTop + i]);
      }
      size_t hit = 0;
      for (int32_t id : mine) {
        for (size_t i = 0; i < std::min<size_t>(10, od); ++i) hit += og[q * od + i] == id;
      }
      agree += mine.empty() ? 1.0 : static_cast<double>(hit) / mine.size();
    }
    agree /= static_cast<double>(std::max<size_t>(nc, 1));
  }
  std::printf(
      "ground truth: %zu queries x top-%zu in %.1f s on %u threads; source tile in top 10: "
      "%.3f; real documents in top 10: %.2f per query; new gt restricted to real "
      "documents vs old gt@10: %.4f\n",
      nq, kTop, gt_s, threads, static_cast<double>(n_src) / nq,
      static_cast<double>(real_in_top10) / nq, agree);

  std::ofstream readme(out + "/README.md");
  readme << "# multivec-large: generated by bench/gen_multivec (vectord)\n\n"
         << "Layout as ../shared/data/README.md (mate/multivec). Documents 0.." << n_real - 1
         << " and all " << nq << " queries are " << real << " unchanged (source.ivecs copied);\n"
         << "documents " << n_real << ".." << n_docs - 1 << " are " << kept
         << " distractor tiles of " << sift << " (base.bvecs + attrs.jsonl grouped by image, view, "
         << "x/" << tile << ", y/" << tile << "; >= " << min_vectors << " vectors, first "
         << max_vectors << " kept; RootSIFT x 255 as make_sift_sets.py root()).\n"
         << "gt.ivecs: exact Chamfer top-100 over all " << n_docs
         << " documents (unit vectors, ties by lower id).\n\n"
         << "documents " << n_docs << ", vectors " << n_vec << " ("
         << static_cast<double>(n_vec) / n_docs << " per document), queries " << nq
         << ", source tile in exact top 10: " << static_cast<double>(n_src) / nq << "\n\ncommand:";
  for (int i = 0; i < argc; ++i) readme << " " << argv[i];
  readme << "\n";
  std::printf("wrote %s (%.1f s in all)\n", out.c_str(), Since(t0));
  return 0;
}
