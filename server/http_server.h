// The HTTP/1.1 server: Boost.Beast on Asio. A few I/O threads accept connections and read and
// write requests (keep-alive, body/header/URL limits, per-request read timeout); handlers that
// touch collection data run on a separate compute pool, so I/O threads never block on searches.
// Stop() drains in-flight requests before the caller closes the Database.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server/api.h"
#include "vectord/status.h"

namespace vectord::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6333;                   // 0 = any free port (see HttpServer::port())
  unsigned io_threads = 2;                // threads running the sockets
  unsigned compute_threads = 0;           // threads running reads; 0 = hardware concurrency
  unsigned write_threads = 2;             // threads running writes (they parse request bodies)
  uint64_t max_body_bytes = 32ull << 20;  // larger bodies get 413
  size_t max_url_bytes = 8192;            // longer request targets get 414
  uint32_t max_header_bytes = 65536;      // larger header blocks get 431
  // A request must arrive completely within this time of the previous response (or of the
  // connection's start); otherwise the connection is closed (408 if part of it had arrived).
  std::chrono::milliseconds read_timeout{30000};
  std::chrono::milliseconds write_timeout{30000};
  // On shutdown, how long to wait for in-flight requests before closing anyway.
  std::chrono::milliseconds shutdown_timeout{30000};
};

class HttpServer {
 public:
  HttpServer(Api* api, Metrics* metrics, HttpServerOptions options);
  ~HttpServer();

  // Binds and listens; fails with the address in the message.
  Status Listen();
  uint16_t port() const { return bound_port_; }

  // Serves until SIGINT/SIGTERM (when `handle_signals`) or Stop(); then stops accepting, waits
  // for in-flight requests (up to shutdown_timeout) and returns. Call from one thread.
  void Run(bool handle_signals);
  // Starts the graceful stop from any thread.
  void Stop();

  // Internal, used by connections.
  struct Shared;

 private:
  void Accept();
  void BeginShutdown();
  void PollShutdown();

  Api* api_;
  Metrics* metrics_;
  HttpServerOptions options_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::thread_pool compute_;
  boost::asio::thread_pool writes_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer shutdown_timer_;
  std::chrono::steady_clock::time_point shutdown_deadline_;
  std::shared_ptr<Shared> shared_;
  uint16_t bound_port_ = 0;
  std::atomic<bool> stopping_{false};
};

}  // namespace vectord::server
