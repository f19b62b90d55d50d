// End-to-end tests of the `vectord` executable: starts the real binary on a loopback port with a
// temporary data dir and drives every route over raw sockets, checking results against a simple
// in-test model, every bad-input case (status, message, nothing changed), limits, slow clients,
// keep-alive, graceful shutdown and restart.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  Json json() const { return Json::parse(body, nullptr, false); }
  std::string error() const {
    Json j = json();
    if (j.is_object() && j.contains("status") && j["status"].is_object()) {
      return j["status"].value("error", "");
    }
    return "";
  }
};

// A tiny blocking HTTP/1.1 client over one TCP connection.
class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      close(fd_);
      fd_ = -1;
    }
    int one = 1;
    if (fd_ >= 0) setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return fd_ >= 0; }

  bool SendRaw(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += n;
    }
    return true;
  }

  // Reads one response; status 0 if the connection closed first or nothing came within timeout.
  Reply ReadReply(int timeout_ms = 20000) {
    Reply r;
    size_t header_end;
    while ((header_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(timeout_ms)) return r;
    }
    std::string head = buf_.substr(0, header_end);
    buf_.erase(0, header_end + 4);
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    r.status = std::atoi(status_line.substr(9, 3).c_str());
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
      pos = e + 2;
    }
    size_t len = std::stoul(r.headers.count("content-length") ? r.headers["content-length"] : "0");
    while (buf_.size() < len) {
      if (!Fill(timeout_ms)) return Reply{};
    }
    r.body = buf_.substr(0, len);
    buf_.erase(0, len);
    return r;
  }

  Reply Request(const std::string& method, const std::string& target, const std::string& body = "",
                const std::string& extra_headers = "") {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers;
    if (!body.empty() || method == "POST" || method == "PUT") {
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n";
    }
    req += "\r\n" + body;
    if (!SendRaw(req)) return Reply{};
    return ReadReply();
  }

  // True if the server closed the connection (read returns 0 or error) within timeout_ms.
  bool ClosedWithin(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char c[256];
    return recv(fd_, c, sizeof(c), 0) <= 0;
  }

 private:
  bool Fill(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char tmp[65536];
    ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, n);
    return true;
  }
  int fd_ = -1;
  std::string buf_;
};

// The vectord process.
class Server {
 public:
  ~Server() { Kill(); }

  void Start(const std::string& data_dir, std::vector<std::string> extra = {}) {
    int pipefd[2];
    ASSERT_EQ(pipe(pipefd), 0);
    std::vector<std::string> args = {std::string(VECTORD_BIN_DIR) + "/vectord",
                                     "--data-dir",
                                     data_dir,
                                     "--host",
                                     "127.0.0.1",
                                     "--port",
                                     "0",
                                     "--io-threads",
                                     "2",
                                     "--compute-threads",
                                     "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      dup2(pipefd[1], 2);
      close(pipefd[0]);
      close(pipefd[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(pipefd[1]);
    err_fd_ = pipefd[0];
    // Wait for "listening on 127.0.0.1:PORT".
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      ReadStderr(200);
      size_t p = log_.find("listening on 127.0.0.1:");
      if (p != std::string::npos) {
        size_t nl = log_.find_first_of(", \n", p + 23);
        if (nl != std::string::npos) {
          port_ = std::atoi(log_.substr(p + 23, nl - p - 23).c_str());
          return;
        }
      }
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL() << "vectord exited at start: " << log_;
      }
    }
    FAIL() << "vectord did not start: " << log_;
  }

  void Signal(int sig) { kill(pid_, sig); }
  // SIGTERM and wait; returns the exit status (or -1).
  int Stop(bool send_signal = true) {
    if (pid_ < 0) return -1;
    if (send_signal) kill(pid_, SIGTERM);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    ReadStderr(100);
    close(err_fd_);
    err_fd_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (err_fd_ >= 0) close(err_fd_);
    err_fd_ = -1;
  }
  int port() const { return port_; }
  const std::string& log() const { return log_; }

 private:
  void ReadStderr(int timeout_ms) {
    pollfd p{err_fd_, POLLIN, 0};
    while (poll(&p, 1, timeout_ms) > 0) {
      char tmp[4096];
      ssize_t n = read(err_fd_, tmp, sizeof(tmp));
      if (n <= 0) break;
      log_.append(tmp, n);
      timeout_ms = 10;
    }
  }
  pid_t pid_ = -1;
  int err_fd_ = -1;
  int port_ = 0;
  std::string log_;
};

// The server's vectord_http_requests_in_flight gauge (the /metrics request reading it included),
// or -1 if it could not be read.
int InFlight(Client& c) {
  Reply r = c.Request("GET", "/metrics");
  const std::string key = "\nvectord_http_requests_in_flight ";
  size_t p = r.body.find(key);
  if (r.status != 200 || p == std::string::npos) return -1;
  return std::atoi(r.body.c_str() + p + key.size());
}

std::string TempDir(const std::string& tag) {
  std::string d =
      (fs::temp_directory_path() / ("vectord_http_" + tag + "_" + std::to_string(getpid())))
          .string();
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

constexpr int kDim = 8;

struct ModelPoint {
  std::vector<float> vec;
  Json payload;
};

// One server per test on its own data directory, so that no test depends on another's state or
// on the order the tests run in.
class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    server_ = std::make_unique<Server>();
    server_->Start(dir_, {"--max-body-bytes", "1048576", "--read-timeout-s", "2"});
  }
  void TearDown() override {
    EXPECT_EQ(server_->Stop(), 0) << server_->log();
    server_.reset();
    fs::remove_all(dir_);
  }
  // Stops the server (SIGTERM) and starts it again on the same data with other flags.
  void Restart(std::vector<std::string> flags) {
    ASSERT_EQ(server_->Stop(), 0) << server_->log();
    server_ = std::make_unique<Server>();
    server_->Start(dir_, std::move(flags));
  }
  int port() const { return server_->port(); }

