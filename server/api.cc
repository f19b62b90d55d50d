// Routing and the collection-level handlers of the REST API (points handlers: api_points.cc).
#include "server/api.h"

#include <exception>

#include "server/json_reader.h"
#include "vectord/filter.h"

namespace vectord::server {
namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> segs;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i >= path.size()) break;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    segs.push_back(path.substr(i, j - i));
    i = j;
  }
  return segs;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes one path segment; false on a malformed escape.
bool DecodeSegment(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out->push_back(in[i]);
    }
  }
  return true;
}

const char* MethodName(Method m) {
  switch (m) {
    case Method::kGet:
      return "GET";
    case Method::kPut:
      return "PUT";
    case Method::kPost:
      return "POST";
    case Method::kDelete:
      return "DELETE";
    default:
      return "OTHER";
  }
}

// Merges `over` into `base` (one level): the echoed-back Qdrant config sections.
Json Merged(Json base, const Json& extra, const char* key) {
  auto it = extra.find(key);
  if (it != extra.end() && it->is_object()) {
    for (auto f = it->begin(); f != it->end(); ++f) base[f.key()] = f.value();
  }
  return base;
}

Json ExtraOr(const Json& extra, const char* key, Json fallback) {
  auto it = extra.find(key);
  return it != extra.end() && !it->is_null() ? *it : fallback;
}

}  // namespace

double Api::Context::Elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool Api::Context::Wait() const {
  std::string_view q = routed.query;
  size_t i = 0;
  while (i <= q.size()) {
    size_t j = q.find('&', i);
    if (j == std::string_view::npos) j = q.size();
    std::string_view kv = q.substr(i, j - i);
    if (kv == "wait=true" || kv == "wait" || kv == "wait=1") return true;
    i = j + 1;
  }
  return false;
}

Api::Api(Database* db, Metrics* metrics, ApiLimits limits)
    : db_(db), metrics_(metrics), limits_(limits) {
  auto add = [this](Method m, std::string path, Handler h, bool compute, bool write = false) {
    Route r{m, {}, h, std::string(MethodName(m)) + " /" + path, compute, write};
    for (auto s : SplitPath(path)) r.pattern.emplace_back(s);
    for (size_t pos; (pos = r.label.find("{c}")) != std::string::npos;) {
      r.label.replace(pos, 3, "{name}");
    }
    routes_.push_back(std::move(r));
  };
  using M = Method;
  add(M::kGet, "", &Api::Root, false);
  add(M::kGet, "healthz", &Api::Healthz, false);
  add(M::kGet, "livez", &Api::Healthz, false);
  add(M::kGet, "readyz", &Api::Readyz, false);
  add(M::kGet, "metrics", &Api::MetricsText, true);
  add(M::kGet, "collections", &Api::ListCollections, false);
  add(M::kGet, "collections/{c}", &Api::GetCollection, true);
  add(M::kPut, "collections/{c}", &Api::CreateCollection, true, true);
  add(M::kDelete, "collections/{c}", &Api::DeleteCollection, true, true);
  add(M::kGet, "collections/{c}/exists", &Api::CollectionExists, false);
  add(M::kPut, "collections/{c}/index", &Api::CreateIndex, true, true);
  add(M::kDelete, "collections/{c}/index/{p}", &Api::DeleteIndex, true, true);
  add(M::kPut, "collections/{c}/points", &Api::Upsert, true, true);
  add(M::kPost, "collections/{c}/points", &Api::RetrievePoints, true);
  add(M::kPost, "collections/{c}/points/delete", &Api::DeletePoints, true, true);
  add(M::kPost, "collections/{c}/points/payload", &Api::SetPayload, true, true);
  add(M::kPut, "collections/{c}/points/payload", &Api::OverwritePayload, true, true);
  add(M::kPost, "collections/{c}/points/payload/delete", &Api::DeletePayload, true, true);
  add(M::kPost, "collections/{c}/points/payload/clear", &Api::ClearPayload, true, true);
  add(M::kPost, "collections/{c}/points/search", &Api::Search, true);
  add(M::kPost, "collections/{c}/points/search/batch", &Api::SearchBatch, true);
  add(M::kPost, "collections/{c}/points/query", &Api::Query, true);
  add(M::kPost, "collections/{c}/points/query/batch", &Api::QueryBatch, true);
  add(M::kPost, "collections/{c}/points/scroll", &Api::Scroll, true);
  add(M::kPost, "collections/{c}/points/count", &Api::Count, true);
  // Must come after the fixed names above: "points/{p}" matches any last segment.
  add(M::kGet, "collections/{c}/points/{p}", &Api::GetPoint, true);
}

