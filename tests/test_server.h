// Header-only helper for integration tests that run the real `vectord` binary: picks a free
// loopback port, starts the server on a temporary data directory, waits for GET /readyz = 200,
// stops it with SIGKILL or SIGTERM, restarts it on the same data directory, and speaks minimal
// blocking HTTP/1.1 over a raw socket (one connection per request, "Connection: close").
//
// Usage:
//   vectord::itest::TestServer server;       // makes a temp dir, removes it when destroyed
//   ASSERT_TRUE(server.Start());               // spawns VECTORD_BIN_DIR "/vectord"
//   auto r = server.Request("PUT", "/collections/c", R"({"vectors":{"size":4,"distance":"Dot"}})");
//   EXPECT_EQ(r.status, 200) << r.body;
//   server.Kill9();  ASSERT_TRUE(server.Start());  // crash and recover on the same data
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace vectord::itest {

// One HTTP reply. status 0 = no reply (connection refused, reset, timed out, malformed).
struct HttpReply {
  int status = 0;
  std::string body;
  std::string error;  // why status is 0
};

// Returns a loopback TCP port that was free a moment ago (bind to port 0, read it, close).
inline int PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

namespace internal {

inline bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Decodes a chunked body; false if it is malformed or truncated.
inline bool Dechunk(std::string_view in, std::string* out) {
  out->clear();
  for (;;) {
    size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos) return false;
    size_t size = std::strtoull(std::string(in.substr(0, eol)).c_str(), nullptr, 16);
    in.remove_prefix(eol + 2);
    if (size == 0) return true;
    if (in.size() < size + 2) return false;
    out->append(in.substr(0, size));
    in.remove_prefix(size + 2);
  }
}

inline std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace internal

// Sends one request to 127.0.0.1:port and reads the whole reply. Never throws.
inline HttpReply HttpRequest(int port, const std::string& method, const std::string& path,
                             const std::string& body = "", int timeout_ms = 30000) {
  HttpReply reply;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    reply.error = std::string("socket: ") + std::strerror(errno);
    return reply;
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    reply.error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return reply;
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nConnection: close\r\n";
  if (!body.empty() || method == "PUT" || method == "POST") {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n";
  req += body;
  if (!internal::SendAll(fd, req)) {
    reply.error = std::string("send: ") + std::strerror(errno);
    ::close(fd);
    return reply;
  }
  // Read until the server closes, or until Content-Length bytes of body have arrived.
  std::string raw;
  char buf[16384];
  size_t header_end = std::string::npos;
  long long content_length = -1;
  bool chunked = false;
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      reply.error = std::string("recv: ") + std::strerror(errno);
      break;
    }
    if (n == 0) break;
    raw.append(buf, static_cast<size_t>(n));
    if (header_end == std::string::npos) {
      header_end = raw.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::string headers = internal::Lower(raw.substr(0, header_end));
        size_t cl = headers.find("\r\ncontent-length:");
        if (cl != std::string::npos) content_length = std::atoll(headers.c_str() + cl + 17);
        chunked = headers.find("\r\ntransfer-encoding: chunked") != std::string::npos;
      }
    }
    if (header_end != std::string::npos && content_length >= 0 && !chunked &&
        raw.size() >= header_end + 4 + static_cast<size_t>(content_length)) {
      break;
    }
  }
  ::close(fd);
  if (header_end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) {
    if (reply.error.empty()) reply.error = "no complete HTTP header in reply: '" + raw + "'";
    return reply;
  }
  size_t sp = raw.find(' ');
  int status = std::atoi(raw.c_str() + sp + 1);
  std::string payload = raw.substr(header_end + 4);
  if (chunked) {
    if (!internal::Dechunk(payload, &reply.body)) {
      reply.error = "truncated chunked body";
      return reply;
    }
  } else if (content_length >= 0) {
    if (payload.size() < static_cast<size_t>(content_length)) {
      reply.error = "truncated body: " + std::to_string(payload.size()) + " of " +
                    std::to_string(content_length) + " bytes";
      return reply;
    }
    reply.body = payload.substr(0, static_cast<size_t>(content_length));
  } else {
    reply.body = std::move(payload);
  }
  reply.status = status;
  return reply;
}

