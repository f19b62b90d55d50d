// JSON forms of the collection configuration (collection_config.h).
#include "src/collection/collection_config.h"

#include <algorithm>
#include <cmath>

namespace vectord {
namespace {

// The vector file's rows are whole FDEs: keep them within the engine's 65536-float vector limit.
constexpr uint32_t kMaxFdeDim = 65536;

}  // namespace

Json SpannConfigToJson(const SpannConfig& c) {
  return Json{{"indexing_threshold", c.indexing_threshold},
              {"layout", c.layout},
              {"pq_m", c.pq_m},
              {"target_list_entries", c.target_list_entries},
              {"centroid_precision", c.centroid_precision},
              {"max_replicas", c.max_replicas},
              {"closure_eps", c.closure_eps},
              {"rng_factor", c.rng_factor},
              {"cache_bytes", c.cache_bytes},
              {"max_delta_points", c.max_delta_points},
              {"split_entries", c.split_entries},
              {"merge_entries", c.merge_entries},
              {"reassign_neighbors", c.reassign_neighbors},
              {"update_rng_factor", c.update_rng_factor},
              {"row_codes", c.row_codes},
              {"row_code_bytes", c.row_code_bytes},
              {"nprobe", c.nprobe},
              {"eps", c.eps},
              {"rerank", c.rerank}};
}

Result<SpannConfig> ParseSpannConfig(const Json& j) {
  if (!j.is_object()) return Status::InvalidArgument("spann_config must be an object");
  SpannConfig c;
  auto uint_field = [&](const std::string& key, const Json& v, uint64_t lo, uint64_t hi,
                        auto* out) { return ConfigUint("spann_config", key, v, lo, hi, out); };
  auto float_field = [&](const std::string& key, const Json& v, double lo, double hi,
                         float* out) -> Status {
    if (!v.is_number() || !(v.get<double>() >= lo && v.get<double>() <= hi)) {
      return Status::InvalidArgument("spann_config." + key + " must be a number in [" +
                                     std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                     v.dump());
    }
    *out = v.get<float>();
    return Status::OK();
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const Json& v = it.value();
    if (k == "indexing_threshold") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 1, uint64_t{1} << 32, &c.indexing_threshold));
    } else if (k == "layout") {
      if (!v.is_string() || (v != "full" && v != "pq4" && v != "pq8")) {
        return Status::InvalidArgument("spann_config.layout must be \"full\", \"pq4\" or \"pq8\"");
      }
      c.layout = v.get<std::string>();
    } else if (k == "pq_m") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, 4096, &c.pq_m));
    } else if (k == "target_list_entries") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, 1u << 20, &c.target_list_entries));
    } else if (k == "centroid_precision") {
      if (!v.is_string() || (v != "f16" && v != "f32")) {
        return Status::InvalidArgument(
            "spann_config.centroid_precision must be \"f16\" or \"f32\"");
      }
      c.centroid_precision = v.get<std::string>();
    } else if (k == "max_replicas") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 1, 8, &c.max_replicas));
    } else if (k == "closure_eps") {
      VECTORD_RETURN_IF_ERROR(float_field(k, v, 0, 10, &c.closure_eps));
    } else if (k == "rng_factor") {
      VECTORD_RETURN_IF_ERROR(float_field(k, v, 0, 10, &c.rng_factor));
    } else if (k == "cache_bytes") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, uint64_t{1} << 40, &c.cache_bytes));
    } else if (k == "max_delta_points") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 1, uint64_t{1} << 32, &c.max_delta_points));
    } else if (k == "split_entries") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, 1u << 20, &c.split_entries));
    } else if (k == "merge_entries") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, 1u << 20, &c.merge_entries));
    } else if (k == "reassign_neighbors") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, 1024, &c.reassign_neighbors));
    } else if (k == "update_rng_factor") {
      VECTORD_RETURN_IF_ERROR(float_field(k, v, 0, 10, &c.update_rng_factor));
    } else if (k == "row_codes") {
      if (!v.is_string() || (v != "auto" && v != "on" && v != "off")) {
        return Status::InvalidArgument(
            "spann_config.row_codes must be \"auto\", \"on\" or \"off\"");
      }
      c.row_codes = v.get<std::string>();
    } else if (k == "row_code_bytes") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 1, 256, &c.row_code_bytes));
    } else if (k == "nprobe") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 1, 100000, &c.nprobe));
    } else if (k == "eps") {
      VECTORD_RETURN_IF_ERROR(float_field(k, v, 0, 1000, &c.eps));
    } else if (k == "rerank") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, 100000, &c.rerank));
    } else {
      return Status::InvalidArgument("spann_config: unknown field '" + k + "'");
    }
  }
  return c;
}