Api::Routed Api::Match(Method method, std::string_view target) const {
  Routed out;
  size_t qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  if (qpos != std::string_view::npos) out.query = std::string(target.substr(qpos + 1));
  std::vector<std::string_view> segs = SplitPath(path);
  std::vector<std::string> decoded(segs.size());
  for (size_t i = 0; i < segs.size(); ++i) {
    if (!DecodeSegment(segs[i], &decoded[i])) {
      out.error = ErrorResponse(
          400, "malformed percent-escape in URL path segment '" + std::string(segs[i]) + "'", 0);
      return out;
    }
  }
  // Routes of this shape; those with only fixed names win over those with a "{p}" segment.
  std::string allow[2];
  const Route* found[2] = {nullptr, nullptr};
  for (const Route& r : routes_) {
    if (r.pattern.size() != decoded.size()) continue;
    bool match = true;
    int uses_param = 0;
    for (size_t i = 0; i < decoded.size() && match; ++i) {
      const std::string& p = r.pattern[i];
      if (p == "{c}") continue;
      if (p == "{p}") {
        uses_param = 1;
        continue;
      }
      match = p == decoded[i];
    }
    if (!match) continue;
    if (r.method == method) {
      if (!found[uses_param]) found[uses_param] = &r;
    } else {
      if (!allow[uses_param].empty()) allow[uses_param] += ", ";
      allow[uses_param] += MethodName(r.method);
    }
  }
  int tier = (found[0] || !allow[0].empty()) ? 0 : 1;
  out.route = found[tier];
  const std::string& allowed = allow[tier];
  if (out.route) {
    for (size_t i = 0; i < decoded.size(); ++i) {
      if (out.route->pattern[i] == "{c}") out.collection = std::move(decoded[i]);
      if (out.route->pattern[i] == "{p}") out.param = std::move(decoded[i]);
    }
    return out;
  }
  if (!allowed.empty()) {
    out.error = ErrorResponse(405,
                              std::string("method ") + MethodName(method) + " is not allowed on " +
                                  std::string(path) + " (allowed: " + allowed + ")",
                              0);
    out.error.allow = allowed;
    return out;
  }
  out.error = ErrorResponse(404, "no route for " + std::string(path), 0);
  return out;
}

HttpResponse Api::Execute(const Routed& routed, std::string_view body) {
  Context c{routed, body, std::chrono::steady_clock::now()};
  try {
    return (this->*(routed.route->handler))(c);
  } catch (const std::exception& e) {
    return ErrorResponse(500, std::string("internal error: ") + e.what(), c.Elapsed());
  }
}

Result<std::shared_ptr<vectord::Collection>> Api::OpenCollection(const Context& c) const {
  auto r = db_->GetCollection(c.routed.collection);
  if (!r.ok() && r.status().code() == Status::Code::kNotFound) {
    return Status::NotFound("collection '" + c.routed.collection + "' not found");
  }
  return r;
}