// A vectord child process on a temporary data directory. Not thread-safe itself; Request() and
// port()/url() may be called from many threads while the server runs.
class TestServer {
 public:
  // Makes <tmp>/vectord_test_XXXXXX with data/ (the data dir) and vectord.log (its output).
  TestServer() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vectord_test_XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) root_ = buf.data();
    data_dir_ = root_ + "/data";
    log_path_ = root_ + "/vectord.log";
  }
  // Serves `data_dir` (kept when destroyed); the log still goes to a temporary directory.
  explicit TestServer(const std::string& data_dir) : TestServer() { data_dir_ = data_dir; }
  ~TestServer() {
    if (pid_ > 0) Kill9();
    std::error_code ec;
    if (!root_.empty() && std::getenv("VECTORD_KEEP_TEST_DIR") == nullptr) {
      std::filesystem::remove_all(root_, ec);
    }
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  static std::string BinaryPath() {
    std::string path = VECTORD_BIN_DIR;  // appended, not operator+: GCC 12 warns falsely on that
    path += "/vectord";
    return path;
  }

  // Starts vectord on a fresh free port and the (possibly existing) data dir, and waits until
  // GET /readyz answers 200. If the process exits during start-up (e.g. another process took the
  // port in the meantime) it tries again, up to 3 times. On failure the message carries the tail
  // of the server's log.
  ::testing::AssertionResult Start(const std::vector<std::string>& extra_args = {},
                                   std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    ::testing::AssertionResult result = ::testing::AssertionFailure();
    for (int attempt = 0; attempt < 3; ++attempt) {
      bool exited_early = false;
      result = StartOnce(extra_args, timeout, &exited_early);
      if (result || !exited_early) break;
    }
    return result;
  }

  // SIGKILL, then reaps the process. No-op when not running.
  void Kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  // SIGTERM and waits up to `timeout` for a clean exit. Returns the exit code, or -1 (with the
  // process then killed) if it was killed by a signal or did not exit in time.
  int Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        last_exit_ = DescribeStatus(status);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    last_exit_ = "did not exit within " + std::to_string(timeout.count()) + " ms of SIGTERM";
    Kill9();
    return -1;
  }

  HttpReply Request(const std::string& method, const std::string& path,
                    const std::string& body = "", int timeout_ms = 30000) const {
    return HttpRequest(port_, method, path, body, timeout_ms);
  }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  int starts() const { return starts_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }
  // How the last Terminate() ended ("exit code 0", "signal 9", ...).
  const std::string& last_exit() const { return last_exit_; }

  // The last `max_bytes` of the server's combined stdout/stderr (all runs).
  std::string LogTail(size_t max_bytes = 4000) const {
    std::ifstream in(log_path_, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    return s.size() > max_bytes ? "..." + s.substr(s.size() - max_bytes) : s;
  }

  static std::string DescribeStatus(int status) {
    if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
  }

 private:
  ::testing::AssertionResult StartOnce(const std::vector<std::string>& extra_args,
                                       std::chrono::milliseconds timeout, bool* exited_early) {
    if (root_.empty()) return ::testing::AssertionFailure() << "mkdtemp failed";
    if (pid_ > 0) return ::testing::AssertionFailure() << "server already running";
    if (::access(BinaryPath().c_str(), X_OK) != 0) {
      return ::testing::AssertionFailure() << BinaryPath() << " is not an executable";
    }
    port_ = PickFreePort();
    std::vector<std::string> args = {
        BinaryPath(), "--data-dir",         data_dir_, "--host", "127.0.0.1",
        "--port",     std::to_string(port_)};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      return ::testing::AssertionFailure()
             << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
    }
    pid_ = pid;
    ++starts_;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        *exited_early = true;
        return ::testing::AssertionFailure()
               << "vectord exited during start-up (" << DescribeStatus(status) << "); log:\n"
               << LogTail();
      }
      HttpReply r = HttpRequest(port_, "GET", "/readyz", "", 2000);
      if (r.status == 200) return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Kill9();
    return ::testing::AssertionFailure()
           << "vectord not ready after " << timeout.count() << " ms; log:\n"
           << LogTail();
  }

  std::string root_;
  std::string data_dir_;
  std::string log_path_;
  std::string last_exit_;
  pid_t pid_ = -1;
  int port_ = 0;
  int starts_ = 0;
};

}  // namespace vectord::itest
