// Database: opens the data directory (meta/ = RocksDB, collections/<id>/ = vector files),
// restores every collection in the catalog, and creates/drops collections atomically.
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include "src/collection/collection.h"
#include "src/collection/collection_config.h"
#include "src/jobs/job_scheduler.h"
#include "src/jobs/thread_pool.h"
#include "storage/metadata_store.h"
#include "vectord/database.h"

namespace vectord {
namespace {

namespace fs = std::filesystem;

Status ValidateName(const std::string& name) {
  if (name.empty() || name.size() > 255) {
    return Status::InvalidArgument("collection name must be 1 to 255 characters long");
  }
  if (name == "." || name == "..") {
    return Status::InvalidArgument("collection name '" + name + "' is not allowed");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) {
      return Status::InvalidArgument("collection name '" + name +
                                     "' may contain only letters, digits, '_', '-' and '.'");
    }
  }
  return Status::OK();
}

Status ValidateConfig(const CollectionConfig& c) {
  if (c.dim < 1 || c.dim > 65536) {
    return Status::InvalidArgument("vectors.size must be between 1 and 65536, got " +
                                   std::to_string(c.dim));
  }
  if (c.distance == Distance::kCosine &&
      (c.datatype == DataType::kUint8 || c.datatype == DataType::kInt8)) {
    return Status::InvalidArgument(
        "Cosine distance needs datatype float32 or float16 (vectors are stored normalized); "
        "use Dot or Euclid with uint8/int8");
  }
  if (c.distance == Distance::kManhattan) {
    return Status::InvalidArgument("Manhattan distance is not supported yet");
  }
  return Status::OK();
}

class DatabaseImpl : public Database {
 public:
  Status Init(const DatabaseOptions& options) {
    options_ = options;
    std::error_code ec;
    fs::create_directories(options.data_dir + "/collections", ec);
    if (ec) {
      return Status::IOError("cannot create data directory '" + options.data_dir +
                             "': " + ec.message());
    }
    VECTORD_ASSIGN_OR_RETURN(store_, storage::MetadataStore::Open(options.data_dir + "/meta",
                                                                  options.block_cache_bytes));
    pool_ = std::make_shared<ThreadPool>(options.search_threads);
    // Background work of every collection: index builds and updates, codes, summaries,
    // checkpoints (src/jobs/job_scheduler.h). Two threads at least, a quarter of the cores at most
    // beyond that, so that searches keep most of the machine.
    env_.store = store_;
    env_.pool = pool_;
    env_.jobs =
        std::make_shared<JobScheduler>(std::max(2u, std::thread::hardware_concurrency() / 4));
    std::vector<std::pair<uint32_t, std::string>> entries;
    VECTORD_RETURN_IF_ERROR(store_->ListCollections([&](uint32_t cid, const std::string& json) {
      entries.emplace_back(cid, json);
      return Status::OK();
    }));
    for (const auto& [cid, text] : entries) {
      Json j = Json::parse(text, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("name") || !j.contains("config")) {
        return Status::Corruption("catalog entry " + std::to_string(cid) + " is not valid JSON");
      }
      VECTORD_ASSIGN_OR_RETURN(CollectionConfig config, CollectionConfigFromJson(j["config"]));
      const std::string name = j["name"].get<std::string>();
      VECTORD_ASSIGN_OR_RETURN(
          auto coll, CollectionImpl::Open(name, cid, CollectionDir(cid), config, j, env_));
      collections_[name] = std::move(coll);
    }
    RemoveOrphanDirs();
    return Status::OK();
  }

  ~DatabaseImpl() override {
    for (auto& [name, c] : collections_) c->Close();
    collections_.clear();
    env_ = CollectionEnv();
    pool_.reset();
    store_.reset();
  }

  Status CreateCollection(const std::string& name, const CollectionConfig& config) override {
    VECTORD_RETURN_IF_ERROR(ValidateName(name));
    VECTORD_RETURN_IF_ERROR(ValidateConfig(config));
    std::lock_guard<std::mutex> ddl(ddl_mu_);
    {
      std::shared_lock l(mu_);
      if (collections_.count(name)) {
        return Status::AlreadyExists("collection '" + name + "' already exists");
      }
    }
    VECTORD_ASSIGN_OR_RETURN(uint32_t cid, store_->AllocateCollectionId());
    const std::string dir = CollectionDir(cid);
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) return Status::IOError("cannot create '" + dir + "': " + ec.message());
    VECTORD_ASSIGN_OR_RETURN(auto coll,
                             CollectionImpl::Open(name, cid, dir, config, Json::object(), env_));
    storage::MetaBatch batch(cid);
    batch.SetRows(0);
    batch.PutCollectionConfig(coll->CatalogJson().dump());
    Status s = store_->Commit(batch, true);
    if (!s.ok()) {
      coll.reset();
      fs::remove_all(dir, ec);
      return s;
    }
    std::unique_lock l(mu_);
    collections_[name] = std::move(coll);
    return Status::OK();
  }

  Status DropCollection(const std::string& name) override {
    std::lock_guard<std::mutex> ddl(ddl_mu_);
    std::shared_ptr<CollectionImpl> coll;
    {
      std::shared_lock l(mu_);
      auto it = collections_.find(name);
      if (it == collections_.end()) return Status::NotFound("collection '" + name + "' not found");
      coll = it->second;
    }
    coll->MarkDropped();  // no writer touches its keys after this
    VECTORD_RETURN_IF_ERROR(store_->DropCollection(coll->cid()));
    {
      std::unique_lock l(mu_);
      collections_.erase(name);
    }
    // The catalog no longer names it; its files are garbage now (removed again at open if a
    // crash interrupts this). In-flight readers keep their shared_ptr and its open fd.
    coll->Close();  // in-flight readers finish first; later calls are refused
    std::error_code ec;
    fs::remove_all(coll->dir(), ec);
    return Status::OK();
  }

  Result<std::shared_ptr<Collection>> GetCollection(const std::string& name) const override {
    std::shared_lock l(mu_);
    auto it = collections_.find(name);
    if (it == collections_.end()) return Status::NotFound("collection '" + name + "' not found");
    return std::shared_ptr<Collection>(it->second);
  }

  std::vector<std::string> ListCollections() const override {
    std::shared_lock l(mu_);
    std::vector<std::string> names;
    for (const auto& [n, c] : collections_) names.push_back(n);
    return names;
  }

 private:
  std::string CollectionDir(uint32_t cid) const {
    return options_.data_dir + "/collections/" + std::to_string(cid);
  }

  void RemoveOrphanDirs() {
    std::set<std::string> live;
    for (const auto& [n, c] : collections_) live.insert(fs::path(c->dir()).filename().string());
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(options_.data_dir + "/collections", ec)) {
      if (!live.count(e.path().filename().string())) {
        std::cerr << "vectord: removing orphaned collection directory " << e.path() << "\n";
        fs::remove_all(e.path(), ec);
      }
    }
  }

  DatabaseOptions options_;
  // Shared with the collections: one still held by a caller after the database is gone keeps them.
  std::shared_ptr<storage::MetadataStore> store_;
  std::shared_ptr<ThreadPool> pool_;
  CollectionEnv env_;  // what every collection shares: store_, pool_, the job scheduler
  std::mutex ddl_mu_;  // serializes create/drop
  mutable std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<CollectionImpl>> collections_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<Database>> Database::Open(const DatabaseOptions& options) {
  auto db = std::make_unique<DatabaseImpl>();
  VECTORD_RETURN_IF_ERROR(db->Init(options));
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace vectord