Result<Json> Api::Body(const Context& c, bool allow_empty) const {
  size_t i = 0;
  while (i < c.body.size() &&
         (c.body[i] == ' ' || c.body[i] == '\n' || c.body[i] == '\r' || c.body[i] == '\t')) {
    ++i;
  }
  if (i == c.body.size()) {
    if (allow_empty) return Json::object();
    return Status::InvalidArgument("request body is empty; a JSON object is required");
  }
  VECTORD_ASSIGN_OR_RETURN(Json j, ParseJson(c.body, limits_.max_json_depth));
  if (!j.is_object()) {
    return Status::InvalidArgument(std::string("request body must be a JSON object, got ") +
                                   j.type_name());
  }
  return j;
}

HttpResponse Api::UpdateResult(const Context& c, const Result<uint64_t>& r) const {
  if (!r.ok()) return ErrorResponse(r.status(), c.Elapsed());
  HttpResponse resp;
  BeginEnvelope(&resp.body);
  resp.body += "{\"operation_id\":";
  AppendUint(&resp.body, r.value());
  resp.body += c.Wait() ? ",\"status\":\"completed\"}" : ",\"status\":\"acknowledged\"}";
  FinishEnvelope(&resp.body, c.Elapsed());
  return resp;
}

HttpResponse Api::Root(Context& c) {
  HttpResponse r;
  // "version" is the Qdrant REST API level vectord follows, so that Qdrant's clients' version
  // check passes; vectord's own version is "vectord_version".
  r.body =
      R"({"title":"vectord - vector search engine","version":"1.17.0","vectord_version":"0.1.0"})";
  return r;
}

HttpResponse Api::Healthz(Context& c) {
  HttpResponse r;
  r.content_type = "text/plain";
  r.body = "healthz check passed";
  return r;
}

HttpResponse Api::Readyz(Context& c) {
  HttpResponse r;
  r.content_type = "text/plain";
  if (shutting_down_) {
    r.status = 503;
    r.body = "shutting down";
  } else {
    r.body = "all shards are ready";
  }
  return r;
}

HttpResponse Api::MetricsText(Context& c) {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body.reserve(16 << 10);
  metrics_->AppendText(&r.body);
  // Per collection: points, the living index's delta and work, RAM per part.
  struct Gauge {
    const char* name;
    const char* help;
    const char* type;
    std::string lines;
  };
  std::vector<Gauge> g = {
      {"vectord_collection_points", "Live points per collection.", "gauge", {}},
      {"vectord_collection_indexed_points", "Points inside the SSD index.", "gauge", {}},
      {"vectord_index_delta_points", "Points not yet in the SSD index (the delta).", "gauge", {}},
      {"vectord_index_unassigned_points",
       "Points of the delta not yet assigned to lists.",
       "gauge",
       {}},
      {"vectord_index_posting_lists", "Posting lists of the SSD index.", "gauge", {}},
      {"vectord_index_update_points_per_second",
       "Points made durable per second (recent).",
       "gauge",
       {}},
      {"vectord_index_splits_total", "Posting lists split by the updater.", "counter", {}},
      {"vectord_index_merges_total", "Posting lists merged by the updater.", "counter", {}},
      {"vectord_index_reassigned_total", "Points reassigned to other lists (LIRE).", "counter", {}},
      {"vectord_index_lists_written_total",
       "Posting lists rewritten by the updater.",
       "counter",
       {}},
      {"vectord_index_bytes_written_total", "Posting bytes written by the updater.", "counter", {}},
      {"vectord_index_update_cpu_seconds_total", "Updater CPU time.", "counter", {}},
      {"vectord_collection_memory_bytes", "RAM held by each part of a collection.", "gauge", {}},
  };
  for (const std::string& name : db_->ListCollections()) {
    auto col = db_->GetCollection(name);
    if (!col.ok()) continue;
    const CollectionInfo info = (*col)->Info();
    const std::string label = "{collection=\"" + name + "\"} ";
    auto put = [&](size_t i, double v) {
      g[i].lines += g[i].name + label;
      AppendDouble(&g[i].lines, v);
      g[i].lines += '\n';
    };
    put(0, static_cast<double>(info.points_count));
    put(1, static_cast<double>(info.indexed_vectors_count));
    if (info.index_updates) {
      const auto& u = *info.index_updates;
      put(2, static_cast<double>(u.delta_points));
      put(3, static_cast<double>(u.unassigned_points));
      put(4, static_cast<double>(u.lists));
      put(5, u.points_per_second);
      put(6, static_cast<double>(u.splits));
      put(7, static_cast<double>(u.merges));
      put(8, static_cast<double>(u.reassigned));
      put(9, static_cast<double>(u.lists_written));
      put(10, static_cast<double>(u.bytes_written));
      put(11, u.cpu_seconds);
    }
    for (const auto& [part, bytes] : info.memory) {
      g[12].lines +=
          std::string(g[12].name) + "{collection=\"" + name + "\",part=\"" + part + "\"} ";
      AppendUint(&g[12].lines, bytes);
      g[12].lines += '\n';
    }
  }
  for (const Gauge& x : g) {
    if (x.lines.empty()) continue;
    r.body += std::string("# HELP ") + x.name + " " + x.help + "\n# TYPE " + x.name + " " + x.type +
              "\n" + x.lines;
  }
  r.body += "# HELP vectord_collections Number of collections.\n# TYPE vectord_collections gauge\n";
  r.body += "vectord_collections " + std::to_string(db_->ListCollections().size()) + "\n";
  return r;
}

