// End-to-end test of vectorctl against a real vectord: gt on a random base, import (with payloads)
// into a freshly started server, then bench with exact search must reach recall 1.0; server
// errors must make import fail loudly. Skipped when the binaries are not built.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "storage/dataset_io.h"
#include "tests/test_server.h"

namespace vectord {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class VectorctlIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    vectord_ = std::string(VECTORD_BIN_DIR) + "/vectord";
    vectorctl_ = std::string(VECTORD_BIN_DIR) + "/vectorctl";
    if (!fs::exists(vectord_) || !fs::exists(vectorctl_)) {
      GTEST_SKIP() << "vectord or vectorctl not built in " << VECTORD_BIN_DIR;
    }
    dir_ = fs::temp_directory_path() / ("vectorctl_integration_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    StartServer((dir_ / "data").string());
  }
  // Starts vectord on `data` and waits until GET /readyz answers 200 (test_server.h: a free
  // port, tried again if another process takes it first).
  void StartServer(const std::string& data) {
    server_ = std::make_unique<itest::TestServer>(data);
    ASSERT_TRUE(server_->Start());
    port_ = server_->port();
  }
  void StopServer() {
    if (server_ && server_->running()) {
      EXPECT_EQ(server_->Terminate(), 0) << server_->last_exit() << "\n" << server_->LogTail();
    }
    server_.reset();
  }
  void TearDown() override {
    StopServer();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Runs vectorctl with `args`; stdout to `out`, stderr to `err` (paths under dir_).
  int Run(const std::string& args, std::string* out, std::string* err) {
    const std::string o = (dir_ / "out.txt").string(), e = (dir_ / "err.txt").string();
    const int rc = std::system((vectorctl_ + " " + args + " >" + o + " 2>" + e).c_str());
    *out = ReadFile(o);
    *err = ReadFile(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }

  // GET `path` from the server; returns the response body ("" on failure).
  std::string HttpGet(const std::string& path) const {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    std::string resp;
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      if (::write(s, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
        char buf[4096];
        for (ssize_t r; (r = ::read(s, buf, sizeof buf)) > 0;) resp.append(buf, r);
      }
    }
    ::close(s);
    const size_t body = resp.find("\r\n\r\n");
    return body == std::string::npos ? "" : resp.substr(body + 4);
  }

  std::string vectord_, vectorctl_;
  fs::path dir_;
  std::unique_ptr<itest::TestServer> server_;
  int port_ = 0;
};

TEST_F(VectorctlIntegration, GtImportBenchExactRecallIsOne) {
  const uint32_t dim = 16;
  const size_t n = 3000, nq = 50;
  std::mt19937 rng(7);
  std::vector<uint8_t> base(n * dim), queries(nq * dim);
  for (auto& v : base) v = static_cast<uint8_t>(rng() % 256);
  for (auto& v : queries) v = static_cast<uint8_t>(rng() % 256);
  for (auto [path, rows, count] :
       {std::tuple{P("base.u8bin"), &base, n}, std::tuple{P("query.u8bin"), &queries, nq}}) {
    auto w = storage::DatasetWriter::Create(path, dim);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(rows->data(), count).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  {
    std::ofstream f(P("attrs.jsonl"));
    for (size_t i = 0; i < n; ++i) f << "{\"row\": " << i << ", \"tag\": \"t" << i % 7 << "\"}\n";
  }
  std::string out, err;
  ASSERT_EQ(0, Run("gt --base " + P("base.u8bin") + " --query " + P("query.u8bin") +
                       " --k 10 --metric l2 --out " + P("gt.ivecs"),
                   &out, &err))
      << err;
  ASSERT_EQ(0, Run("import --url " + Url() + " --collection it --file " + P("base.u8bin") +
                       " --payload " + P("attrs.jsonl") +
                       " --create --distance Euclid --datatype uint8 --batch 256 --parallel 3 "
                       "--wait",
                   &out, &err))
      << err;
  EXPECT_NE(err.find("3,000 points in"), std::string::npos) << err;
  ASSERT_EQ(
      0, Run("bench --url " + Url() + " --collection it --queries " + P("query.u8bin") + " --gt " +
                 P("gt.ivecs") + " --k 10 --exact --concurrency 1,2 --warmup 5 --csv -",
             &out, &err))
      << err << out;
  // CSV rows: concurrency,queries,k,exact,recall,...
  for (const char* level : {"\n1,50,10,1,", "\n2,50,10,1,"}) {
    const size_t at = out.find(level);
    ASSERT_NE(at, std::string::npos) << out;
    const double recall = std::stod(out.substr(at + std::strlen(level)));
    EXPECT_GT(recall, 0.999) << out;
  }

  // Filtered queries with payloads, the set sent twice: no recall (the truth is unfiltered); a
  // filter that is not JSON fails before any request.
  {
    std::ofstream f(P("filters.jsonl"));
    f << "{\"must\": [{\"key\": \"tag\", \"match\": {\"value\": \"t3\"}}]}\n\n"
      << "{\"must\": [{\"key\": \"row\", \"range\": {\"lt\": 1000}}]}\n";
  }
  ASSERT_EQ(0, Run("bench --url " + Url() + " --collection it --queries " + P("query.u8bin") +
                       " --gt " + P("gt.ivecs") + " --k 10 --with-payload --filters " +
                       P("filters.jsonl") + " --repeat 2 --warmup 3 --csv -",
                   &out, &err))
      << err << out;
  EXPECT_NE(out.find("\n1,100,10,0,,"), std::string::npos) << out;
  EXPECT_NE(out.find("with payload, 2 filter(s), 100 requests per level"), std::string::npos)
      << out;
  EXPECT_EQ(1, Run("bench --url " + Url() + " --collection it --queries " + P("query.u8bin") +
                       " --filter '{\"must\": [' --warmup 0",
                   &out, &err));
  EXPECT_NE(err.find("--filter: not JSON"), std::string::npos) << err;

  // Creating it again fails with the server's message; so does a wrong dimension.
  EXPECT_EQ(1, Run("import --url " + Url() + " --collection it --file " + P("base.u8bin") +
                       " --create --limit 5",
                   &out, &err));
  EXPECT_NE(err.find("HTTP 4"), std::string::npos) << err;
  EXPECT_EQ(1,
            Run("import --url " + Url() + " --collection it --file " + P("gt.ivecs") + " --limit 5",
                &out, &err));
  EXPECT_NE(err.find("HTTP 4"), std::string::npos) << err;
}

// vectorctl build loads a file into a data directory offline and builds the SPANN index there; a
// server started on that directory then serves the indexed collection (searching every list of
// the index with full vectors must find the exact neighbours).
TEST_F(VectorctlIntegration, BuildOfflineThenServerServesIndex) {
  StopServer();
  const uint32_t dim = 16;
  const size_t n = 4000, nq = 40;
  std::mt19937 rng(11);
  std::vector<uint8_t> base(n * dim), queries(nq * dim);
  for (auto& v : base) v = static_cast<uint8_t>(rng() % 256);
  for (auto& v : queries) v = static_cast<uint8_t>(rng() % 256);
  for (auto [path, rows, count] :
       {std::tuple{P("base.u8bin"), &base, n}, std::tuple{P("query.u8bin"), &queries, nq}}) {
    auto w = storage::DatasetWriter::Create(path, dim);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(rows->data(), count).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  {
    std::ofstream f(P("attrs.jsonl"));
    for (size_t i = 0; i < n; ++i) f << "{\"row\": " << i << "}\n";
  }
  std::string out, err;
  ASSERT_EQ(0, Run("gt --base " + P("base.u8bin") + " --query " + P("query.u8bin") +
                       " --k 10 --metric l2 --out " + P("gt.ivecs"),
                   &out, &err))
      << err;
  const std::string built = P("built");
  // eps 0 disables pruning and nprobe covers every list: the search is exhaustive.
  ASSERT_EQ(0, Run("build --data-dir " + built + " --collection b --file " + P("base.u8bin") +
                       " --payload " + P("attrs.jsonl") +
                       " --layout full --batch 700 --nprobe 100000 --eps 0",
                   &out, &err))
      << err << out;
  EXPECT_NE(out.find("index: 4,000 vectors in"), std::string::npos) << out;
  EXPECT_NE(err.find("load  [##############################] 4,000/4,000"), std::string::npos)
      << err;
  // A second build into the same collection is refused with the engine's message.
  EXPECT_EQ(1, Run("build --data-dir " + built + " --collection b --file " + P("base.u8bin"), &out,
                   &err));
  EXPECT_NE(err.find("'b'"), std::string::npos) << err;

  ASSERT_NO_FATAL_FAILURE(StartServer(built));
  const std::string info = HttpGet("/collections/b");
  EXPECT_NE(info.find("\"indexed_vectors_count\":4000"), std::string::npos) << info;
  EXPECT_NE(info.find("\"points_count\":4000"), std::string::npos) << info;
  EXPECT_NE(info.find("\"status\":\"green\""), std::string::npos) << info;
  ASSERT_EQ(0, Run("bench --url " + Url() + " --collection b --queries " + P("query.u8bin") +
                       " --gt " + P("gt.ivecs") + " --k 10 --concurrency 1 --warmup 2 --csv -",
                   &out, &err))
      << err << out;
  const size_t at = out.find("\n1,40,10,0,");
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_GT(std::stod(out.substr(at + std::strlen("\n1,40,10,0,"))), 0.999) << out;
  // The server opened the built index: it logged no build of its own.
  EXPECT_EQ(ReadFile(P("vectord.log")).find("installed"), std::string::npos);
}

}  // namespace
}  // namespace vectord