  // A collection with n random points (ids 0..n-1), payload {"i": id, "group": id % 3,
  // "tag": "t<id%2>"}, kept in `model`.
  std::map<uint64_t, ModelPoint> MakeCollection(const std::string& name, int n, uint32_t seed) {
    Client c(port());
    c.Request("DELETE", "/collections/" + name);
    Reply r =
        c.Request("PUT", "/collections/" + name, R"({"vectors":{"size":8,"distance":"Euclid"}})");
    EXPECT_EQ(r.status, 200) << r.body;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(-1, 1);
    std::map<uint64_t, ModelPoint> model;
    Json pts = Json::array();
    for (int i = 0; i < n; ++i) {
      ModelPoint p;
      for (int k = 0; k < kDim; ++k) p.vec.push_back(d(rng));
      p.payload = {{"i", i}, {"group", i % 3}, {"tag", "t" + std::to_string(i % 2)}};
      pts.push_back({{"id", i}, {"vector", p.vec}, {"payload", p.payload}});
      model[i] = p;
    }
    r = c.Request("PUT", "/collections/" + name + "/points?wait=true",
                  Json{{"points", pts}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["result"]["status"], "completed");
    return model;
  }

  static uint64_t PointsCount(Client& c, const std::string& name) {
    Reply r = c.Request("GET", "/collections/" + name);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json()["result"]["points_count"].get<uint64_t>();
  }

  static std::vector<uint64_t> BruteForce(const std::map<uint64_t, ModelPoint>& model,
                                          const std::vector<float>& q, size_t k, int group = -1) {
    std::vector<std::pair<float, uint64_t>> d;
    for (const auto& [id, p] : model) {
      if (group >= 0 && p.payload["group"] != group) continue;
      float s = 0;
      for (int i = 0; i < kDim; ++i) s += (p.vec[i] - q[i]) * (p.vec[i] - q[i]);
      d.emplace_back(s, id);
    }
    std::sort(d.begin(), d.end());
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < std::min(k, d.size()); ++i) ids.push_back(d[i].second);
    return ids;
  }

  static std::vector<uint64_t> Ids(const Json& points) {
    std::vector<uint64_t> ids;
    for (const auto& p : points) ids.push_back(p["id"].get<uint64_t>());
    return ids;
  }

  std::string dir_;
  std::unique_ptr<Server> server_;
};

TEST_F(HttpServerTest, ServiceEndpoints) {
  Client c(port());
  Reply r = c.Request("GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["title"], "vectord - vector search engine");
  EXPECT_TRUE(r.json().contains("version"));
  EXPECT_EQ(c.Request("GET", "/healthz").status, 200);
  EXPECT_EQ(c.Request("GET", "/livez").status, 200);
  EXPECT_EQ(c.Request("GET", "/readyz").status, 200);
  r = c.Request("GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("vectord_http_requests_total{route=\"GET /readyz\",status=\"200\"} 1"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("vectord_http_request_duration_seconds_bucket"), std::string::npos);
  EXPECT_EQ(r.headers["content-type"].rfind("text/plain", 0), 0u);
}

TEST_F(HttpServerTest, CollectionLifecycle) {
  Client c(port());
  Reply r = c.Request("PUT", "/collections/life",
                      R"({"vectors":{"size":4,"distance":"Cosine","on_disk":true},
                          "hnsw_config":{"m":32},"optimizers_config":{"indexing_threshold":1},
                          "wal_config":{"wal_capacity_mb":8},"shard_number":1})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["result"], true);
  EXPECT_EQ(r.json()["status"], "ok");
  EXPECT_TRUE(r.json()["time"].is_number());
  r = c.Request("PUT", "/collections/life", R"({"vectors":{"size":4,"distance":"Cosine"}})");
  EXPECT_EQ(r.status, 409);
  EXPECT_NE(r.error().find("already exists"), std::string::npos) << r.body;
  r = c.Request("GET", "/collections/life");
  ASSERT_EQ(r.status, 200) << r.body;
  Json info = r.json()["result"];
  EXPECT_EQ(info["status"], "green");
  EXPECT_EQ(info["optimizer_status"], "ok");
  EXPECT_EQ(info["points_count"], 0);
  EXPECT_EQ(info["config"]["params"]["vectors"]["size"], 4);
  EXPECT_EQ(info["config"]["params"]["vectors"]["distance"], "Cosine");
  EXPECT_EQ(info["config"]["params"]["vectors"]["on_disk"], true);
  EXPECT_EQ(info["config"]["hnsw_config"]["m"], 32);
  EXPECT_EQ(info["config"]["optimizer_config"]["indexing_threshold"], 1);
  EXPECT_EQ(info["config"]["wal_config"]["wal_capacity_mb"], 8);
  EXPECT_TRUE(info["payload_schema"].is_object());
  r = c.Request("GET", "/collections");
  bool found = false;
  Json list = r.json()["result"]["collections"];
  for (const auto& col : list) found |= col["name"] == "life";
  EXPECT_TRUE(found) << r.body;
  EXPECT_EQ(c.Request("GET", "/collections/life/exists").json()["result"]["exists"], true);
  EXPECT_EQ(c.Request("DELETE", "/collections/life").status, 200);
  EXPECT_EQ(c.Request("GET", "/collections/life/exists").json()["result"]["exists"], false);
  r = c.Request("GET", "/collections/life");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.error().find("'life'"), std::string::npos) << r.body;
  EXPECT_EQ(c.Request("DELETE", "/collections/life").status, 404);

  // Bad creates.
  struct Case {
    std::string body;
    int status;
    std::string text;
  };
  std::vector<Case> cases = {
      {R"({"vectors":{"a":{"size":4,"distance":"Dot"}}})", 400, "named vectors"},
      {R"({"vectors":{"size":4,"distance":"Hamming"}})", 400, "Hamming"},
      {R"({"vectors":{"size":0,"distance":"Dot"}})", 400, "vectors.size"},
      {R"({"vectors":{"size":-3,"distance":"Dot"}})", 400, "vectors.size"},
      {R"({"vectors":{"size":100000,"distance":"Dot"}})", 400, "65536"},
      {R"({"vectors":{"size":4}})", 400, "distance"},
      {R"({"vectors":{"size":4,"distance":"Dot","datatype":"int3"}})", 400, "int3"},
      {R"({"vectors":{"size":4,"distance":"Dot"},"colour":1})", 400, "colour"},
      {R"({"vectors":{"size":4,"distance":"Dot","sise":1}})", 400, "sise"},
      {R"({})", 400, "vectors"},
      {"", 400, "empty"},
      {R"({"vectors":)", 400, "byte 11"},
  };
  for (const auto& cs : cases) {
    r = c.Request("PUT", "/collections/bad", cs.body);
    EXPECT_EQ(r.status, cs.status) << cs.body << " -> " << r.body;
    EXPECT_NE(r.error().find(cs.text), std::string::npos) << cs.body << " -> " << r.body;
  }
  EXPECT_EQ(c.Request("GET", "/collections/bad/exists").json()["result"]["exists"], false);
  r = c.Request("PUT", "/collections/bad%2F..", R"({"vectors":{"size":4,"distance":"Dot"}})");
  EXPECT_EQ(r.status, 400) << r.body;
}