HttpResponse Api::ListCollections(Context& c) {
  Json list = Json::array();
  for (const std::string& name : db_->ListCollections()) list.push_back({{"name", name}});
  return OkResponse(Json{{"collections", std::move(list)}}, c.Elapsed());
}

HttpResponse Api::CreateCollection(Context& c) {
  auto body = Body(c, false);
  if (!body.ok()) return ErrorResponse(body.status(), c.Elapsed());
  Json& b = *body;
  Status st = CheckKnownFields(
      b,
      {"vectors", "shard_number", "sharding_method", "replication_factor",
       "write_consistency_factor", "on_disk_payload", "hnsw_config", "wal_config",
       "optimizers_config", "quantization_config", "sparse_vectors", "strict_mode_config",
       "metadata", "init_from", "spann_config", "muvera_config"},
      "create collection request");
  if (!st.ok()) return ErrorResponse(st, c.Elapsed());
  auto bad = [&](const std::string& m) { return ErrorResponse(400, m, c.Elapsed()); };
  auto vit = b.find("vectors");
  if (vit == b.end() || vit->is_null()) return bad("vectors: missing (size and distance)");
  const Json& v = *vit;
  if (!v.is_object()) return bad("vectors: expected an object {size, distance}");
  if (!v.contains("size") && !v.empty()) {
    bool all_objects = true;
    for (const auto& x : v) all_objects = all_objects && x.is_object();
    if (all_objects) return bad("vectors: named vectors are not supported yet");
  }
  st = CheckKnownFields(v,
                        {"size", "distance", "hnsw_config", "quantization_config", "on_disk",
                         "memory", "datatype", "multivector_config"},
                        "vectors");
  if (!st.ok()) return ErrorResponse(st, c.Elapsed());
  if (b.contains("sparse_vectors") && !b["sparse_vectors"].is_null() &&
      !(b["sparse_vectors"].is_object() && b["sparse_vectors"].empty())) {
    return bad("sparse_vectors: sparse vectors are not supported yet");
  }
  if (b.contains("init_from") && !b["init_from"].is_null()) {
    return bad("init_from: not supported");
  }
  CollectionConfig cfg;
  auto sz = GetCount(v, "size", 0, 65536, "vectors");
  if (!sz.ok()) return ErrorResponse(sz.status(), c.Elapsed());
  if (*sz == 0) return bad("vectors.size: missing or 0 (must be 1..65536)");
  cfg.dim = static_cast<uint32_t>(*sz);
  if (!v.contains("distance") || !v["distance"].is_string()) {
    return bad("vectors.distance: missing (one of Cosine, Euclid, Dot, Manhattan)");
  }
  auto d = ParseDistance(v["distance"].get<std::string>());
  if (!d) {
    return bad("vectors.distance: unknown distance '" + v["distance"].get<std::string>() +
               "' (one of Cosine, Euclid, Dot, Manhattan)");
  }
  cfg.distance = *d;
  if (v.contains("datatype") && !v["datatype"].is_null()) {
    if (!v["datatype"].is_string()) return bad("vectors.datatype: expected a string");
    auto t = ParseDataType(v["datatype"].get<std::string>());
    if (!t) {
      return bad("vectors.datatype: unknown datatype '" + v["datatype"].get<std::string>() +
                 "' (one of float32, float16, uint8, int8)");
    }
    cfg.datatype = *t;
  }
  auto on_disk = GetBool(v, "on_disk", false, "vectors");
  if (!on_disk.ok()) return ErrorResponse(on_disk.status(), c.Elapsed());
  cfg.on_disk = *on_disk;
  // vectord extension: the SPANN memory/SSD index.
  if (b.contains("spann_config") && !b["spann_config"].is_null()) {
    auto sc = ParseSpannConfig(b["spann_config"]);
    if (!sc.ok()) return ErrorResponse(sc.status(), c.Elapsed());
    cfg.spann = *sc;
  }
  // Multi-vector collections (Qdrant's multivector_config) and their MUVERA encoding (vectord's
  // muvera_config extension).
  if (v.contains("multivector_config") && !v["multivector_config"].is_null()) {
    const Json& mv = v["multivector_config"];
    if (!mv.is_object()) return bad("vectors.multivector_config: expected an object");
    st = CheckKnownFields(mv, {"comparator"}, "vectors.multivector_config");
    if (!st.ok()) return ErrorResponse(st, c.Elapsed());
    if (!mv.contains("comparator") || mv["comparator"] != "max_sim") {
      return bad("vectors.multivector_config.comparator: expected \"max_sim\"");
    }
    if (cfg.distance != Distance::kCosine && cfg.distance != Distance::kDot) {
      return bad(std::string("vectors.distance: multi-vector collections score by MaxSim over "
                             "inner products: use Cosine or Dot, not ") +
                 DistanceName(cfg.distance));
    }
    MultivectorConfig mvc;
    auto mc = ParseMuveraConfig(b.value("muvera_config", Json::object()), cfg.dim);
    if (!mc.ok()) return ErrorResponse(mc.status(), c.Elapsed());
    mvc.muvera = *mc;
    cfg.multivector = mvc;
    if (cfg.spann) ApplyFdeSpannDefaults(b["spann_config"], MuveraFdeDim(mvc.muvera), &*cfg.spann);
  } else if (b.contains("muvera_config") && !b["muvera_config"].is_null()) {
    return bad("muvera_config: only for multi-vector collections (vectors.multivector_config)");
  }
  // Everything else is echoed back as given.
  cfg.extra = Json::object();
  for (auto it = b.begin(); it != b.end(); ++it) {
    if (it.key() != "vectors" && it.key() != "spann_config" && it.key() != "muvera_config" &&
        !it->is_null()) {
      cfg.extra[it.key()] = it.value();
    }
  }
  for (const char* k : {"hnsw_config", "quantization_config", "memory"}) {
    if (v.contains(k) && !v[k].is_null()) cfg.extra["vectors"][k] = v[k];
  }
  st = db_->CreateCollection(c.routed.collection, cfg);
  if (!st.ok()) {
    if (st.code() == Status::Code::kAlreadyExists) {
      return ErrorResponse(409, "collection '" + c.routed.collection + "' already exists",
                           c.Elapsed());
    }
    return ErrorResponse(st, c.Elapsed());
  }
  return OkResponse(true, c.Elapsed());
}

