// CollectionImpl: write path (validate -> append vectors -> commit metadata -> apply in RAM),
// recovery, and the exact read path. See docs/storage.md.
#include "src/collection_impl.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <set>
#include <span>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "index/distance.h"
#include "index/filter.h"
#include "index/flat_search.h"
#include "src/fde_pq.h"
#include "src/list_summary.h"
#include "src/query_planner.h"
#include "src/row_codes.h"
#include "src/spann_builder.h"
#include "src/spann_index.h"
#include "src/token_codes.h"
#include "src/vector_source.h"

namespace vectord {

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

namespace {

// Splits "a.b.c" into keys (payload key paths of set_payload `key` and delete keys).
std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '.') {
      parts.push_back(path.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

void EraseAtPath(Json& obj, const std::vector<std::string>& parts, size_t i = 0) {
  if (!obj.is_object()) return;
  if (i + 1 == parts.size()) {
    obj.erase(parts[i]);
    return;
  }
  auto it = obj.find(parts[i]);
  if (it != obj.end()) EraseAtPath(*it, parts, i + 1);
}

const Json* FindAtPath(const Json& obj, const std::vector<std::string>& parts) {
  const Json* cur = &obj;
  for (const auto& p : parts) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(p);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

void SetAtPath(Json& obj, const std::vector<std::string>& parts, const Json& value) {
  Json* cur = &obj;
  for (const auto& p : parts) {
    if (!cur->is_object()) *cur = Json::object();
    cur = &(*cur)[p];
  }
  *cur = value;
}

}  // namespace

CollectionImpl::CollectionImpl(std::string name, uint32_t cid, std::string dir,
                               CollectionConfig config, storage::MetadataStore* store,
                               ThreadPool* pool)
    : name_(std::move(name)),
      cid_(cid),
      dir_(std::move(dir)),
      config_(std::move(config)),
      vdim_(config_.multivector ? MuveraFdeDim(config_.multivector->muvera) : config_.dim),
      vtype_(config_.multivector ? DataType::kFloat16 : config_.datatype),
      vdist_(config_.multivector ? Distance::kDot : config_.distance),
      row_bytes_(vdim_ * static_cast<uint32_t>(DataTypeSize(vtype_))),
      store_(store),
      pool_(pool) {}

Result<std::shared_ptr<CollectionImpl>> CollectionImpl::Open(
    std::string name, uint32_t cid, const std::string& dir, const CollectionConfig& config,
    const Json& catalog, storage::MetadataStore* store, ThreadPool* pool) {
  std::shared_ptr<CollectionImpl> c(
      new CollectionImpl(std::move(name), cid, dir, config, store, pool));
  VECTORD_ASSIGN_OR_RETURN(c->file_,
                           storage::VectorFile::Open(dir + "/vectors.vdv", c->vdim_, c->vtype_));
  VECTORD_RETURN_IF_ERROR(c->Restore(catalog).WithContext("collection '" + c->name_ + "'"));
  {
    std::lock_guard<std::mutex> wl(c->write_mu_);
    // The FDE PQ is rebuilt from the FDE rows in the background (src/fde_pq.h).
    if (c->config_.multivector) c->MaybeTrainFdePq();
    c->MaybeStartBuild();
    c->MaybeBuildRowCodes();
  }
  return c;
}

CollectionImpl::~CollectionImpl() {
  cancel_build_ = true;
  if (build_thread_.joinable()) build_thread_.join();
  if (fde_pq_thread_.joinable()) fde_pq_thread_.join();
  if (row_codes_thread_.joinable()) row_codes_thread_.join();
  if (summaries_thread_.joinable()) summaries_thread_.join();
}

Status CollectionImpl::Restore(const Json& catalog) {
  VECTORD_ASSIGN_OR_RETURN(uint64_t committed, store_->Rows(cid_));
  if (file_->rows() > committed) {
    // A crash after the vector append but before the metadata commit: those rows were never
    // acknowledged. Drop them.
    VECTORD_RETURN_IF_ERROR(file_->Truncate(committed));
  }
  if (file_->rows() < committed) {
    // Only possible when fsync was off and the machine (not just the process) went down.
    std::cerr << "vectord: collection '" << name_ << "': vector file has " << file_->rows()
              << " rows, metadata expects " << committed
              << "; points in the missing rows are dropped (fsync was off?)\n";
  }
  if (config_.multivector) VECTORD_RETURN_IF_ERROR(RestoreTokens(catalog));
  rows_ = file_->rows();

  // A built SPANN index covers rows [0, manifest.rows): those stay on SSD.
  const Json manifest = catalog.is_object() ? catalog.value("spann_index", Json()) : Json();
  if (manifest.is_object() && config_.spann) {
    const uint64_t gen = manifest.value("gen", uint64_t{0});
    const uint64_t indexed = manifest.value("rows", uint64_t{0});
    if (indexed > rows_) {
      return Status::Corruption("SPANN index covers " + std::to_string(indexed) +
                                " rows, the vector file has " + std::to_string(rows_));
    }
    spann_gen_ = gen;
    ram_base_ = indexed;
    spann_manifest_ = manifest;
    VECTORD_ASSIGN_OR_RETURN(reader_, storage::VectorFile::Open(file_->path(), vdim_, vtype_));
    SpannOpenOptions oo;
    oo.vector_file = file_->path();
    oo.cache_bytes = config_.spann->cache_bytes;
    auto idx = SpannIndex::Open(dir_ + "/spann-" + std::to_string(gen), oo);
    if (idx.ok()) {
      spann_ = std::shared_ptr<const SpannIndex>(std::move(idx).value());
    } else {
      // Still serves every point, exactly, from the vector file.
      status_ = "red";
      index_error_ = idx.status().ToString();
      std::cerr << "vectord: collection '" << name_ << "': cannot open its SPANN index ("
                << index_error_ << "); serving exact search from the vector file\n";
    }
  }
  // Remove index directories of other generations (interrupted or superseded builds).
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string fname = e.path().filename().string();
    if (fname.rfind("spann-", 0) == 0 &&
        (!spann_manifest_.is_object() || fname != "spann-" + std::to_string(spann_gen_))) {
      std::filesystem::remove_all(e.path(), ec);
    }
  }

  vectors_.resize((rows_ - ram_base_) * row_bytes_);
  const uint64_t chunk = 16384;
  for (uint64_t first = ram_base_; first < rows_; first += chunk) {
    const uint64_t n = std::min(chunk, rows_ - first);
    VECTORD_RETURN_IF_ERROR(
        file_->Read(first, n, vectors_.data() + (first - ram_base_) * row_bytes_));
  }
  live_bits_.assign((rows_ + 63) / 64, 0);
  row_to_id_.assign(rows_, PointId());
  payloads_.assign(rows_, Json());
  std::vector<std::pair<PointId, InternalId>> lost;
  VECTORD_RETURN_IF_ERROR(store_->ForEachMapping(cid_, [&](const PointId& id, InternalId row) {
    if (row >= rows_) {
      lost.emplace_back(id, row);
      return Status::OK();
    }
    id_to_row_.emplace_hint(id_to_row_.end(), id, row);
    row_to_id_[row] = id;
    live_bits_[row >> 6] |= uint64_t{1} << (row & 63);
    live_.add(row);
    return Status::OK();
  }));
  if (!lost.empty()) {
    storage::MetaBatch b(cid_);
    for (auto& [id, row] : lost) b.UnmapId(id, row);
    b.SetRows(rows_);
    VECTORD_RETURN_IF_ERROR(store_->Commit(b, true));
  }
  VECTORD_RETURN_IF_ERROR(store_->ForEachPayload(cid_, [&](InternalId row, Json&& p) {
    if (IsLive(row)) payloads_[row] = std::move(p);
    return Status::OK();
  }));
  const Json idx_list =
      catalog.is_object() ? catalog.value("payload_indexes", Json::array()) : Json::array();
  for (const auto& idx : idx_list) {
    auto type = ParsePayloadSchema(idx.value("type", ""));
    if (!type) return Status::Corruption("catalog entry has a bad payload index: " + idx.dump());
    VECTORD_RETURN_IF_ERROR(indexes_.Create(idx.value("field", ""), *type, [&](const auto& emit) {
      for (InternalId r : live_) {
        if (!payloads_[r].is_null()) emit(r, payloads_[r]);
      }
    }));
  }
  live_.runOptimize();
  if (spann_) LoadSummaries(dir_ + "/spann-" + std::to_string(spann_gen_));
  return Status::OK();
}

Result<std::unique_ptr<ListSummaries>> CollectionImpl::BuildSummaries(const SpannIndex& index,
                                                                      bool locked,
                                                                      Roaring dirty) const {
  std::vector<std::string> fields;
  {
    std::shared_lock l(mu_, std::defer_lock);
    if (!locked) l.lock();
    for (const auto& info : indexes_.List()) fields.push_back(info.field);
  }
  ListSummaries::Builder b(fields, index.num_lists());
  VECTORD_RETURN_IF_ERROR(b.status());
  std::vector<uint32_t> rows;
  for (uint32_t list = 0; list < index.num_lists(); ++list) {
    if (cancel_build_) return Status::Unavailable("collection '" + name_ + "' is being closed");
    VECTORD_RETURN_IF_ERROR(index.ListRows(list, &rows));
    std::shared_lock l(mu_, std::defer_lock);
    if (!locked) l.lock();
    b.BeginList(list);
    for (uint32_t r : rows) {
      b.Add(r < payloads_.size() && !payloads_[r].is_null() ? &payloads_[r] : nullptr);
    }
  }
  return b.Finish(std::move(dirty));
}

void CollectionImpl::LoadSummaries(const std::string& idx_dir) {
  const std::string file = idx_dir + "/" + kListSummaryFile;
  const std::string log_path = idx_dir + "/" + kListSummaryDirtyLog;
  auto read = ListSummaries::Read(file, spann_->num_lists());
  Status st = read.status();
  if (read.ok()) {
    Roaring logged;
    auto log = DirtyLog::Open(log_path, &logged);
    st = log.status();
    if (log.ok()) {
      summary_dirty_ = (*read)->build_dirty() | logged;
      summaries_ = std::move(read).value();
      dirty_log_ = std::move(log).value();
      return;
    }
  }
  // Missing (an index built before summaries existed) or damaged: rebuild from the payloads.
  if (st.code() != Status::Code::kNotFound) {
    std::cerr << "vectord: collection '" << name_ << "': " << st.ToString()
              << "; rebuilding the list summaries\n";
  }
  auto built = BuildSummaries(*spann_, /*locked=*/true, Roaring());
  st = built.status();
  if (built.ok()) {
    auto log = WriteSummariesAndEmptyLog(**built, Roaring(), idx_dir);
    st = log.status();
    if (log.ok()) {
      summaries_ = std::move(built).value();
      summary_dirty_ = Roaring();
      dirty_log_ = std::move(log).value();
      return;
    }
  }
  std::cerr << "vectord: collection '" << name_ << "': cannot build list summaries ("
            << st.ToString() << "); filtered searches read lists without them\n";
}

Json CollectionImpl::CatalogJson() const {
  Json idx = Json::array();
  Json manifest;
  std::vector<float> center;
  {
    std::shared_lock l(mu_);
    for (const auto& info : indexes_.List()) {
      idx.push_back({{"field", info.field}, {"type", PayloadSchemaName(info.type)}});
    }
    manifest = spann_manifest_;
    center = muvera_center_;
  }
  Json j{{"name", name_}, {"config", CollectionConfigToJson(config_)}, {"payload_indexes", idx}};
  if (manifest.is_object()) j["spann_index"] = manifest;
  if (!center.empty()) j["muvera_center"] = center;
  return j;
}

void CollectionImpl::MaybeStartBuild() {
  if (!config_.spann || building_ || build_failed_ || dropped_) return;
  uint64_t rows, live;
  {
    std::shared_lock l(mu_);
    if (spann_manifest_.is_object()) return;  // built; merging the delta is later work
    rows = rows_;
    live = id_to_row_.size();
  }
  if (live < config_.spann->indexing_threshold) return;
  if (build_thread_.joinable()) build_thread_.join();  // a finished earlier attempt
  building_ = true;
  {
    std::unique_lock l(mu_);
    status_ = "yellow";
  }
  const uint64_t gen = ++spann_gen_;
  build_done_rows_ = 0;
  build_total_rows_ = rows;
  build_thread_ = std::thread([this, rows, gen] { BuildIndex(rows, gen); });
}

void CollectionImpl::BuildIndex(uint64_t rows, uint64_t gen) {
  const std::string idx_dir = dir_ + "/spann-" + std::to_string(gen);
  auto fail = [&](const Status& s) {
    std::cerr << "vectord: collection '" << name_ << "': SPANN build failed: " << s.ToString()
              << "\n";
    std::error_code ec;
    std::filesystem::remove_all(idx_dir, ec);
    std::lock_guard<std::mutex> wl(write_mu_);
    building_ = false;
    build_failed_ = true;
    std::unique_lock l(mu_);
    status_ = cancel_build_ ? status_ : "red";
    index_error_ = s.ToString();
  };
  auto reader = storage::VectorFile::Open(file_->path(), vdim_, vtype_);
  if (!reader.ok()) return fail(reader.status());
  std::unique_ptr<storage::VectorFile> vf = std::move(reader).value();
  auto source = MakeVectorFileSource(*vf, vdim_, vtype_, rows);
  const SpannConfig& sc = *config_.spann;
  SpannBuildParams bp;
  bp.metric = vdist_;
  bp.layout = sc.layout == "pq4"   ? index::PostingLayout::kPq4
              : sc.layout == "pq8" ? index::PostingLayout::kPq8
                                   : index::PostingLayout::kFull;
  bp.pq_m = sc.pq_m;
  bp.target_list_entries = sc.target_list_entries;
  bp.centroid_precision = sc.centroid_precision == "f32" ? index::CentroidPrecision::kF32
                                                         : index::CentroidPrecision::kF16;
  bp.assign.max_replicas = sc.max_replicas;
  bp.assign.closure_eps = sc.closure_eps;
  bp.assign.rng_factor = sc.rng_factor;
  bp.threads = std::max(1u, pool_->size() > 1 ? pool_->size() - 1 : 1u);
  bp.sort_buffer_bytes = size_t{64} << 20;
  bool has_payload_index;
  {
    std::shared_lock l(mu_);
    has_payload_index = !indexes_.List().empty();
  }
  // "auto": single-vector collections with a payload index (multi-vector collections index
  // MUVERA encodings of thousands of dimensions: "on" only).
  const bool codes =
      sc.row_codes == "on" || (sc.row_codes == "auto" && has_payload_index && !config_.multivector);
  bp.row_code_bytes = codes ? sc.row_code_bytes : 0;
  bp.cancel = &cancel_build_;
  std::error_code ec;
  std::filesystem::remove_all(idx_dir, ec);
  auto built = BuildSpannIndex(*source, idx_dir, bp, [this](uint64_t done, uint64_t total) {
    build_done_rows_ = done;
    build_total_rows_ = total;
  });
  if (!built.ok()) return fail(built.status());
  SpannOpenOptions oo;
  oo.vector_file = file_->path();
  oo.cache_bytes = sc.cache_bytes;
  auto idx = SpannIndex::Open(idx_dir, oo);
  if (!idx.ok()) return fail(idx.status());
  std::shared_ptr<const SpannIndex> index(std::move(idx).value());

  // List summaries from the payloads as they are now; payload changes from here on are recorded
  // (summary_pending_dirty_) and brute-forced by searches.
  {
    std::lock_guard<std::mutex> wl(write_mu_);
    std::unique_lock l(mu_);
    summary_tracking_ = true;
    summary_pending_dirty_ = Roaring();
  }
  auto summaries = BuildSummaries(*index, /*locked=*/false, Roaring());

  std::lock_guard<std::mutex> wl(write_mu_);
  building_ = false;
  if (dropped_ || cancel_build_) return;
  std::shared_ptr<const ListSummaries> sums;
  std::unique_ptr<DirtyLog> dirty_log;
  Roaring dirty;
  {
    std::unique_lock l(mu_);
    summary_tracking_ = false;
    dirty.swap(summary_pending_dirty_);
  }
  Status sst = summaries.status();
  if (sst.ok()) {
    auto log = WriteSummariesAndEmptyLog(**summaries, dirty, idx_dir);
    sst = log.status();
    if (log.ok()) {
      dirty_log = std::move(log).value();
      sums = std::move(summaries).value();
    }
  }
  if (!sst.ok()) {
    std::cerr << "vectord: collection '" << name_ << "': no list summaries (" << sst.ToString()
              << "); filtered searches read lists without them\n";
  }
  const Json manifest{{"gen", gen}, {"rows", rows}};
  {
    std::unique_lock l(mu_);
    spann_manifest_ = manifest;
  }
  storage::MetaBatch batch(cid_);
  batch.PutCollectionConfig(CatalogJson().dump());
  Status s = store_->Commit(batch, true);
  std::unique_lock l(mu_);
  if (!s.ok()) {
    spann_manifest_ = Json();
    build_failed_ = true;
    status_ = "red";
    index_error_ = s.ToString();
    return;
  }
  // Installed: rows below `rows` are now served from SSD; free their RAM copy.
  spann_ = std::move(index);
  summaries_ = std::move(sums);
  summary_dirty_ = std::move(dirty);
  dirty_log_ = std::move(dirty_log);
  reader_ = std::move(vf);
  const uint64_t drop = (rows - ram_base_) * row_bytes_;
  vectors_.erase_front(drop);
  ram_base_ = rows;
  fde_pq_.reset();  // the FDE PQ stage covers all-RAM collections only
  status_ = "green";
  index_error_.clear();
  std::cerr << "vectord: collection '" << name_ << "': SPANN index over " << rows
            << " rows installed (" << built->lists << " lists, " << built->seconds_total << " s)\n";
  l.unlock();
  MaybeBuildRowCodes();  // a payload index created while the index was being built (write_mu_)
}

void CollectionImpl::MaybeBuildRowCodes() {
  if (!config_.spann || row_codes_building_ || cancel_build_ || dropped_) return;
  const SpannConfig& sc = *config_.spann;
  std::shared_ptr<const SpannIndex> index;
  {
    std::shared_lock l(mu_);
    if (!spann_ || spann_->row_codes() != nullptr || sc.row_codes == "off") return;
    if (sc.row_codes == "auto" && (indexes_.List().empty() || config_.multivector)) return;
    index = spann_;
  }
  const std::string dir = dir_ + "/spann-" + std::to_string(spann_gen_);
  StartJob(&row_codes_thread_, &row_codes_building_,
           [this, index, dir] { BuildRowCodes(index, dir); });
}

void CollectionImpl::StartJob(std::thread* thread, std::atomic<bool>* running,
                              std::function<void()> job) {
  if (thread->joinable()) thread->join();  // a finished earlier run
  *running = true;
  *thread = std::thread([running, job = std::move(job)] {
    job();
    *running = false;
  });
}

void CollectionImpl::BuildRowCodes(std::shared_ptr<const SpannIndex> index, std::string dir) {
  const auto t0 = std::chrono::steady_clock::now();
  const uint32_t m = RowCodeSubquantizers(vdim_, config_.spann->row_code_bytes);
  Status st =
      m == 0 ? Status::InvalidArgument("row_code_bytes gives no subquantizer count") : Status::OK();
  std::unique_ptr<RowCodes> codes;
  if (st.ok()) {
    // The index's rows never change: read them through a descriptor of our own.
    auto vf = storage::VectorFile::Open(file_->path(), vdim_, vtype_);
    st = vf.status();
    if (vf.ok()) {
      auto source = MakeVectorFileSource(**vf, vdim_, vtype_, index->rows());
      auto built =
          RowCodes::Build(*source, vdist_, m, 1234, std::max(1u, pool_->size()), &cancel_build_);
      st = built.status();
      if (built.ok()) codes = std::move(built).value();
    }
  }
  if (st.ok()) st = codes->Write(dir + "/" + kRowCodesFile);
  if (!st.ok()) {
    if (!cancel_build_) {
      std::cerr << "vectord: collection '" << name_ << "': cannot build row codes ("
                << st.ToString() << "); filtered searches run without the code scan\n";
    }
    return;
  }
  const uint64_t rows = codes->rows();
  index->InstallRowCodes(std::move(codes));
  std::ostringstream msg;
  msg << "vectord: collection '" << name_ << "': row codes (" << m << " bytes) for " << rows
      << " indexed rows built in "
      << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
      << " s, in the background\n";
  std::cerr << msg.str();
}

void CollectionImpl::WaitForJob(void (CollectionImpl::*maybe_start)(),
                                const std::atomic<bool>& running) {
  for (;;) {
    {
      std::lock_guard<std::mutex> wl(write_mu_);
      (this->*maybe_start)();  // a job that became due while the last one ran
      if (!running) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void CollectionImpl::WaitForRowCodes() {
  WaitForJob(&CollectionImpl::MaybeBuildRowCodes, row_codes_building_);
}

void CollectionImpl::MaybeRefreshSummaries() {
  if (summaries_refreshing_ || cancel_build_ || dropped_) return;
  std::shared_ptr<const SpannIndex> index;
  {
    std::shared_lock l(mu_);
    if (!spann_ || !summaries_ || !dirty_log_) return;
    if (summary_dirty_.cardinality() < std::max<uint64_t>(256, ram_base_ / 32)) return;
    index = spann_;
  }
  {
    // Writers are held off (write_mu_): every change from here on is tracked.
    std::unique_lock l(mu_);
    summary_tracking_ = true;
    summary_pending_dirty_ = Roaring();
  }
  const std::string dir = dir_ + "/spann-" + std::to_string(spann_gen_);
  StartJob(&summaries_thread_, &summaries_refreshing_,
           [this, index, dir] { RefreshSummaries(index, dir); });
}

void CollectionImpl::RefreshSummaries(std::shared_ptr<const SpannIndex> index, std::string dir) {
  const auto t0 = std::chrono::steady_clock::now();
  auto built = BuildSummaries(*index, /*locked=*/false, Roaring());
  std::lock_guard<std::mutex> wl(write_mu_);
  Roaring dirty;
  uint64_t before;
  {
    std::unique_lock l(mu_);
    summary_tracking_ = false;
    dirty.swap(summary_pending_dirty_);
    before = summary_dirty_.cardinality();
  }
  if (dropped_ || cancel_build_) return;
  // The new summary file (with the changes made while it was built), then an empty log.
  Status st = built.status();
  std::unique_ptr<DirtyLog> log;
  if (st.ok()) {
    auto written = WriteSummariesAndEmptyLog(**built, dirty, dir);
    st = written.status();
    if (written.ok()) log = std::move(written).value();
  }
  if (!st.ok()) {
    // The summary file may be new already: its changed rows are in the old log too, so the
    // summaries in RAM (with their dirty rows) still describe a superset. Nothing to undo.
    std::cerr << "vectord: collection '" << name_ << "': cannot refresh the list summaries ("
              << st.ToString() << "); searches keep checking the changed rows\n";
    std::unique_lock l(mu_);
    summary_dirty_ |= dirty;
    return;
  }
  {
    std::unique_lock l(mu_);
    summaries_ = std::move(built).value();
    summary_dirty_ = dirty;
    dirty_log_ = std::move(log);
  }
  std::ostringstream msg;
  msg << "vectord: collection '" << name_ << "': list summaries refreshed (" << before
      << " changed rows -> " << dirty.cardinality() << ") in "
      << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
  std::cerr << msg.str();
}

void CollectionImpl::WaitForSummaries() {
  WaitForJob(&CollectionImpl::MaybeRefreshSummaries, summaries_refreshing_);
}

uint64_t CollectionImpl::SummaryDirtyRows() const {
  std::shared_lock l(mu_);
  return summary_dirty_.cardinality();
}

void CollectionImpl::MarkDropped() {
  cancel_build_ = true;  // a background index build stops at its next chunk
  std::lock_guard<std::mutex> l(write_mu_);
  dropped_ = true;
}

Status CollectionImpl::CheckWritable() const {
  if (dropped_) return Status::NotFound("collection '" + name_ + "' was deleted");
  return Status::OK();
}

CollectionInfo CollectionImpl::Info() const {
  CollectionInfo info;
  info.config = config_;
  std::shared_lock l(mu_);
  info.points_count = id_to_row_.size();
  info.status = status_;
  info.index_error = index_error_;
  if (status_ == "yellow") {
    info.index_build_done = build_done_rows_;
    info.index_build_total = build_total_rows_;
  }
  // Points served by the SPANN index (exact search needs none: 0 without an index).
  info.indexed_vectors_count =
      ram_base_ == 0 ? 0 : live_.rank(static_cast<uint32_t>(ram_base_ - 1));
  for (const auto& i : indexes_.List()) {
    info.payload_schema.emplace_back(i.field, i.type);
    info.payload_schema_points.emplace_back(i.field, i.points);
  }
  return info;
}

Status EncodeElements(const std::string& where, const float* v, uint32_t dim, DataType type,
                      bool normalize, uint8_t* dst) {
  for (size_t i = 0; i < dim; ++i) {
    if (!std::isfinite(v[i])) {
      return Status::InvalidArgument(where + "element " + std::to_string(i) +
                                     " is not a finite number");
    }
  }
  auto check_int = [&](size_t i, float lo, float hi) -> Status {
    if (v[i] != std::nearbyint(v[i]) || v[i] < lo || v[i] > hi) {
      return Status::InvalidArgument(where + "element " + std::to_string(i) + " = " +
                                     std::to_string(v[i]) + " is not an integer in [" +
                                     std::to_string(int(lo)) + ", " + std::to_string(int(hi)) +
                                     "] as datatype " + DataTypeName(type) + " requires");
    }
    return Status::OK();
  };
  float scale = 1.0f;
  if (normalize) {
    double norm = 0;
    for (size_t i = 0; i < dim; ++i) norm += double{v[i]} * v[i];
    if (norm > 0) scale = static_cast<float>(1.0 / std::sqrt(norm));
  }
  switch (type) {
    case DataType::kFloat32:
      for (size_t i = 0; i < dim; ++i) {
        const float x = v[i] * scale;
        std::memcpy(dst + 4 * i, &x, 4);
      }
      break;
    case DataType::kFloat16:
      for (size_t i = 0; i < dim; ++i) {
        const float x = v[i] * scale;
        if (std::fabs(x) > 65504.0f) {
          return Status::InvalidArgument(where + "element " + std::to_string(i) +
                                         " overflows float16");
        }
        const uint16_t h = index::FloatToHalf(x);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
    case DataType::kUint8:
      for (size_t i = 0; i < dim; ++i) {
        VECTORD_RETURN_IF_ERROR(check_int(i, 0, 255));
        dst[i] = static_cast<uint8_t>(v[i]);
      }
      break;
    case DataType::kInt8:
      for (size_t i = 0; i < dim; ++i) {
        VECTORD_RETURN_IF_ERROR(check_int(i, -128, 127));
        dst[i] = static_cast<uint8_t>(static_cast<int8_t>(v[i]));
      }
      break;
  }
  return Status::OK();
}

void DecodeElements(const uint8_t* p, uint32_t dim, DataType type, float* v) {
  for (uint32_t i = 0; i < dim; ++i) {
    switch (type) {
      case DataType::kFloat32:
        std::memcpy(&v[i], p + 4 * i, 4);
        break;
      case DataType::kFloat16: {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        v[i] = index::HalfToFloat(h);
        break;
      }
      case DataType::kUint8:
        v[i] = p[i];
        break;
      case DataType::kInt8:
        v[i] = static_cast<int8_t>(p[i]);
        break;
    }
  }
}

Status CollectionImpl::EncodeVector(size_t point_index, const std::vector<float>& v,
                                    std::vector<uint8_t>* out) const {
  const std::string where = "point " + std::to_string(point_index) + ": ";
  if (v.size() != vdim_) {
    return Status::InvalidArgument(where + "vector has " + std::to_string(v.size()) +
                                   " dimensions, collection '" + name_ + "' expects " +
                                   std::to_string(vdim_));
  }
  const size_t base = out->size();
  out->resize(base + row_bytes_);
  return EncodeElements(where + "vector ", v.data(), vdim_, vtype_, vdist_ == Distance::kCosine,
                        out->data() + base);
}

Result<std::vector<float>> CollectionImpl::DecodeRow(InternalId row) const {
  std::vector<float> v(vdim_);
  std::vector<uint8_t> buf;
  const uint8_t* p;
  if (row < ram_base_) {
    buf.resize(row_bytes_);
    VECTORD_RETURN_IF_ERROR(reader_->Read(row, 1, buf.data()));
    p = buf.data();
  } else {
    p = vectors_.data() + (uint64_t{row} - ram_base_) * row_bytes_;
  }
  DecodeElements(p, vdim_, vtype_, v.data());
  return v;
}

Status CollectionImpl::FillVector(InternalId row, std::optional<std::vector<float>>* v,
                                  uint32_t* count) const {
  if (!config_.multivector) {
    VECTORD_ASSIGN_OR_RETURN(*v, DecodeRow(row));
    *count = 0;
    return Status::OK();
  }
  const storage::TokenSpan& sp = token_spans_[row];
  v->emplace(size_t{sp.count} * config_.dim);
  if (!config_.on_disk) {
    DecodeTokens(storage::TokenStore::RecordVectors(token_ram_.data() + sp.offset -
                                                    storage::TokenStore::kHeaderBytes),
                 sp.count, (*v)->data());
  } else {
    std::vector<uint8_t> bytes;
    std::vector<uint64_t> offs;
    VECTORD_RETURN_IF_ERROR(tokens_->ReadSets(&sp, &row, 1, &bytes, &offs));
    DecodeTokens(bytes.data(), sp.count, (*v)->data());
  }
  *count = token_spans_[row].count;
  return Status::OK();
}

Result<uint64_t> CollectionImpl::Upsert(std::vector<PointStruct> points, bool wait) {
  // Validate and encode everything before touching anything: a bad batch changes nothing.
  // Duplicate ids in one batch: the last one wins, as in Qdrant.
  std::vector<uint8_t> bytes;
  bytes.reserve(points.size() * row_bytes_);
  std::unordered_map<PointId, size_t, PointIdHash> last;
  last.reserve(points.size());
  // Multi-vector collections: each point's token vectors as stored (its FDE is made below).
  std::vector<std::vector<uint8_t>> token_bytes(config_.multivector ? points.size() : 0);
  for (size_t i = 0; i < points.size(); ++i) {
    const Json& p = points[i].payload;
    if (!p.is_null() && !p.is_object()) {
      return Status::InvalidArgument("point " + std::to_string(i) +
                                     ": payload must be a JSON object or null");
    }
    if (config_.multivector) {
      VECTORD_RETURN_IF_ERROR(EncodeTokens(i, points[i], &token_bytes[i]));
    } else if (points[i].vector_count != 0) {
      return Status::InvalidArgument("point " + std::to_string(i) + ": collection '" + name_ +
                                     "' holds single vectors, got a list of vectors");
    } else {
      VECTORD_RETURN_IF_ERROR(EncodeVector(i, points[i].vector, &bytes));
    }
    last[points[i].id] = i;
  }
  std::vector<size_t> keep;
  keep.reserve(last.size());
  for (size_t i = 0; i < points.size(); ++i) {
    if (last[points[i].id] == i) keep.push_back(i);
  }
  if (keep.size() != points.size() && !config_.multivector) {
    std::vector<uint8_t> packed(keep.size() * row_bytes_);
    for (size_t j = 0; j < keep.size(); ++j) {
      std::memcpy(&packed[j * row_bytes_], &bytes[keep[j] * row_bytes_], row_bytes_);
    }
    bytes.swap(packed);
  }

  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  if (keep.empty()) return ++op_seq_;
  const uint64_t first = file_->rows();
  if (first + keep.size() >= kInvalidInternalId) {
    return Status::FailedPrecondition("collection '" + name_ + "' is full (2^32 rows)");
  }
  // Multi-vector: the kept points' FDEs (the vector file's rows) and their token sets.
  MultiBatch mb;
  if (config_.multivector) {
    VECTORD_RETURN_IF_ERROR(PrepareMulti(token_bytes, keep, &mb));
    bytes.swap(mb.fde_bytes);
    VECTORD_RETURN_IF_ERROR(tokens_->Append(mb.tokens.data(), mb.counts, &mb.spans,
                                            config_.on_disk ? nullptr : &mb.records));
  }
  const uint64_t token_end = tokens_ ? tokens_->data_size() : 0;
  auto undo = [&](Status s) {
    (void)file_->Truncate(first);
    if (tokens_) (void)tokens_->Truncate(first, mb.spans.empty() ? token_end : mb.spans[0].offset);
    return s;
  };
  {
    Status s = file_->Append(bytes.data(), keep.size());
    if (!s.ok()) return undo(s);
  }
  if (SyncOn(wait)) {
    Status s = file_->Sync();
    if (s.ok() && tokens_) s = tokens_->Sync();
    if (!s.ok()) return undo(s);
  }
  storage::MetaBatch batch(cid_);
  if (mb.encoder) {
    // The first batch fixed the MUVERA SimHash centre: stored in the catalog with this commit.
    Json cat = CatalogJson();
    cat["muvera_center"] = mb.center;
    batch.PutCollectionConfig(cat.dump());
  }
  std::vector<InternalId> old_rows(keep.size(), kInvalidInternalId);
  {
    std::shared_lock l(mu_);
    for (size_t j = 0; j < keep.size(); ++j) {
      const PointStruct& p = points[keep[j]];
      const InternalId row = static_cast<InternalId>(first + j);
      auto it = id_to_row_.find(p.id);
      if (it != id_to_row_.end()) {
        old_rows[j] = it->second;
        batch.UnmapRow(it->second);
        batch.Tombstone(it->second);
        batch.DeletePayload(it->second);
      }
      batch.MapId(p.id, row);
      batch.PutPayload(row, p.payload);
    }
  }
  batch.SetRows(first + keep.size());
  Status s = store_->Commit(batch, SyncOn(wait));
  if (!s.ok()) return undo(s);

  // Durable: apply to the in-RAM state.
  std::unique_lock l(mu_);
  rows_ = first + keep.size();
  vectors_.append(bytes.data(), bytes.size());
  if (config_.multivector) {
    token_spans_.insert(token_spans_.end(), mb.spans.begin(), mb.spans.end());
    token_ram_.append(mb.records.data(), mb.records.size());
    if (token_codes_) token_codes_->Append(mb.counts.data(), mb.counts.size(), mb.int8_rows.data());
    AppendFdePq(mb, keep.size());
    if (mb.encoder) {
      fde_ = std::move(mb.encoder);
      muvera_center_ = std::move(mb.center);
    }
  }
  live_bits_.resize((rows_ + 63) / 64, 0);
  row_to_id_.resize(rows_);
  payloads_.resize(rows_);
  for (size_t j = 0; j < keep.size(); ++j) {
    PointStruct& p = points[keep[j]];
    const InternalId row = static_cast<InternalId>(first + j);
    if (old_rows[j] != kInvalidInternalId) {
      const InternalId old = old_rows[j];
      live_bits_[old >> 6] &= ~(uint64_t{1} << (old & 63));
      live_.remove(old);
      if (!payloads_[old].is_null()) indexes_.Erase(old, payloads_[old]);
      payloads_[old] = Json();
    }
    live_bits_[row >> 6] |= uint64_t{1} << (row & 63);
    live_.add(row);
    id_to_row_[p.id] = row;
    row_to_id_[row] = p.id;
    if (p.payload.is_object() && !p.payload.empty()) {
      indexes_.Insert(row, p.payload);
      payloads_[row] = std::move(p.payload);
    }
  }
  l.unlock();
  if (config_.multivector) MaybeTrainFdePq();
  MaybeStartBuild();
  return ++op_seq_;
}

Roaring CollectionImpl::SelectRows(const Filter& filter) const {
  index::FilterContext ctx;
  ctx.payload = [this](InternalId r) -> const Json* {
    return payloads_[r].is_null() ? nullptr : &payloads_[r];
  };
  ctx.point_id = [this](InternalId r) { return row_to_id_[r]; };
  ctx.lookup = [this](const PointId& id) -> std::optional<InternalId> {
    auto it = id_to_row_.find(id);
    if (it == id_to_row_.end()) return std::nullopt;
    return it->second;
  };
  ctx.indexes = &indexes_;
  return index::Select(&filter, live_, ctx);
}

Result<std::vector<InternalId>> CollectionImpl::ResolveRows(const PointSelector& sel) const {
  std::vector<InternalId> rows;
  if (sel.filter) {
    Roaring r = SelectRows(*sel.filter);
    rows.resize(r.cardinality());
    r.toUint32Array(rows.data());
    return rows;
  }
  for (const auto& id : sel.ids) {
    auto it = id_to_row_.find(id);
    if (it != id_to_row_.end()) rows.push_back(it->second);
  }
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

Result<uint64_t> CollectionImpl::Delete(const PointSelector& sel, bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  std::vector<InternalId> rows;
  storage::MetaBatch batch(cid_);
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
    for (InternalId r : rows) {
      batch.UnmapId(row_to_id_[r], r);
      batch.Tombstone(r);
      batch.DeletePayload(r);
    }
  }
  if (rows.empty()) return ++op_seq_;
  VECTORD_RETURN_IF_ERROR(store_->Commit(batch, SyncOn(wait)));
  std::unique_lock l(mu_);
  for (InternalId r : rows) {
    id_to_row_.erase(row_to_id_[r]);
    live_bits_[r >> 6] &= ~(uint64_t{1} << (r & 63));
    live_.remove(r);
    if (!payloads_[r].is_null()) indexes_.Erase(r, payloads_[r]);
    payloads_[r] = Json();
  }
  return ++op_seq_;
}

Result<uint64_t> CollectionImpl::CommitPayloads(const std::vector<InternalId>& rows,
                                                std::vector<Json> new_payloads, bool wait) {
  storage::MetaBatch batch(cid_);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (new_payloads[i].is_object() && new_payloads[i].empty()) new_payloads[i] = Json();
    batch.PutPayload(rows[i], new_payloads[i]);
  }
  if (dirty_log_) {
    // Rows the list summaries describe: logged as changed before the change is committed, so that
    // summaries never hide a committed change, also after a restart. (ram_base_ only changes under
    // write_mu_, which is held.)
    std::vector<uint32_t> indexed;
    for (InternalId r : rows) {
      if (r < ram_base_) indexed.push_back(static_cast<uint32_t>(r));
    }
    VECTORD_RETURN_IF_ERROR(dirty_log_->Append(indexed, SyncOn(wait)));
  }
  if (!rows.empty()) VECTORD_RETURN_IF_ERROR(store_->Commit(batch, SyncOn(wait)));
  std::unique_lock l(mu_);
  for (size_t i = 0; i < rows.size(); ++i) {
    const InternalId r = rows[i];
    if (!IsLive(r)) continue;  // cannot happen: writers are serialized
    if (summaries_ && r < ram_base_) summary_dirty_.add(static_cast<uint32_t>(r));
    if (summary_tracking_) summary_pending_dirty_.add(static_cast<uint32_t>(r));
    if (!payloads_[r].is_null()) indexes_.Erase(r, payloads_[r]);
    payloads_[r] = std::move(new_payloads[i]);
    if (!payloads_[r].is_null()) indexes_.Insert(r, payloads_[r]);
  }
  l.unlock();
  MaybeRefreshSummaries();
  return ++op_seq_;
}

namespace {

Status CheckPayloadObject(const Json& payload) {
  if (!payload.is_object()) return Status::InvalidArgument("payload must be a JSON object");
  return Status::OK();
}

}  // namespace

Result<uint64_t> CollectionImpl::SetPayload(const PointSelector& sel, const Json& payload,
                                            const std::optional<std::string>& key, bool wait) {
  VECTORD_RETURN_IF_ERROR(CheckPayloadObject(payload));
  if (key && key->empty()) return Status::InvalidArgument("key must not be empty");
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  std::vector<InternalId> rows;
  std::vector<Json> updated;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
    const auto parts = key ? SplitPath(*key) : std::vector<std::string>{};
    for (InternalId r : rows) {
      Json p = payloads_[r].is_null() ? Json::object() : payloads_[r];
      Json* target = &p;
      if (key) {
        const Json* existing = FindAtPath(p, parts);
        if (!existing || !existing->is_object()) SetAtPath(p, parts, Json::object());
        target = &p;
        for (const auto& part : parts) target = &(*target)[part];
      }
      for (auto it = payload.begin(); it != payload.end(); ++it) (*target)[it.key()] = it.value();
      updated.push_back(std::move(p));
    }
  }
  return CommitPayloads(rows, std::move(updated), wait);
}

Result<uint64_t> CollectionImpl::OverwritePayload(const PointSelector& sel, const Json& payload,
                                                  bool wait) {
  VECTORD_RETURN_IF_ERROR(CheckPayloadObject(payload));
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  std::vector<InternalId> rows;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
  }
  return CommitPayloads(rows, std::vector<Json>(rows.size(), payload), wait);
}

Result<uint64_t> CollectionImpl::DeletePayloadKeys(const PointSelector& sel,
                                                   const std::vector<std::string>& keys,
                                                   bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  std::vector<InternalId> rows;
  std::vector<Json> updated;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
    for (InternalId r : rows) {
      Json p = payloads_[r].is_null() ? Json::object() : payloads_[r];
      for (const auto& k : keys) EraseAtPath(p, SplitPath(k));
      updated.push_back(std::move(p));
    }
  }
  return CommitPayloads(rows, std::move(updated), wait);
}

Result<uint64_t> CollectionImpl::ClearPayload(const PointSelector& sel, bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  std::vector<InternalId> rows;
  {
    std::shared_lock l(mu_);
    VECTORD_ASSIGN_OR_RETURN(rows, ResolveRows(sel));
  }
  return CommitPayloads(rows, std::vector<Json>(rows.size(), Json()), wait);
}

Json CollectionImpl::ProjectPayload(const Json& p, const std::vector<std::string>& include,
                                    const std::vector<std::string>& exclude) const {
  if (p.is_null()) return Json::object();
  if (include.empty() && exclude.empty()) return p;
  Json out;
  if (!include.empty()) {
    out = Json::object();
    for (const auto& k : include) {
      const auto parts = SplitPath(k);
      if (const Json* v = FindAtPath(p, parts)) SetAtPath(out, parts, *v);
    }
  } else {
    out = p;
  }
  for (const auto& k : exclude) EraseAtPath(out, SplitPath(k));
  return out;
}

Result<std::vector<Record>> CollectionImpl::Retrieve(const std::vector<PointId>& ids,
                                                     bool with_payload, bool with_vector) const {
  std::vector<Record> out;
  std::set<PointId> seen;
  std::shared_lock l(mu_);
  for (const auto& id : ids) {
    auto it = id_to_row_.find(id);
    if (it == id_to_row_.end() || !seen.insert(id).second) continue;
    Record r;
    r.id = id;
    if (with_payload) r.payload = ProjectPayload(payloads_[it->second], {}, {});
    if (with_vector) VECTORD_RETURN_IF_ERROR(FillVector(it->second, &r.vector, &r.vector_count));
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<float> CollectionImpl::PrepareQuery(const std::vector<float>& q) const {
  std::vector<float> v = q;
  if (vdist_ == Distance::kCosine) {
    double norm = 0;
    for (float x : v) norm += double{x} * x;
    if (norm > 0) {
      const float s = static_cast<float>(1.0 / std::sqrt(norm));
      for (float& x : v) x *= s;
    }
  }
  return v;
}

std::vector<index::Neighbor> CollectionImpl::SearchRange(const uint8_t* data, uint64_t first,
                                                         uint64_t n, const float* q, size_t k,
                                                         const Roaring* allowed) const {
  if (n == 0) return {};
  // Rows of [first, first + n) that may be returned, shifted to start at 0.
  Roaring range;
  range.addRange(first, first + n);
  range &= allowed ? *allowed : live_;
  std::vector<uint32_t> ids(range.cardinality());
  range.toUint32Array(ids.data());
  for (auto& id : ids) id -= static_cast<uint32_t>(first);
  Roaring shifted(ids.size(), ids.data());
  index::FlatView view{data, n, vdim_, vtype_, vdist_};
  index::RowFilter rf;
  rf.allowed = &shifted;
  auto hits = index::FlatSearch(view, q, k, rf);
  for (auto& h : hits) h.row += static_cast<uint32_t>(first);
  return hits;
}

Result<std::vector<index::Neighbor>> CollectionImpl::ExactSearch(const float* q, size_t k,
                                                                 const Roaring* allowed) const {
  // SSD rows in chunks read through reader_ (checksums verified), then the RAM rows.
  const bool lower = LowerIsBetter(vdist_);
  auto better = [&](const index::Neighbor& a, const index::Neighbor& b) {
    if (a.score != b.score) return lower ? a.score < b.score : a.score > b.score;
    return a.row < b.row;
  };
  std::vector<index::Neighbor> best;
  auto merge = [&](std::vector<index::Neighbor> more) {
    best.insert(best.end(), more.begin(), more.end());
    std::sort(best.begin(), best.end(), better);
    if (best.size() > k) best.resize(k);
  };
  const uint64_t chunk = std::max<uint64_t>(1, (8u << 20) / row_bytes_);
  std::vector<uint8_t> buf;
  for (uint64_t first = 0; first < ram_base_; first += chunk) {
    const uint64_t n = std::min(chunk, ram_base_ - first);
    buf.resize(n * row_bytes_);
    VECTORD_RETURN_IF_ERROR(reader_->Read(first, n, buf.data()));
    merge(SearchRange(buf.data(), first, n, q, k, allowed));
  }
  merge(SearchRange(vectors_.data(), ram_base_, rows_ - ram_base_, q, k, allowed));
  return best;
}

Result<std::vector<index::Neighbor>> CollectionImpl::BruteForceRows(const float* q, size_t k,
                                                                    const Roaring& allowed,
                                                                    uint64_t* scored,
                                                                    uint64_t* pages) const {
  std::vector<uint32_t> rows;
  for (auto it = allowed.begin(); it != allowed.end() && *it < ram_base_; ++it) rows.push_back(*it);
  *scored += rows.size();
  if (rows.empty()) return std::vector<index::Neighbor>();
  std::vector<uint8_t> gathered(rows.size() * row_bytes_), buf;
  if (spann_) {
    // O_DIRECT, all runs of nearby rows in one I/O batch (SpannIndex::ReadRows).
    VECTORD_RETURN_IF_ERROR(spann_->ReadRows(rows, gathered.data(), pages));
  }
  // Without the index (never on the search path): one buffered read per run of rows at most
  // ~4 KiB of records apart.
  const uint64_t gap = std::max<uint64_t>(1, 4096 / (uint64_t{row_bytes_} + 4));
  for (size_t i = spann_ ? rows.size() : 0; i < rows.size();) {
    size_t j = i + 1;
    while (j < rows.size() && rows[j] - rows[j - 1] <= gap && rows[j] - rows[i] < 1024) ++j;
    const uint64_t first = rows[i], n = uint64_t{rows[j - 1]} - first + 1;
    buf.resize(n * row_bytes_);
    VECTORD_RETURN_IF_ERROR(reader_->Read(first, n, buf.data()));
    for (size_t t = i; t < j; ++t) {
      std::memcpy(gathered.data() + t * row_bytes_, buf.data() + (rows[t] - first) * row_bytes_,
                  row_bytes_);
    }
    i = j;
  }
  index::FlatView view{gathered.data(), rows.size(), vdim_, vtype_, vdist_};
  auto hits = index::FlatSearch(view, q, k);
  for (auto& h : hits) h.row = rows[h.row];
  return hits;
}

Result<std::vector<index::Neighbor>> CollectionImpl::CodeScan(const float* q, size_t k,
                                                              const Roaring& allowed,
                                                              const RowCodes& codes, size_t r,
                                                              QueryExplain* ex,
                                                              uint64_t* pages) const {
  std::vector<std::pair<float, uint32_t>> best;  // (code distance, row), smaller is closer
  const auto t0 = std::chrono::steady_clock::now();
  codes.BestRows(q, allowed, ram_base_, r, &best, &ex->code_rows);
  ex->us_codes =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  std::sort(best.begin(), best.end());
  const PlannerCosts& c = DefaultPlannerCosts();
  const size_t first =
      c.code_first_round > 0
          ? std::min(best.size(), static_cast<size_t>(std::ceil(c.code_first_round * k)))
          : best.size();
  auto exact = [&](size_t from, size_t to, size_t kk) -> Result<std::vector<index::Neighbor>> {
    Roaring rows;
    for (size_t i = from; i < to; ++i) rows.add(best[i].second);
    return BruteForceRows(q, kk, rows, &ex->rows_scored, pages);
  };
  // Round 1: exact distances of the best `first` rows (all of them kept).
  VECTORD_ASSIGN_OR_RETURN(auto hits, exact(0, first, first));
  ex->rounds = 1;
  if (first < best.size()) {
    // In the codes' units: squared L2, or the negated inner product.
    const bool lower = LowerIsBetter(vdist_);
    auto units = [&](float score) { return lower ? score * score : -score; };
    std::unordered_map<uint32_t, float> code_of;
    for (size_t i = 0; i < first; ++i) code_of[best[i].second] = best[i].first;
    float under = 0;  // the largest amount by which a code distance fell short of the exact one
    for (const auto& h : hits) under = std::max(under, code_of[h.row] - units(h.score));
    std::sort(hits.begin(), hits.end(), [&](const index::Neighbor& a, const index::Neighbor& b) {
      return units(a.score) < units(b.score);
    });
    const float kth =
        hits.size() >= k ? units(hits[k - 1].score) : std::numeric_limits<float>::infinity();
    const float limit = kth + static_cast<float>(c.code_round_slack) * under;
    size_t end = first;
    while (end < best.size() && best[end].first <= limit) ++end;
    if (end > first) {
      VECTORD_ASSIGN_OR_RETURN(auto more, exact(first, end, k));
      hits.insert(hits.end(), more.begin(), more.end());
      ex->rounds = 2;
    }
  }
  const bool lower = LowerIsBetter(vdist_);
  std::sort(hits.begin(), hits.end(), [&](const index::Neighbor& a, const index::Neighbor& b) {
    if (a.score != b.score) return lower ? a.score < b.score : a.score > b.score;
    return a.row < b.row;
  });
  if (hits.size() > k) hits.resize(k);
  return hits;
}

Result<std::vector<ScoredPoint>> CollectionImpl::Search(const SearchRequest& req) const {
  return SearchWithExplain(req, nullptr);
}

namespace {
// Above this many matching rows changed since the list summaries were built, a filtered search
// does not use the summaries (it would score them all exactly).
constexpr uint64_t kMaxDirtyMatches = 4096;
// Up to this many matching rows, the planner gets the exact number of vector file pages they
// occupy (rows of a filter correlated with insertion order share pages).
constexpr uint64_t kCountPagesMatches = 16384;
}  // namespace

Result<std::vector<ScoredPoint>> CollectionImpl::SearchWithExplain(const SearchRequest& req,
                                                                   QueryExplain* explain) const {
  std::vector<float> q;
  if (config_.multivector) {
    VECTORD_ASSIGN_OR_RETURN(q, PrepareMultiQuery(req));
  } else if (req.vector_count != 0) {
    return Status::InvalidArgument("collection '" + name_ +
                                   "' holds single vectors: the query must be one vector, not a "
                                   "list of vectors");
  }
  if (!config_.multivector) {
    if (req.vector.size() != vdim_) {
      return Status::InvalidArgument("query vector has " + std::to_string(req.vector.size()) +
                                     " dimensions, collection '" + name_ + "' expects " +
                                     std::to_string(vdim_));
    }
    for (size_t i = 0; i < req.vector.size(); ++i) {
      if (!std::isfinite(req.vector[i])) {
        return Status::InvalidArgument("query vector element " + std::to_string(i) +
                                       " is not a finite number");
      }
    }
    q = PrepareQuery(req.vector);
  }
  QueryExplain local;
  QueryExplain* ex = explain != nullptr ? explain : &local;
  *ex = QueryExplain();
  const size_t k = req.offset + req.limit;
  std::vector<ScoredPoint> out;
  if (req.limit == 0) return out;
  std::shared_lock l(mu_);
  using SteadyClock = std::chrono::steady_clock;
  const auto t0 = SteadyClock::now();
  std::optional<Roaring> allowed;
  if (req.filter) {
    allowed = SelectRows(*req.filter);
    ex->filtered = true;
    ex->count_source =
        FilterNeedsPayloadScan(*req.filter, indexes_) ? "payload_scan" : "payload_index";
  }
  const auto t1 = SteadyClock::now();
  ex->us_select = std::chrono::duration<double, std::micro>(t1 - t0).count();
  const Roaring* allowed_ptr = allowed ? &*allowed : nullptr;
  const uint64_t live = live_.cardinality();
  ex->matches = allowed ? allowed->cardinality() : live;
  ex->selectivity = live > 0 ? static_cast<double>(ex->matches) / static_cast<double>(live) : 0;
  std::vector<index::Neighbor> hits;
  if (config_.multivector) {
    VECTORD_ASSIGN_OR_RETURN(hits, SearchMultiRows(q, k, req, allowed_ptr, ex));
  } else {
    VECTORD_ASSIGN_OR_RETURN(hits, SearchVectors(q.data(), k, req, allowed_ptr, ex));
  }
  RecordSearchPlan(ex->plan);
  ex->us_search = std::chrono::duration<double, std::micro>(SteadyClock::now() - t1).count();
  // Chamfer is a similarity; single vectors follow their distance.
  const bool lower_better = !config_.multivector && LowerIsBetter(vdist_);
  for (size_t i = req.offset; i < hits.size(); ++i) {
    const auto& h = hits[i];
    if (req.score_threshold &&
        (lower_better ? h.score > *req.score_threshold : h.score < *req.score_threshold)) {
      break;
    }
    ScoredPoint sp;
    sp.id = row_to_id_[h.row];
    sp.version = h.row;
    sp.score = h.score;
    if (req.with_payload) {
      sp.payload = ProjectPayload(payloads_[h.row], req.payload_include, req.payload_exclude);
    }
    if (req.with_vector) VECTORD_RETURN_IF_ERROR(FillVector(h.row, &sp.vector, &sp.vector_count));
    out.push_back(std::move(sp));
  }
  return out;
}

Result<std::vector<index::Neighbor>> CollectionImpl::SearchVectors(const float* qp, size_t k,
                                                                   const SearchRequest& req,
                                                                   const Roaring* allowed_ptr,
                                                                   QueryExplain* ex) const {
  const std::span<const float> q(qp, vdim_);
  const bool lower = LowerIsBetter(vdist_);
  auto better = [&](const index::Neighbor& a, const index::Neighbor& b) {
    if (a.score != b.score) return lower ? a.score < b.score : a.score > b.score;
    return a.row < b.row;
  };
  // Adds the exact top-k of the in-RAM delta rows to `hits`.
  auto merge_delta = [&](std::vector<index::Neighbor>* hits) {
    auto delta =
        SearchRange(vectors_.data(), ram_base_, rows_ - ram_base_, q.data(), k, allowed_ptr);
    Roaring range;
    range.addRange(ram_base_, rows_);
    ex->rows_scored += (range & (allowed_ptr ? *allowed_ptr : live_)).cardinality();
    hits->insert(hits->end(), delta.begin(), delta.end());
    std::sort(hits->begin(), hits->end(), better);
    if (hits->size() > k) hits->resize(k);
  };
  std::vector<index::Neighbor> hits;
  if (ram_base_ == 0) {
    // Everything in RAM: one exact scan.
    ex->plan = SearchPlan::kExactRam;
    ex->rows_scored = ex->matches;
    index::FlatView view{vectors_.data(), rows_, vdim_, vtype_, vdist_};
    index::RowFilter rf;
    if (allowed_ptr) {
      rf.allowed = allowed_ptr;
    } else {
      rf.live_bits = live_bits_.data();
    }
    hits = index::FlatSearch(view, q.data(), k, rf);
  } else if (req.exact || !spann_) {
    ex->plan = SearchPlan::kExact;
    ex->rows_scored = ex->matches;
    VECTORD_ASSIGN_OR_RETURN(hits, ExactSearch(q.data(), k, allowed_ptr));
  } else {
    // SPANN over the indexed rows + exact over the in-RAM delta, merged. With a filter the
    // planner (src/query_planner.h) picks how the SPANN rows are searched.
    const SpannConfig& sc = *config_.spann;
    SpannSearchParams sp;
    sp.nprobe = req.spann_nprobe.value_or(sc.nprobe);
    sp.eps = req.spann_eps.value_or(sc.eps);
    sp.rerank = req.spann_rerank.value_or(sc.rerank);
    index::RowFilter rf;
    if (allowed_ptr) {
      rf.allowed = allowed_ptr;
    } else {
      rf.live_bits = live_bits_.data();
    }
    sp.filter = &rf;
    SpannSearchStats st;
    if (!allowed_ptr) {
      ex->plan = SearchPlan::kUnfiltered;
      VECTORD_ASSIGN_OR_RETURN(hits, spann_->Search(q.data(), static_cast<uint32_t>(k), sp, &st));
    } else {
      PlanInput in;
      in.matches = allowed_ptr->rank(ram_base_ - 1);
      in.indexed_live = live_.rank(ram_base_ - 1);
      in.k = static_cast<uint32_t>(k);
      in.nprobe = sp.nprobe;
      in.mean_list_entries = spann_->MeanListEntries();
      in.mean_list_pages = spann_->MeanListPages();
      in.num_lists = spann_->num_lists();
      const RowCodes* row_codes = spann_->row_codes();
      in.row_codes = row_codes != nullptr && row_codes->rows() >= ram_base_;
      // Vector file pages brute force would read: counted when the matches are few enough to
      // walk (a few ns each), else estimated by the planner.
      const uint64_t rec = uint64_t{row_bytes_} + 4;
      in.file_pages = (storage::VectorFile::RecordOffset(ram_base_, row_bytes_) + 4095) / 4096;
      if (in.matches <= kCountPagesMatches) {
        uint64_t last = ~uint64_t{0};
        for (auto it = allowed_ptr->begin(); it != allowed_ptr->end() && *it < ram_base_; ++it) {
          const uint64_t off = storage::VectorFile::RecordOffset(*it, row_bytes_);
          const uint64_t first_page = off / 4096, end_page = (off + rec - 1) / 4096;
          in.match_pages += end_page - (last == first_page ? first_page : first_page - 1);
          last = end_page;
        }
      }
      // Lists the summaries leave for this filter; the matching rows changed since the summaries
      // were built are scored exactly beside them (too many: search without summaries).
      // Not worth computing where no list is read whatever they say: brute force cheaper than
      // any SPANN read, or the wide pool (s >= 0.5, which does not skip lists).
      std::optional<Roaring> cand_lists;
      Roaring dirty_matches;
      const PlannerCosts& costs = DefaultPlannerCosts();
      const PlanChoice pre = ChoosePlan(in);
      const bool worth = ForcedSearchPlan() == SearchPlan::kSpannFiltered ||
                         (pre.selectivity < costs.wide_pool_selectivity &&
                          !(pre.plan == SearchPlan::kBruteForce &&
                            pre.est_brute_us <= costs.spann_fixed_us + 2 * costs.list_us));
      if (summaries_ && worth) {
        cand_lists = summaries_->Candidates(*req.filter);
        if (cand_lists && !summary_dirty_.isEmpty()) {
          dirty_matches = *allowed_ptr & summary_dirty_;
          if (dirty_matches.cardinality() > kMaxDirtyMatches) {
            cand_lists.reset();
            dirty_matches = Roaring();
          }
        }
      }
      if (cand_lists) {
        in.summaries = true;
        in.candidate_lists = static_cast<uint32_t>(cand_lists->cardinality());
        ex->candidate_lists = in.candidate_lists;
      } else {
        ex->candidate_lists = in.num_lists;
      }
      PlanChoice choice = ChoosePlan(in);
      if (auto forced = ForcedSearchPlan()) {
        choice.plan = *forced;
        if (choice.first_lists == 0) choice.first_lists = std::max(in.nprobe, choice.est_lists);
        if (choice.max_lists == 0) choice.max_lists = in.num_lists;
        if (choice.pool_factor == 1 && *forced == SearchPlan::kSpannWidePool) {
          choice.first_lists = sp.nprobe;
        }
        if (*forced == SearchPlan::kCodeScan && !in.row_codes)
          choice.plan = SearchPlan::kBruteForce;
      }
      ex->plan = choice.plan;
      ex->est_brute_us = choice.est_brute_us;
      ex->est_spann_us = choice.est_spann_us;
      ex->est_code_us = choice.est_code_us;
      const size_t want = std::min<uint64_t>(k, in.matches);
      if (choice.plan == SearchPlan::kSpannFiltered) {
        SpannAdaptiveParams ap;
        ap.first_lists = choice.first_lists;
        ap.max_lists = choice.max_lists;
        ap.check_lists = choice.check_lists;
        ap.distance_stop = true;
        ap.distance_slack = static_cast<float>(DefaultPlannerCosts().distance_slack);
        ap.candidate_lists = cand_lists ? &*cand_lists : nullptr;
        ap.batch_distance_round = DefaultPlannerCosts().batch_distance_round;
        SpannAdaptiveStats as;
        VECTORD_ASSIGN_OR_RETURN(
            hits, spann_->SearchAdaptive(q.data(), static_cast<uint32_t>(k), sp, ap, &st, &as));
        ex->rounds = as.rounds;
        if (!dirty_matches.isEmpty()) {
          // Changed rows the skipped lists may hold: exact distances, merged (a row found twice has
          // the same exact score).
          VECTORD_ASSIGN_OR_RETURN(auto extra, BruteForceRows(q.data(), k, dirty_matches,
                                                              &ex->rows_scored, &st.pages_read));
          hits.insert(hits.end(), extra.begin(), extra.end());
          std::sort(hits.begin(), hits.end(), better);
          hits.erase(std::unique(hits.begin(), hits.end(),
                                 [](const index::Neighbor& a, const index::Neighbor& b) {
                                   return a.row == b.row;
                                 }),
                     hits.end());
          if (hits.size() > k) hits.resize(k);
        }
      } else if (choice.plan == SearchPlan::kSpannWidePool) {
        sp.nprobe = std::max(sp.nprobe, choice.first_lists);
        sp.eps = 0;  // no pruning: the matches of the wider pool may lie in farther lists
        sp.rerank = static_cast<uint32_t>(std::ceil(sp.rerank * choice.pool_factor));
        VECTORD_ASSIGN_OR_RETURN(hits, spann_->Search(q.data(), static_cast<uint32_t>(k), sp, &st));
        ex->rounds = 1;
      } else if (choice.plan == SearchPlan::kCodeScan) {
        // Every matching row scored from its code in RAM; the best R re-ranked with exact
        // distances read in one O_DIRECT batch.
        VECTORD_ASSIGN_OR_RETURN(
            hits, CodeScan(q.data(), k, *allowed_ptr, *row_codes,
                           std::max<size_t>(choice.code_rerank, want), ex, &st.pages_read));
      }
      if (choice.plan == SearchPlan::kBruteForce || hits.size() < want) {
        // Brute force, or the SPANN plans found fewer than k matches: finish exactly.
        ex->fallback = choice.plan != SearchPlan::kBruteForce;
        VECTORD_ASSIGN_OR_RETURN(
            hits, BruteForceRows(q.data(), k, *allowed_ptr, &ex->rows_scored, &st.pages_read));
      }
    }
    ex->lists_probed = st.lists_probed;
    ex->pages_read = st.pages_read;
    merge_delta(&hits);
  }
  return hits;
}

Result<std::vector<std::vector<ScoredPoint>>> CollectionImpl::SearchBatch(
    const std::vector<SearchRequest>& reqs) const {
  std::vector<Result<std::vector<ScoredPoint>>> results(reqs.size(), Status::Internal("not run"));
  pool_->ParallelFor(reqs.size(), [&](size_t i) { results[i] = Search(reqs[i]); });
  std::vector<std::vector<ScoredPoint>> out;
  out.reserve(reqs.size());
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) {
      return results[i].status().WithContext("search " + std::to_string(i));
    }
    out.push_back(std::move(results[i]).value());
  }
  return out;
}

Result<ScrollResult> CollectionImpl::Scroll(const ScrollRequest& req) const {
  ScrollResult out;
  std::shared_lock l(mu_);
  auto it = req.offset ? id_to_row_.lower_bound(*req.offset) : id_to_row_.begin();
  std::optional<Roaring> allowed;
  if (req.filter) allowed = SelectRows(*req.filter);
  for (; it != id_to_row_.end(); ++it) {
    if (allowed && !allowed->contains(it->second)) continue;
    if (out.points.size() == req.limit) {
      out.next_page_offset = it->first;
      break;
    }
    Record r;
    r.id = it->first;
    if (req.with_payload) {
      r.payload = ProjectPayload(payloads_[it->second], req.payload_include, req.payload_exclude);
    }
    if (req.with_vector) {
      VECTORD_RETURN_IF_ERROR(FillVector(it->second, &r.vector, &r.vector_count));
    }
    out.points.push_back(std::move(r));
  }
  return out;
}

Result<uint64_t> CollectionImpl::Count(const FilterPtr& filter) const {
  std::shared_lock l(mu_);
  if (!filter) return uint64_t{id_to_row_.size()};
  return SelectRows(*filter).cardinality();
}

Result<uint64_t> CollectionImpl::CreatePayloadIndex(const std::string& field,
                                                    PayloadSchemaType type, bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  {
    // Building reads payloads only; writers are excluded by write_mu_, readers may go on...
    // but the index set itself is read by searches, so build under the exclusive lock.
    std::unique_lock l(mu_);
    if (const auto* existing = indexes_.Get(field)) {
      if (existing->type() == type) return ++op_seq_;
      indexes_.Drop(field);
    }
    VECTORD_RETURN_IF_ERROR(indexes_.Create(field, type, [&](const auto& emit) {
      for (InternalId r : live_) {
        if (!payloads_[r].is_null()) emit(r, payloads_[r]);
      }
    }));
  }
  storage::MetaBatch batch(cid_);
  batch.PutCollectionConfig(CatalogJson().dump());
  Status s = store_->Commit(batch, true);
  if (!s.ok()) {
    std::unique_lock l(mu_);
    indexes_.Drop(field);
    return s;
  }
  MaybeBuildRowCodes();  // a first payload index on an indexed collection: filters will come
  return ++op_seq_;
}

Result<uint64_t> CollectionImpl::DeletePayloadIndex(const std::string& field, bool wait) {
  std::lock_guard<std::mutex> wl(write_mu_);
  VECTORD_RETURN_IF_ERROR(CheckWritable());
  {
    std::unique_lock l(mu_);
    if (!indexes_.Drop(field)) {
      return Status::NotFound("collection '" + name_ + "' has no payload index on '" + field + "'");
    }
  }
  storage::MetaBatch batch(cid_);
  batch.PutCollectionConfig(CatalogJson().dump());
  VECTORD_RETURN_IF_ERROR(store_->Commit(batch, true));
  return ++op_seq_;
}

}  // namespace vectord