Json CollectionConfigToJson(const CollectionConfig& c) {
  Json j{{"dim", c.dim},
         {"distance", DistanceName(c.distance)},
         {"datatype", DataTypeName(c.datatype)},
         {"fsync", c.fsync},
         {"on_disk", c.on_disk},
         {"extra", c.extra}};
  if (c.spann) j["spann_config"] = SpannConfigToJson(*c.spann);
  if (c.multivector) {
    j["multivector_config"] = {{"comparator", c.multivector->comparator}};
    j["muvera_config"] = MuveraConfigToJson(c.multivector->muvera);
  }
  return j;
}

Result<CollectionConfig> CollectionConfigFromJson(const Json& j) {
  try {
    CollectionConfig c;
    c.dim = j.at("dim").get<uint32_t>();
    auto d = ParseDistance(j.at("distance").get<std::string>());
    auto t = ParseDataType(j.at("datatype").get<std::string>());
    if (!d || !t) return Status::Corruption("catalog entry has an unknown distance or datatype");
    c.distance = *d;
    c.datatype = *t;
    c.fsync = j.value("fsync", true);
    c.on_disk = j.value("on_disk", false);
    c.extra = j.value("extra", Json::object());
    if (j.contains("spann_config")) {
      auto sc = ParseSpannConfig(j["spann_config"]);
      if (!sc.ok()) return Status::Corruption("catalog entry: " + sc.status().message());
      c.spann = sc.value();
    }
    if (j.contains("multivector_config")) {
      MultivectorConfig mv;
      mv.comparator = j["multivector_config"].value("comparator", "max_sim");
      auto mc = ParseMuveraConfig(j.value("muvera_config", Json::object()), c.dim);
      if (!mc.ok()) return Status::Corruption("catalog entry: " + mc.status().message());
      mv.muvera = mc.value();
      c.multivector = mv;
    }
    return c;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("catalog entry: ") + e.what());
  }
}

uint32_t MuveraFdeDim(const MuveraConfig& c) {
  if (c.final_dim != 0) return c.final_dim;
  return static_cast<uint32_t>(uint64_t{c.r_reps} * (uint64_t{1} << c.k_sim) * c.d_proj);
}

index::MuveraParams MuveraParamsOf(const MuveraConfig& c, uint32_t dim, std::vector<float> center) {
  index::MuveraParams p;
  p.dim = dim;
  p.k_sim = c.k_sim;
  p.d_proj = c.d_proj;
  p.r_reps = c.r_reps;
  p.final_dim = c.final_dim;
  p.fill_empty = c.fill_empty;
  p.seed = c.seed;
  p.center = std::move(center);
  return p;
}

void ApplyFdeSpannDefaults(const Json& given, uint32_t fde_dim, SpannConfig* c) {
  auto has = [&given](const char* key) { return given.is_object() && given.contains(key); };
  if (!has("layout")) c->layout = "pq4";
  if (c->layout != "full" && !has("pq_m")) {
    // 8 dimensions per subquantizer: 4 bits per 8 FDE dimensions in the lists (pq4; pq8: a byte
    // per 16).
    uint32_t m = std::clamp<uint32_t>(fde_dim / (c->layout == "pq8" ? 16 : 8), 1, 4096);
    while (m > 1 && fde_dim % m != 0) --m;
    c->pq_m = m;
  }
  if (!has("target_list_entries")) c->target_list_entries = 256;
}

uint32_t MuveraDefaultCandidates(uint64_t documents, size_t k, bool spann) {
  const double by_size =
      std::ceil((spann ? 0.9 : 0.75) * std::pow(static_cast<double>(documents), 0.8));
  return static_cast<uint32_t>(
      std::min<double>(1000000, std::max(20 * static_cast<double>(k), by_size)));
}

Json MuveraConfigToJson(const MuveraConfig& c) {
  return Json{{"k_sim", c.k_sim},
              {"d_proj", c.d_proj},
              {"r_reps", c.r_reps},
              {"final_dim", c.final_dim},
              {"fill_empty", c.fill_empty},
              {"seed", c.seed},
              {"center", c.center},
              {"candidates", c.candidates},
              {"candidate_spread", c.candidate_spread},
              {"max_vectors", c.max_vectors},
              {"fde_index", c.fde_index},
              {"fde_pq_m", c.fde_pq_m},
              {"fde_pq_rescore", c.fde_pq_rescore},
              {"fde_pq_max_rows", c.fde_pq_max_rows},
              {"prefilter_vectors", c.prefilter_vectors},
              {"rerank", c.rerank}};
}