HttpResponse Api::GetCollection(Context& c) {
  auto col = OpenCollection(c);
  if (!col.ok()) return ErrorResponse(col.status(), c.Elapsed());
  CollectionInfo info = (*col)->Info();
  const CollectionConfig& cfg = info.config;
  const Json& extra = cfg.extra;
  Json vectors = {{"size", cfg.dim},
                  {"distance", DistanceName(cfg.distance)},
                  {"datatype", DataTypeName(cfg.datatype)},
                  {"on_disk", cfg.on_disk}};
  if (auto it = extra.find("vectors"); it != extra.end() && it->is_object()) {
    for (auto f = it->begin(); f != it->end(); ++f) vectors[f.key()] = f.value();
  }
  if (cfg.multivector) {
    vectors["multivector_config"] = {{"comparator", cfg.multivector->comparator}};
  }
  Json params = {{"vectors", std::move(vectors)},
                 {"shard_number", ExtraOr(extra, "shard_number", 1)},
                 {"replication_factor", ExtraOr(extra, "replication_factor", 1)},
                 {"write_consistency_factor", ExtraOr(extra, "write_consistency_factor", 1)},
                 {"on_disk_payload", ExtraOr(extra, "on_disk_payload", true)}};
  if (extra.contains("sharding_method")) params["sharding_method"] = extra["sharding_method"];
  Json config = {{"params", std::move(params)},
                 {"hnsw_config", Merged({{"m", 16},
                                         {"ef_construct", 100},
                                         {"full_scan_threshold", 10000},
                                         {"max_indexing_threads", 0},
                                         {"on_disk", false}},
                                        extra, "hnsw_config")},
                 {"optimizer_config", Merged({{"deleted_threshold", 0.2},
                                              {"vacuum_min_vector_number", 1000},
                                              {"default_segment_number", 0},
                                              {"max_segment_size", nullptr},
                                              {"memmap_threshold", nullptr},
                                              {"indexing_threshold", 20000},
                                              {"flush_interval_sec", 5},
                                              {"max_optimization_threads", nullptr}},
                                             extra, "optimizers_config")},
                 {"wal_config", Merged({{"wal_capacity_mb", 32}, {"wal_segments_ahead", 0}}, extra,
                                       "wal_config")},
                 {"quantization_config", ExtraOr(extra, "quantization_config", nullptr)}};
  if (cfg.spann) config["spann_config"] = SpannConfigToJson(*cfg.spann);
  if (cfg.multivector) config["muvera_config"] = MuveraConfigToJson(cfg.multivector->muvera);
  for (const char* k : {"strict_mode_config", "metadata"}) {
    if (extra.contains(k)) config[k] = extra[k];
  }
  Json schema = Json::object();
  for (size_t i = 0; i < info.payload_schema.size(); ++i) {
    const auto& [field, type] = info.payload_schema[i];
    uint64_t points = 0;
    for (const auto& [f, n] : info.payload_schema_points) {
      if (f == field) points = n;
    }
    schema[field] = {
        {"data_type", PayloadSchemaName(type)}, {"params", nullptr}, {"points", points}};
    schema[field].erase("params");
  }
  Json result = {{"status", info.status},
                 {"optimizer_status",
                  info.index_error.empty() ? Json("ok") : Json{{"error", info.index_error}}},
                 {"indexed_vectors_count", info.indexed_vectors_count},
                 {"points_count", info.points_count},
                 {"segments_count", info.segments_count},
                 {"config", std::move(config)},
                 {"payload_schema", std::move(schema)}};
  if (info.index_build_total > 0) {
    // vectord extension: progress of the SPANN index build while the status is yellow.
    result["index_build"] = {{"rows_done", info.index_build_done},
                             {"rows_total", info.index_build_total}};
  }
  if (info.index_updates) {
    // vectord extension: the living index's delta, the updater's backlog and what it has done.
    const CollectionInfo::IndexUpdates& u = *info.index_updates;
    result["index_updates"] = {{"delta_points", u.delta_points},
                               {"unassigned_points", u.unassigned_points},
                               {"pending_entries", u.pending_entries},
                               {"posting_lists", u.lists},
                               {"points_per_second", u.points_per_second},
                               {"cycles", u.cycles},
                               {"splits", u.splits},
                               {"merges", u.merges},
                               {"reassigned_points", u.reassigned},
                               {"lists_written", u.lists_written},
                               {"lists_cleaned", u.gc_lists},
                               {"bytes_written", u.bytes_written},
                               {"cpu_seconds", u.cpu_seconds},
                               {"posting_file_bytes", u.posting_file_bytes},
                               {"posting_free_bytes", u.free_bytes}};
  }
  if (!info.memory.empty()) {
    // vectord extension: RAM held by each part of the collection, bytes.
    Json mem = Json::object();
    uint64_t total = 0;
    for (const auto& [part, bytes] : info.memory) {
      mem[part] = bytes;
      total += bytes;
    }
    mem["total"] = total;
    result["memory_bytes"] = std::move(mem);
  }
  // vectord extension: what the last open read (oplog rows replayed, or a full scan).
  result["open"] = {{"replayed_rows", info.open_replayed_rows}, {"full_scan", info.open_full_scan}};
  return OkResponse(result, c.Elapsed());
}