TEST_F(HttpServerTest, UpsertRetrieveSearchAgainstModel) {
  auto model = MakeCollection("docs", 300, 7);
  Client c(port());
  EXPECT_EQ(PointsCount(c, "docs"), 300u);

  // Batch form and UUID ids.
  const std::string uuid = "550E8400-E29B-41D4-A716-446655440000";
  Reply r = c.Request("PUT", "/collections/docs/points",
                      R"({"batch":{"ids":[1000,")" + uuid + R"("],"vectors":[[0,0,0,0,0,0,0,0.5],
                           [9,9,9,9,9,9,9,9]],"payloads":[{"k":"a"},null]}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["result"]["status"], "acknowledged");
  EXPECT_EQ(PointsCount(c, "docs"), 302u);
  model[1000] = {{0, 0, 0, 0, 0, 0, 0, 0.5f}, {{"k", "a"}}};

  r = c.Request("GET", "/collections/docs/points/" + uuid);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["result"]["id"], "550e8400-e29b-41d4-a716-446655440000");
  EXPECT_EQ(r.json()["result"]["vector"][0], 9.0);
  r = c.Request("GET", "/collections/docs/points/5");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["result"]["payload"], model[5].payload);
  for (int k = 0; k < kDim; ++k) {
    EXPECT_FLOAT_EQ(r.json()["result"]["vector"][k].get<float>(), model[5].vec[k]);
  }
  r = c.Request("GET", "/collections/docs/points/123456");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.error().find("123456"), std::string::npos);
  // Remove the far UUID point again so that the model stays simple.
  r = c.Request("POST", "/collections/docs/points/delete?wait=true",
                R"({"points":[")" + uuid + R"("]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["result"]["status"], "completed");

  // Retrieve with payload selectors.
  r = c.Request("POST", "/collections/docs/points",
                R"({"ids":[3, 4, 999999],"with_payload":["i"],"with_vector":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  Json got = r.json()["result"];
  ASSERT_EQ(got.size(), 2u);
  for (const auto& p : got) {
    EXPECT_EQ(p["payload"], Json({{"i", p["id"]}}));
    EXPECT_EQ(p["vector"].size(), size_t{kDim});
  }
  r = c.Request("POST", "/collections/docs/points",
                R"({"ids":[3],"with_payload":{"exclude":["i"]}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["result"][0]["payload"], Json({{"group", 0}, {"tag", "t1"}}));
  EXPECT_FALSE(r.json()["result"][0].contains("vector"));

  // Search, query, batches against brute force.
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> d(-1, 1);
  for (int t = 0; t < 10; ++t) {
    std::vector<float> q(kDim);
    for (auto& x : q) x = d(rng);
    auto want = BruteForce(model, q, 10);
    r = c.Request("POST", "/collections/docs/points/search",
                  Json{{"vector", q}, {"limit", 10}, {"with_payload", true}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Ids(r.json()["result"]), want);
    const Json first = r.json()["result"][0];
    EXPECT_TRUE(first.contains("version"));
    EXPECT_EQ(first["payload"], model[want[0]].payload);
    float dist = 0;
    for (int k = 0; k < kDim; ++k) dist += std::pow(model[want[0]].vec[k] - q[k], 2.0f);
    EXPECT_NEAR(first["score"].get<float>(), std::sqrt(dist), 1e-4);

    r = c.Request("POST", "/collections/docs/points/query",
                  Json{{"query", q}, {"limit", 5}, {"offset", 2}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Ids(r.json()["result"]["points"]),
              std::vector<uint64_t>(want.begin() + 2, want.begin() + 7));
    EXPECT_FALSE(r.json()["result"]["points"][0].contains("payload"));

    // Filtered query (nearest form) against the filtered model.
    r = c.Request("POST", "/collections/docs/points/query",
                  Json{{"query", {{"nearest", q}}},
                       {"filter", {{"must", {{{"key", "group"}, {"match", {{"value", 1}}}}}}}},
                       {"limit", 10},
                       {"using", nullptr},
                       {"with_vector", true}}
                      .dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Ids(r.json()["result"]["points"]), BruteForce(model, q, 10, 1));
    EXPECT_EQ(r.json()["result"]["points"][0]["vector"].size(), size_t{kDim});
  }
  // Query by point id: that point's vector.
  r = c.Request("POST", "/collections/docs/points/query", R"({"query": 17, "limit": 3})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Ids(r.json()["result"]["points"]), BruteForce(model, model[17].vec, 3));
  r = c.Request("POST", "/collections/docs/points/query", R"({"query": 777777})");
  EXPECT_EQ(r.status, 404) << r.body;
  // No query: points in id order.
  r = c.Request("POST", "/collections/docs/points/query", R"({"limit": 3})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Ids(r.json()["result"]["points"]), (std::vector<uint64_t>{0, 1, 2}));

  Json searches = Json::array();
  Json queries = Json::array();
  std::vector<std::vector<uint64_t>> wants;
  for (int t = 0; t < 4; ++t) {
    std::vector<float> q(kDim);
    for (auto& x : q) x = d(rng);
    wants.push_back(BruteForce(model, q, 4));
    searches.push_back({{"vector", q}, {"limit", 4}});
    queries.push_back({{"query", q}, {"limit", 4}});
  }
  r = c.Request("POST", "/collections/docs/points/search/batch",
                Json{{"searches", searches}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json()["result"].size(), 4u);
  for (int t = 0; t < 4; ++t) EXPECT_EQ(Ids(r.json()["result"][t]), wants[t]);
  r = c.Request("POST", "/collections/docs/points/query/batch", Json{{"searches", queries}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  for (int t = 0; t < 4; ++t) EXPECT_EQ(Ids(r.json()["result"][t]["points"]), wants[t]);

  // Scroll through everything in pages.
  std::vector<uint64_t> seen;
  Json offset = nullptr;
  for (int page = 0; page < 100; ++page) {
    Json req = {{"limit", 64}, {"with_payload", false}};
    if (!offset.is_null()) req["offset"] = offset;
    r = c.Request("POST", "/collections/docs/points/scroll", req.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    Json page_points = r.json()["result"]["points"];
    for (const auto& p : page_points) {
      seen.push_back(p["id"].get<uint64_t>());
      EXPECT_FALSE(p.contains("payload"));
    }
    offset = r.json()["result"]["next_page_offset"];
    if (offset.is_null()) break;
  }
  std::vector<uint64_t> all;
  for (const auto& [id, p] : model) all.push_back(id);
  EXPECT_EQ(seen, all);
  r = c.Request("POST", "/collections/docs/points/scroll", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["result"]["points"].size(), 10u);
  EXPECT_TRUE(r.json()["result"]["points"][0].contains("payload"));

  // Count.
  r = c.Request("POST", "/collections/docs/points/count",
                R"({"filter":{"must":[{"key":"tag","match":{"value":"t0"}}]},"exact":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["result"]["count"], 150);
  r = c.Request("POST", "/collections/docs/points/count", "{}");
  EXPECT_EQ(r.json()["result"]["count"], model.size());
}

TEST_F(HttpServerTest, PayloadsIndexesAndDeletes) {
  auto model = MakeCollection("pay", 30, 3);
  Client c(port());
  auto payload_of = [&](int id) {
    Reply r = c.Request("GET", "/collections/pay/points/" + std::to_string(id));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json()["result"]["payload"];
  };
  Reply r = c.Request("POST", "/collections/pay/points/payload?wait=true",
                      R"({"payload":{"color":"red"},"points":[1,2]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(payload_of(1)["color"], "red");
  EXPECT_EQ(payload_of(1)["i"], 1);
  EXPECT_FALSE(payload_of(3).contains("color"));
  r = c.Request("POST", "/collections/pay/points/payload",
                R"({"payload":{"deep":1},"points":[1],"key":"nest"})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = c.Request("PUT", "/collections/pay/points/payload",
                R"({"payload":{"only":true},"filter":{"must":[{"key":"i","match":{"value":4}}]}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(payload_of(4), Json({{"only", true}}));
  r = c.Request("POST", "/collections/pay/points/payload/delete",
                R"({"keys":["color","tag"],"points":[2]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(payload_of(2), Json({{"i", 2}, {"group", 2}}));
  r = c.Request("POST", "/collections/pay/points/payload/clear", R"({"points":[5]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(payload_of(5).empty());

  r = c.Request("PUT", "/collections/pay/index?wait=true",
                R"({"field_name":"group","field_schema":"integer"})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = c.Request("PUT", "/collections/pay/index",
                R"({"field_name":"tag","field_schema":{"type":"keyword"}})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = c.Request("GET", "/collections/pay");
  Json schema = r.json()["result"]["payload_schema"];
  EXPECT_EQ(schema["group"]["data_type"], "integer") << r.body;
  EXPECT_EQ(schema["tag"]["data_type"], "keyword") << r.body;
  EXPECT_TRUE(schema["group"]["points"].is_number());
  r = c.Request("PUT", "/collections/pay/index", R"({"field_name":"g","field_schema":"geo"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.error().find("geo"), std::string::npos);
  r = c.Request("DELETE", "/collections/pay/index/tag");
  ASSERT_EQ(r.status, 200) << r.body;
  r = c.Request("GET", "/collections/pay");
  EXPECT_FALSE(r.json()["result"]["payload_schema"].contains("tag")) << r.body;

  // Delete by filter (group == 0: ids 0,3,...,27 → 10 points) and by id.
  r = c.Request("POST", "/collections/pay/points/delete?wait=true",
                R"({"filter":{"must":[{"key":"group","match":{"value":0}}]}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(PointsCount(c, "pay"), 20u);
  r = c.Request("POST", "/collections/pay/points/delete", R"({"points":[1, 2]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(PointsCount(c, "pay"), 18u);
  EXPECT_EQ(c.Request("GET", "/collections/pay/points/1").status, 404);
}

TEST_F(HttpServerTest, BadInputIsRejectedAndChangesNothing) {
  auto model = MakeCollection("strict", 20, 5);
  Client c(port());
  const std::string v8 = "[0,0,0,0,0,0,0,0]";
  struct Case {
    std::string method, target, body;
    int status;
    std::string text;
  };
  std::string deep(100000, '[');
  std::vector<Case> cases = {
      {"PUT", "/collections/strict/points", R"({"points":[{"id":1,"vector":[1,2]}]})", 400,
       "vector has 2 dimensions, collection 'strict' expects 8"},
      {"PUT", "/collections/strict/points",
       R"({"points":[{"id":50,"vector":)" + v8 + R"(},{"id":51,"vector":[1,2,3,4,5,6,7]}]})", 400,
       "point 1 (id 51): vector has 7 dimensions"},
      {"PUT", "/collections/strict/points", R"({"points":[{"id":-1,"vector":)" + v8 + "}]}", 400,
       "negative"},
      {"PUT", "/collections/strict/points", R"({"points":[{"id":1.5,"vector":)" + v8 + "}]}", 400,
       "not an integer"},
      {"PUT", "/collections/strict/points",
       R"({"points":[{"id":"not-a-uuid","vector":)" + v8 + "}]}", 400, "not-a-uuid"},
      {"PUT", "/collections/strict/points", R"({"points":[{"id":1,"vector":[NaN,0,0,0,0,0,0,0]}]})",
       400, "NaN"},
      {"PUT", "/collections/strict/points",
       R"({"points":[{"id":1,"vector":[1e999,0,0,0,0,0,0,0]}]})", 400, "out of range"},
      {"PUT", "/collections/strict/points",
       R"({"points":[{"id":1,"vector":[1e39,0,0,0,0,0,0,0]}]})", 400, "float32"},
      {"PUT", "/collections/strict/points", R"({"points":[{"id":1,"vector":["x",0,0,0,0,0,0,0]}]})",
       400, "points[0].vector"},
      {"PUT", "/collections/strict/points", R"({"points":[{"id":1,"vector":{"a":[1]}}]})", 400,
       "named"},
      {"PUT", "/collections/strict/points",
       R"({"points":[{"id":1,"vector":)" + v8 + R"(,"payload":[1]}]})", 400, "payload"},
      {"PUT", "/collections/strict/points",
       R"({"points":[{"id":1,"vector":)" + v8 + R"(,"colour":1}]})", 400, "colour"},
      {"PUT", "/collections/strict/points", R"({"pointz":[]})", 400, "pointz"},
      {"PUT", "/collections/strict/points", R"({"points":[{"id":1}]})", 400, "vector"},
      {"PUT", "/collections/strict/points", R"({"batch":{"ids":[1,2],"vectors":[)" + v8 + "]}}",
       400, "2 ids but 1 vectors"},
      {"PUT", "/collections/strict/points",
       "{\"points\":[{\"id\":1,\"vector\":" + v8 + ",\"payload\":{\"s\":\"\xff\xfe\"}}]}", 400,
       "UTF-8"},
      {"PUT", "/collections/strict/points", "{\"points\": [", 400, "byte 12"},
      {"PUT", "/collections/strict/points",
       R"({"points":[{"id":1,"vector":)" + v8 + R"(,"payload":{"a":)" + deep, 400, "nesting"},
      {"POST", "/collections/strict/points/search", deep, 400, "nesting"},
      {"POST", "/collections/strict/points/search", R"({"vector":[1,2,3]})", 400,
       "vector: vector has 3 dimensions, collection 'strict' expects 8"},
      {"POST", "/collections/strict/points/search", R"({"vector":)" + v8 + R"(,"limit":20000})",
       400, "limit: 20000 exceeds the maximum 10000"},
      {"POST", "/collections/strict/points/search", R"({"vector":)" + v8 + R"(,"limit":-1})", 400,
       "limit"},
      {"POST", "/collections/strict/points/search", R"({"vector":)" + v8 + R"(,"limt":1})", 400,
       "limt"},
      {"POST", "/collections/strict/points/search",
       R"({"vector":)" + v8 + R"(,"filter":{"must":[{"key":"a","match":{"valu":1}}]}})", 400,
       "filter"},
      {"POST", "/collections/strict/points/query", R"({"query":"zzz"})", 400, "zzz"},
      {"POST", "/collections/strict/points/query", R"({"query":[1,2],"using":"image"})", 400,
       "named vectors"},
      {"POST", "/collections/strict/points/query", R"({"query":{"recommend":{}}})", 400,
       "recommend"},
      {"POST", "/collections/strict/points/query", R"({"query":)" + v8 + R"(,"with_payload":7})",
       400, "with_payload"},
      {"POST", "/collections/strict/points/query/batch", R"({"searches":[{"query":[1]}]})", 400,
       "searches[0].query: vector has 1 dimensions"},
      {"POST", "/collections/strict/points/scroll", R"({"offset":-5})", 400, "offset"},
      {"POST", "/collections/strict/points/count", R"({"exact":"yes"})", 400, "exact"},
      {"POST", "/collections/strict/points/delete", R"({})", 400, "points"},
      {"POST", "/collections/strict/points/delete", R"({"points":[1],"filter":{}})", 400,
       "not both"},
      {"POST", "/collections/strict/points/payload", R"({"payload":5,"points":[1]})", 400,
       "payload"},
      {"POST", "/collections/strict/points/payload/delete", R"({"keys":[1],"points":[1]})", 400,
       "keys[0]"},
      {"POST", "/collections/strict/points", R"({"ids":"1"})", 400, "ids"},
      {"POST", "/collections/strict/points", "[1,2]", 400, "object"},
      {"POST", "/collections/strict/points", R"({"ids":[1]} x)", 400, "after the JSON value"},
      {"PUT", "/collections/nope/points", R"({"points":[]})", 404, "'nope'"},
      {"POST", "/collections/nope/points/search", R"({"vector":[1]})", 404, "'nope'"},
      {"GET", "/collections/strict/points/-4", "", 400, "-4"},
      {"GET", "/nowhere", "", 404, "/nowhere"},
      {"DELETE", "/collections/strict/points/search", "", 405, "POST"},
  };
  for (const auto& cs : cases) {
    Reply r = c.Request(cs.method, cs.target, cs.body);
    EXPECT_EQ(r.status, cs.status)
        << cs.method << " " << cs.target << " " << cs.body.substr(0, 200) << " -> " << r.body;
    EXPECT_NE(r.error().find(cs.text), std::string::npos)
        << cs.body.substr(0, 200) << " -> " << r.body;
    EXPECT_EQ(r.headers["content-type"], "application/json");
  }
  Reply r = c.Request("PUT", "/collections/strict/points/search");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "POST");
  // Nothing changed: same count, same point 1.
  EXPECT_EQ(PointsCount(c, "strict"), 20u);
  r = c.Request("GET", "/collections/strict/points/1");
  ASSERT_EQ(r.status, 200);
  for (int k = 0; k < kDim; ++k) {
    EXPECT_FLOAT_EQ(r.json()["result"]["vector"][k].get<float>(), model[1].vec[k]);
  }
  EXPECT_EQ(r.json()["result"]["payload"], model[1].payload);
  EXPECT_EQ(c.Request("GET", "/collections/strict/points/50").status, 404);
}

TEST_F(HttpServerTest, ProtocolLimits) {
  // Oversized body: refused from Content-Length without reading it.
  {
    Client c(port());
    ASSERT_TRUE(
        c.SendRaw("PUT /collections/x/points HTTP/1.1\r\nHost: a\r\nContent-Length: "
                  "2000000\r\n\r\n"));
    Reply r = c.ReadReply();
    EXPECT_EQ(r.status, 413) << r.body;
    EXPECT_NE(r.error().find("1048576"), std::string::npos);
  }
  {
    Client c(port());
    Reply r = c.Request("PUT", "/collections/x/points", std::string(1100000, ' '));
    EXPECT_EQ(r.status, 413) << r.body;
  }
  {
    Client c(port());
    Reply r = c.Request("GET", "/collections/" + std::string(9000, 'a'));
    EXPECT_EQ(r.status, 414) << r.body;
  }
  {
    Client c(port());
    ASSERT_TRUE(c.SendRaw("GARBAGE\r\n\r\n"));
    EXPECT_EQ(c.ReadReply().status, 400);
  }
  {
    // Expect: 100-continue gets its interim response, then the real one.
    Client c(port());
    ASSERT_TRUE(
        c.SendRaw("POST /collections/none/points/count HTTP/1.1\r\nHost: a\r\n"
                  "Content-Length: 2\r\nExpect: 100-continue\r\n\r\n"));
    Reply r = c.ReadReply();
    EXPECT_EQ(r.status, 100);
    ASSERT_TRUE(c.SendRaw("{}"));
    r = c.ReadReply();
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_NE(r.error().find("'none'"), std::string::npos) << r.body;
  }
}

TEST_F(HttpServerTest, KeepAliveAndSlowClients) {
  MakeCollection("ka", 10, 11);
  {
    Client c(port());
    for (int i = 0; i < 50; ++i) {
      Reply r = c.Request("POST", "/collections/ka/points/count", "{}");
      ASSERT_EQ(r.status, 200) << i;
      EXPECT_NE(r.headers["connection"], "close");
    }
  }
  // A half-sent request does not block other clients: with a read timeout far longer than any
  // client waits (60 s against ReadReply's 20 s), 20 other requests are answered while the slow
  // one is still open, and the slow one is answered once its body is complete.
  Restart({"--read-timeout-s", "60"});
  {
    Client slow(port());
    const std::string body = "{\"exact\":true}";
    ASSERT_TRUE(
        slow.SendRaw("POST /collections/ka/points/count HTTP/1.1\r\nHost: a\r\n"
                     "Content-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 5)));
    for (int i = 0; i < 20; ++i) {
      Client other(port());
      Reply r = other.Request("GET", "/collections/ka");
      ASSERT_EQ(r.status, 200) << i;
    }
    ASSERT_TRUE(slow.SendRaw(body.substr(5)));
    Reply r = slow.ReadReply();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["result"]["count"], 10) << r.body;
  }
  // The read timeout closes a stalled connection (1 s here; 30 s is only the test's guard).
  Restart({"--read-timeout-s", "1"});
  {
    Client stalled(port());
    ASSERT_TRUE(
        stalled.SendRaw("POST /collections/ka/points/count HTTP/1.1\r\nHost: a\r\n"
                        "Content-Length: 100\r\n\r\n{\"fil"));
    EXPECT_TRUE(stalled.ClosedWithin(30000));
  }
  // Connection: close is honoured.
  Client once(port());
  Reply r = once.Request("GET", "/healthz", "", "Connection: close\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(once.ClosedWithin(30000));
}

// The server gives freed heap memory back to the OS while requests arrive: with a 0.1 s interval
// the trim counters in /metrics move once requests have come (waited for, not timed).
TEST_F(HttpServerTest, FreedMemoryIsTrimmedWhileRequestsArrive) {
  Restart({"--trim-interval-s", "0.1"});
  MakeCollection("trim", 500, 13);
  Client c(port());
  auto metric = [&](const std::string& name) -> long long {
    Reply r = c.Request("GET", "/metrics");
    const std::string key = "\n" + name + " ";
    size_t p = r.body.find(key);
    return r.status == 200 && p != std::string::npos ? std::atoll(r.body.c_str() + p + key.size())
                                                     : -1;
  };
  EXPECT_GE(metric("vectord_memory_trim_released_bytes_total"), 0);
  long long trims = 0;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       trims < 2 && std::chrono::steady_clock::now() < deadline;) {
    ASSERT_EQ(c.Request("POST", "/collections/trim/points/query",
                        R"({"query":[0,0,0,0,0,0,0,0],"limit":50,"with_payload":true})")
                  .status,
              200);
    trims = metric("vectord_memory_trims_total");
  }
  EXPECT_GE(trims, 2);
  // A bad interval is refused at start, with the reason.
  const std::string cmd = std::string(VECTORD_BIN_DIR) + "/vectord --data-dir " + dir_ +
                          "/other --trim-interval-s -1 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) out.append(buf, n);
  const int status = ::pclose(f);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status << ": " << out;
  EXPECT_NE(out.find("--trim-interval-s must be 0 (never) or a positive number"), std::string::npos)
      << out;
}

TEST(HttpServerRestart, DataSurvivesGracefulRestartAndConfigFile) {
  std::string dir = TempDir("restart");
  std::string cfg = dir + "/vectord.conf";
  {
    FILE* f = fopen(cfg.c_str(), "w");
    fputs("# test config\nmax_body_bytes = 1024\nhost = 127.0.0.1\n", f);
    fclose(f);
  }
  Json pts = Json::array();
  for (int i = 0; i < 50; ++i) {
    pts.push_back({{"id", i}, {"vector", {i, 1.0, 2.0, 3.0}}, {"payload", {{"n", i}}}});
  }
  {
    Server s;
    s.Start(dir + "/data", {"--config", cfg, "--max-body-bytes", "1000000"});
    Client c(s.port());
    ASSERT_EQ(
        c.Request("PUT", "/collections/keep", R"({"vectors":{"size":4,"distance":"Dot"}})").status,
        200);
    Reply r = c.Request("PUT", "/collections/keep/points?wait=true", Json{{"points", pts}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;  // over the file's 1024, under the flag's limit

    // SIGTERM while a request is half received: it is finished and answered, /readyz turns
    // 503, then the server exits 0.
    Json more = Json::array();
    for (int i = 50; i < 100; ++i) {
      more.push_back({{"id", i}, {"vector", {i, 1.0, 2.0, 3.0}}, {"payload", {{"n", i}}}});
    }
    std::string body = Json{{"points", more}}.dump();
    Client slow(s.port());
    ASSERT_TRUE(
        slow.SendRaw("PUT /collections/keep/points?wait=true HTTP/1.1\r\nHost: a\r\n"
                     "Content-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, body.size() / 2)));
    // The half request's header has arrived when the in-flight gauge counts it beside the
    // /metrics request that reads it.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (InFlight(c) < 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    ASSERT_GE(InFlight(c), 2);
    s.Signal(SIGTERM);
    // /readyz turns 503 once the server has taken the signal.
    for (;;) {
      r = c.Request("GET", "/readyz");
      if (r.status != 200 || std::chrono::steady_clock::now() > deadline) break;
    }
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.headers["connection"], "close");
    ASSERT_TRUE(slow.SendRaw(body.substr(body.size() / 2)));
    r = slow.ReadReply();
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["connection"], "close");
    EXPECT_EQ(s.Stop(/*send_signal=*/false), 0);
    EXPECT_NE(s.log().find("stopped"), std::string::npos) << s.log();
  }
  {
    Server s;
    s.Start(dir + "/data", {"--config", cfg});
    Client c(s.port());
    Reply r = c.Request("GET", "/collections/keep");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["result"]["points_count"], 100);
    for (int id : {42, 77}) {
      r = c.Request("GET", "/collections/keep/points/" + std::to_string(id));
      ASSERT_EQ(r.status, 200);
      EXPECT_EQ(r.json()["result"]["payload"]["n"], id);
    }
    // Now the file's limit applies.
    r = c.Request("PUT", "/collections/keep/points", Json{{"points", pts}}.dump());
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(s.Stop(), 0);
  }
  fs::remove_all(dir);
}

}  // namespace

namespace {

// vectord's SPANN extension over HTTP: spann_config on create, the background build seen through
// GET /collections/{c} (status, indexed_vectors_count), params.spann on queries, bad input.
TEST_F(HttpServerTest, SpannConfigBuildAndQueryParams) {
  Client c(port());
  c.Request("DELETE", "/collections/sp");
  Reply r = c.Request("PUT", "/collections/sp",
                      R"({"vectors":{"size":8,"distance":"Euclid"},
                          "spann_config":{"indexing_threshold":3000,"nprobe":8,"layoutt":"full"}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.error().find("spann_config: unknown field 'layoutt'"), std::string::npos) << r.body;
  r = c.Request("PUT", "/collections/sp",
                R"({"vectors":{"size":8,"distance":"Euclid"},
                    "spann_config":{"indexing_threshold":3000,"nprobe":8,"layout":"full"}})");
  ASSERT_EQ(r.status, 200) << r.body;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> d(-1, 1);
  std::map<uint64_t, ModelPoint> model;
  for (int b = 0; b < 4; ++b) {
    Json pts = Json::array();
    for (int i = b * 1000; i < (b + 1) * 1000; ++i) {
      ModelPoint p;
      for (int k = 0; k < kDim; ++k) p.vec.push_back(d(rng));
      p.payload = {{"group", i % 3}};
      pts.push_back({{"id", i}, {"vector", p.vec}, {"payload", p.payload}});
      model[i] = p;
    }
    r = c.Request("PUT", "/collections/sp/points?wait=true", Json{{"points", pts}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  Json info;
  // Waits for the background build (the deadline only guards a hung build).
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
       std::chrono::steady_clock::now() < deadline;) {
    info = c.Request("GET", "/collections/sp").json()["result"];
    if (info["status"] == "green" && info["indexed_vectors_count"].get<uint64_t>() > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(info["status"], "green") << info.dump();
  EXPECT_GE(info["indexed_vectors_count"].get<uint64_t>(), 3000u);
  EXPECT_EQ(info["points_count"], 4000);
  EXPECT_EQ(info["config"]["spann_config"]["indexing_threshold"], 3000);
  EXPECT_EQ(info["config"]["spann_config"]["layout"], "full");

  // Approximate with a wide probe is near-exact; params.exact is exact.
  size_t hits = 0;
  for (int t = 0; t < 20; ++t) {
    std::vector<float> q;
    for (int k = 0; k < kDim; ++k) q.push_back(d(rng));
    const auto truth = BruteForce(model, q, 10);
    r = c.Request("POST", "/collections/sp/points/query",
                  Json{{"query", q}, {"limit", 10}, {"params", {{"exact", true}}}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Ids(r.json()["result"]["points"]), truth);
    r = c.Request(
        "POST", "/collections/sp/points/query",
        Json{{"query", q}, {"limit", 10}, {"params", {{"spann", {{"nprobe", 64}, {"eps", 100}}}}}}
            .dump());
    ASSERT_EQ(r.status, 200) << r.body;
    for (auto id : Ids(r.json()["result"]["points"])) {
      hits += std::count(truth.begin(), truth.end(), id);
    }
  }
  EXPECT_GE(hits, 190u);  // recall@10 >= 0.95
  for (const char* bad : {R"({"nprobe":0})", R"({"eps":-1})", R"({"rerank":"x"})", R"({"k":1})"}) {
    r = c.Request("POST", "/collections/sp/points/query",
                  std::string(R"({"query":[0,0,0,0,0,0,0,0],"params":{"spann":)") + bad + "}}");
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
    EXPECT_NE(r.error().find("params.spann"), std::string::npos) << r.body;
  }
  EXPECT_EQ(c.Request("DELETE", "/collections/sp").status, 200);
}

}  // namespace

TEST_F(HttpServerTest, MultivectorCollection) {
  Client c(port());
  c.Request("DELETE", "/collections/mv");
  // Bad configs first: unknown comparator, distance without inner products, unknown MUVERA field,
  // muvera_config on a single-vector collection.
  for (
      const char* bad :
      {R"({"vectors":{"size":8,"distance":"Dot","multivector_config":{"comparator":"min"}}})",
       R"({"vectors":{"size":8,"distance":"Euclid","multivector_config":{"comparator":"max_sim"}}})",
       R"({"vectors":{"size":8,"distance":"Dot","multivector_config":{"comparator":"max_sim"}},
               "muvera_config":{"k_simm":3}})",
       R"({"vectors":{"size":8,"distance":"Dot","multivector_config":{"comparator":"max_sim"}},
               "muvera_config":{"rerank":-1}})",
       R"({"vectors":{"size":8,"distance":"Dot","multivector_config":{"comparator":"max_sim"}},
               "muvera_config":{"rerank":100001}})",
       R"({"vectors":{"size":8,"distance":"Dot","multivector_config":{"comparator":"max_sim"}},
               "muvera_config":{"candidate_spread":0.5}})",
       R"({"vectors":{"size":8,"distance":"Dot","multivector_config":{"comparator":"max_sim"}},
               "muvera_config":{"candidate_spread":"4"}})",
       R"({"vectors":{"size":8,"distance":"Dot","multivector_config":{"comparator":"max_sim"}},
               "muvera_config":{"fde_pq_max_rows":-1}})",
       R"({"vectors":{"size":8,"distance":"Dot"},"muvera_config":{"k_sim":3}})"}) {
    Reply r = c.Request("PUT", "/collections/mv", bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
  }
  Reply r = c.Request("PUT", "/collections/mv",
                      R"({"vectors":{"size":8,"distance":"Dot",
                                     "multivector_config":{"comparator":"max_sim"}},
                          "muvera_config":{"k_sim":3,"d_proj":4,"r_reps":8,"candidates":40}})");
  ASSERT_EQ(r.status, 200) << r.body;
  Json info = c.Request("GET", "/collections/mv").json()["result"];
  EXPECT_EQ(info["config"]["params"]["vectors"]["multivector_config"]["comparator"], "max_sim");
  EXPECT_EQ(info["config"]["muvera_config"]["k_sim"], 3);
  EXPECT_EQ(info["config"]["muvera_config"]["candidate_spread"], 4.0);
  EXPECT_EQ(info["config"]["muvera_config"]["fde_pq_max_rows"], 200000);
  {
    // The error names the field and its range; nothing is created.
    Reply bad = c.Request("PUT", "/collections/mv2",
                          R"({"vectors":{"size":8,"distance":"Dot",
                                         "multivector_config":{"comparator":"max_sim"}},
                              "muvera_config":{"candidate_spread":0.5}})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("muvera_config.candidate_spread must be a number in [1, 64]"),
              std::string::npos)
        << bad.body;
    EXPECT_EQ(c.Request("GET", "/collections/mv2").status, 404);
    // A multi-vector collection's SPANN index gets the FDE settings the request leaves out, and
    // keeps those it gives.
    Reply ok = c.Request("PUT", "/collections/mv3",
                         R"({"vectors":{"size":8,"distance":"Dot",
                                        "multivector_config":{"comparator":"max_sim"}},
                             "muvera_config":{"k_sim":3,"d_proj":4,"r_reps":8},
                             "spann_config":{"indexing_threshold":100000,"nprobe":16,
                                             "target_list_entries":128}})");
    ASSERT_EQ(ok.status, 200) << ok.body;
    const Json sc = c.Request("GET", "/collections/mv3").json()["result"]["config"]["spann_config"];
    EXPECT_EQ(sc["layout"], "pq4") << sc.dump();
    EXPECT_EQ(sc["pq_m"], 32) << sc.dump();  // FDE dims 8 x 2^3 x 4 = 256, / 8
    EXPECT_EQ(sc["target_list_entries"], 128) << sc.dump();
    EXPECT_EQ(sc["nprobe"], 16) << sc.dump();
    ASSERT_EQ(c.Request("DELETE", "/collections/mv3").status, 200);
  }

  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-1, 1);
  std::uniform_int_distribution<int> nv(1, 6);
  std::map<uint64_t, std::vector<std::vector<float>>> model;
  Json pts = Json::array();
  for (int i = 0; i < 200; ++i) {
    std::vector<std::vector<float>> set(nv(rng));
    for (auto& v : set) {
      for (int k = 0; k < 8; ++k) v.push_back(d(rng));
    }
    model[i] = set;
    pts.push_back({{"id", i}, {"vector", set}, {"payload", {{"g", i % 2}}}});
  }
  r = c.Request("PUT", "/collections/mv/points?wait=true", Json{{"points", pts}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  auto chamfer = [](const std::vector<std::vector<float>>& q,
                    const std::vector<std::vector<float>>& doc) {
    float s = 0;
    for (const auto& a : q) {
      float best = -1e30f;
      for (const auto& b : doc) {
        float ip = 0;
        for (int k = 0; k < 8; ++k) ip += a[k] * b[k];
        best = std::max(best, ip);
      }
      s += best;
    }
    return s;
  };
  for (int t = 0; t < 10; ++t) {
    std::vector<std::vector<float>> q(3);
    for (auto& v : q) {
      for (int k = 0; k < 8; ++k) v.push_back(d(rng));
    }
    std::vector<std::pair<float, uint64_t>> truth;
    for (const auto& [id, set] : model) truth.emplace_back(-chamfer(q, set), id);
    std::sort(truth.begin(), truth.end());
    // Exact Chamfer, and MUVERA with every document as a candidate: both the exact top-5.
    for (const Json& params : {Json{{"exact", true}}, Json{{"muvera", {{"candidates", 200}}}}}) {
      r = c.Request("POST", "/collections/mv/points/query",
                    Json{{"query", q}, {"limit", 5}, {"params", params}}.dump());
      ASSERT_EQ(r.status, 200) << r.body;
      const Json body = r.json();
      const Json& got = body["result"]["points"];
      ASSERT_EQ(got.size(), 5u) << r.body;
      for (size_t i = 0; i < 5; ++i) {
        EXPECT_NEAR(got[i]["score"].get<float>(), -truth[i].first, 1e-4) << params.dump();
      }
    }
    // Two-stage re-rank: all 200 documents scored by the 8-bit Chamfer, the best 20 exactly;
    // explain reports both stages.
    r = c.Request(
        "POST", "/collections/mv/points/query",
        Json{{"query", q},
             {"limit", 5},
             {"params", {{"muvera", {{"candidates", 200}, {"rerank", 20}}}, {"explain", true}}}}
            .dump());
    ASSERT_EQ(r.status, 200) << r.body;
    {
      const Json body = r.json();
      const Json& got = body["result"]["points"];
      ASSERT_EQ(got.size(), 5u) << r.body;
      for (size_t i = 0; i < 5; ++i) {
        EXPECT_NEAR(got[i]["score"].get<float>(), -truth[i].first, 1e-4) << r.body;
      }
      const Json& mv = body["result"]["explain"]["multivector"];
      EXPECT_EQ(mv["int8_docs"], 200) << r.body;
      EXPECT_EQ(mv["chamfer_docs"], 20) << r.body;
      EXPECT_GT(mv["int8_us"].get<double>(), 0.0);
      EXPECT_GT(mv["chamfer_us"].get<double>(), 0.0);
    }
    // /points/search takes the list too (vectord extension), with a filter.
    r = c.Request("POST", "/collections/mv/points/search",
                  Json{{"vector", q},
                       {"limit", 3},
                       {"filter", {{"must", {{{"key", "g"}, {"match", {{"value", 1}}}}}}}},
                       {"with_payload", true}}
                      .dump());
    ASSERT_EQ(r.status, 200) << r.body;
    {
      // 100 documents match: exactly 3 come back, all in group 1, each scored with its exact
      // Chamfer similarity, best first.
      const Json body = r.json();
      const Json& got = body["result"];
      ASSERT_EQ(got.size(), 3u) << r.body;
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i]["payload"]["g"], 1) << r.body;
        const uint64_t id = got[i]["id"].get<uint64_t>();
        EXPECT_EQ(id % 2, 1u) << r.body;
        EXPECT_NEAR(got[i]["score"].get<float>(), chamfer(q, model[id]), 1e-4) << r.body;
        if (i > 0) {
          EXPECT_GE(got[i - 1]["score"].get<float>(), got[i]["score"].get<float>());
        }
      }
    }
  }
  // with_vector gives the list back.
  r = c.Request("POST", "/collections/mv/points", R"({"ids":[7],"with_vector":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json body7 = r.json();
  const Json& v7 = body7["result"][0]["vector"];
  ASSERT_EQ(v7.size(), model[7].size());
  for (size_t j = 0; j < v7.size(); ++j) {
    for (int k = 0; k < 8; ++k) EXPECT_FLOAT_EQ(v7[j][k].get<float>(), model[7][j][k]);
  }
  // Bad input: 400 and nothing changes.
  for (const char* bad :
       {R"({"points":[{"id":500,"vector":[[1,2,3,4,5,6,7,8],[1,2]]}]})",
        R"({"points":[{"id":500,"vector":[1,2,3,4,5,6,7,8]}]})",
        R"({"points":[{"id":500,"vector":[[1,2,3,4,5,6,7]]}]})",
        R"({"points":[{"id":500,"vector":[]}]})", R"({"points":[{"id":500,"vector":[[]]}]})"}) {
    r = c.Request("PUT", "/collections/mv/points?wait=true", bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
  }
  EXPECT_EQ(PointsCount(c, "mv"), 200u);
  for (const char* bad : {R"({"query":[1,2,3,4,5,6,7,8]})", R"({"query":[[1,2,3]]})",
                          R"({"query":[[1,2,3,4,5,6,7,8],[1]]})",
                          R"({"query":[[1,2,3,4,5,6,7,8]],"params":{"muvera":{"candidates":0}}})",
                          R"({"query":[[1,2,3,4,5,6,7,8]],"params":{"muvera":{"rerank":0}}})",
                          R"({"query":[[1,2,3,4,5,6,7,8]],"params":{"muvera":{"rerank":2.5}}})",
                          R"({"query":[[1,2,3,4,5,6,7,8]],"params":{"muvera":{"rerank":"10"}}})",
                          R"({"query":[[1,2,3,4,5,6,7,8]],"params":{"muvera":{"rerank":100001}}})",
                          R"({"query":[[1,2,3,4,5,6,7,8]],"params":{"muvera":{"rescore":10}}})"}) {
    r = c.Request("POST", "/collections/mv/points/query", bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
  }
  r = c.Request("POST", "/collections/mv/points/query",
                R"({"query":[[1,2,3,4,5,6,7,8]],"params":{"muvera":{"rerank":0}}})");
  EXPECT_NE(r.body.find("params.muvera.rerank: expected an integer in [1, 100000], got 0"),
            std::string::npos)
      << r.body;
  // Query by point id uses the point's set: the exact top-5 of point 7's vectors as the query.
  r = c.Request("POST", "/collections/mv/points/query",
                R"({"query":7,"limit":5,"params":{"exact":true}})");
  ASSERT_EQ(r.status, 200) << r.body;
  {
    std::vector<std::pair<float, uint64_t>> truth;
    for (const auto& [id, set] : model) truth.emplace_back(-chamfer(model[7], set), id);
    std::sort(truth.begin(), truth.end());
    const Json body = r.json();
    const Json& got = body["result"]["points"];
    ASSERT_EQ(got.size(), 5u) << r.body;
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_NEAR(got[i]["score"].get<float>(), -truth[i].first, 1e-4) << r.body;
    }
    EXPECT_EQ(got[0]["id"].get<uint64_t>(), truth[0].second) << r.body;
  }
  r = c.Request("POST", "/collections/mv/points/query", R"({"query":9999,"limit":1})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(c.Request("DELETE", "/collections/mv").status, 200);
}