Result<MuveraConfig> ParseMuveraConfig(const Json& j, uint32_t dim) {
  if (!j.is_object()) return Status::InvalidArgument("muvera_config must be an object");
  MuveraConfig c;
  // d_proj defaults to 8, or the vector size when that is smaller.
  c.d_proj = std::min<uint32_t>(c.d_proj, std::max<uint32_t>(dim, 1));
  auto uint_field = [&](const std::string& key, const Json& v, uint64_t lo, uint64_t hi,
                        auto* out) { return ConfigUint("muvera_config", key, v, lo, hi, out); };
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const Json& v = it.value();
    if (k == "k_sim") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, 10, &c.k_sim));
    } else if (k == "d_proj") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 1, std::max<uint32_t>(dim, 1), &c.d_proj));
    } else if (k == "r_reps") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 1, 1024, &c.r_reps));
    } else if (k == "final_dim") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, kMaxFdeDim, &c.final_dim));
    } else if (k == "fill_empty") {
      if (!v.is_boolean())
        return Status::InvalidArgument("muvera_config.fill_empty: expected a bool");
      c.fill_empty = v.get<bool>();
    } else if (k == "seed") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, UINT64_MAX, &c.seed));
    } else if (k == "center") {
      if (!v.is_string() || (v != "auto" && v != "none")) {
        return Status::InvalidArgument("muvera_config.center must be \"auto\" or \"none\"");
      }
      c.center = v.get<std::string>();
    } else if (k == "candidates") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, 1000000, &c.candidates));
    } else if (k == "candidate_spread") {
      if (!v.is_number() || !(v.get<double>() >= 1 && v.get<double>() <= 64)) {
        return Status::InvalidArgument(
            "muvera_config.candidate_spread must be a number in [1, 64], got " + v.dump());
      }
      c.candidate_spread = v.get<float>();
    } else if (k == "max_vectors") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 1, 65536, &c.max_vectors));
    } else if (k == "fde_index") {
      if (!v.is_string() || (v != "pq4" && v != "exact")) {
        return Status::InvalidArgument(
            "muvera_config.fde_index must be \"pq4\" or \"exact\", got " + v.dump());
      }
      c.fde_index = v.get<std::string>();
    } else if (k == "fde_pq_m") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, kMaxFdeDim, &c.fde_pq_m));
    } else if (k == "fde_pq_rescore") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 1, 64, &c.fde_pq_rescore));
    } else if (k == "fde_pq_max_rows") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, uint64_t{1} << 32, &c.fde_pq_max_rows));
    } else if (k == "prefilter_vectors") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, 65536, &c.prefilter_vectors));
    } else if (k == "rerank") {
      VECTORD_RETURN_IF_ERROR(uint_field(k, v, 0, 100000, &c.rerank));
    } else {
      return Status::InvalidArgument(
          "muvera_config: unknown field '" + k +
          "' (expected k_sim, d_proj, r_reps, final_dim, fill_empty, seed, center, candidates, "
          "candidate_spread, max_vectors, fde_index, fde_pq_m, fde_pq_rescore, fde_pq_max_rows, "
          "prefilter_vectors, rerank)");
    }
  }
  const uint64_t raw = uint64_t{c.r_reps} * (uint64_t{1} << c.k_sim) * c.d_proj;
  if (c.final_dim == 0 && raw > kMaxFdeDim) {
    return Status::InvalidArgument(
        "muvera_config: the encoding has r_reps * 2^k_sim * d_proj = " + std::to_string(raw) +
        " floats, more than " + std::to_string(kMaxFdeDim) +
        "; lower k_sim, d_proj or r_reps, or set final_dim");
  }
  if (c.final_dim > raw) {
    return Status::InvalidArgument("muvera_config.final_dim " + std::to_string(c.final_dim) +
                                   " exceeds r_reps * 2^k_sim * d_proj = " + std::to_string(raw));
  }
  if (uint64_t{c.max_vectors} * dim * 4 > (uint64_t{64} << 20)) {
    return Status::InvalidArgument("muvera_config.max_vectors " + std::to_string(c.max_vectors) +
                                   " x vector size " + std::to_string(dim) +
                                   " exceeds 64 MiB per point");
  }
  if (c.fde_pq_m != 0 && MuveraFdeDim(c) % c.fde_pq_m != 0) {
    return Status::InvalidArgument("muvera_config.fde_pq_m " + std::to_string(c.fde_pq_m) +
                                   " does not divide the FDE size " +
                                   std::to_string(MuveraFdeDim(c)));
  }
  if (dim > 0) {
    VECTORD_RETURN_IF_ERROR(index::ValidateMuveraParams(MuveraParamsOf(c, dim, {})));
  }
  return c;
}

}  // namespace vectord