HttpResponse Api::DeleteCollection(Context& c) {
  Status st = db_->DropCollection(c.routed.collection);
  if (st.code() == Status::Code::kNotFound) {
    return ErrorResponse(404, "collection '" + c.routed.collection + "' not found", c.Elapsed());
  }
  if (!st.ok()) return ErrorResponse(st, c.Elapsed());
  return OkResponse(true, c.Elapsed());
}

HttpResponse Api::CollectionExists(Context& c) {
  bool exists = db_->GetCollection(c.routed.collection).ok();
  return OkResponse(Json{{"exists", exists}}, c.Elapsed());
}

HttpResponse Api::CreateIndex(Context& c) {
  auto body = Body(c, false);
  if (!body.ok()) return ErrorResponse(body.status(), c.Elapsed());
  Status st = CheckKnownFields(*body, {"field_name", "field_schema"}, "create index request");
  if (!st.ok()) return ErrorResponse(st, c.Elapsed());
  const Json& b = *body;
  if (!b.contains("field_name") || !b["field_name"].is_string() ||
      b["field_name"].get<std::string>().empty()) {
    return ErrorResponse(400, "field_name: missing (a non-empty string)", c.Elapsed());
  }
  std::string field = b["field_name"].get<std::string>();
  const Json* schema = b.contains("field_schema") ? &b["field_schema"] : nullptr;
  if (schema && schema->is_object()) {
    schema = schema->contains("type") ? &(*schema)["type"] : nullptr;
  }
  if (!schema || !schema->is_string()) {
    return ErrorResponse(400,
                         "field_schema: missing (one of keyword, integer, float, bool, or "
                         "{\"type\": ...})",
                         c.Elapsed());
  }
  auto type = ParsePayloadSchema(schema->get<std::string>());
  if (!type) {
    return ErrorResponse(400,
                         "field_schema: unsupported type '" + schema->get<std::string>() +
                             "' (supported: keyword, integer, float, bool)",
                         c.Elapsed());
  }
  auto col = OpenCollection(c);
  if (!col.ok()) return ErrorResponse(col.status(), c.Elapsed());
  return UpdateResult(c, (*col)->CreatePayloadIndex(field, *type, c.Wait()));
}

HttpResponse Api::DeleteIndex(Context& c) {
  auto col = OpenCollection(c);
  if (!col.ok()) return ErrorResponse(col.status(), c.Elapsed());
  return UpdateResult(c, (*col)->DeletePayloadIndex(c.routed.param, c.Wait()));
}

}  // namespace vectord::server
