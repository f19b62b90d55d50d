// Boost.Beast HTTP server (see http_server.h). One Session per connection, its handlers running
// on the connection's strand; compute-bound routes are posted to the compute pool and their
// responses posted back to the strand.
#include "server/http_server.h"

#include <array>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <optional>

namespace vectord::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

struct HttpServer::Shared {
  Api* api;
  Metrics* metrics;
  HttpServerOptions options;
  net::thread_pool* compute;
  net::thread_pool* writes;
  std::atomic<bool> stopping{false};
};

namespace {

Method ToMethod(http::verb v) {
  switch (v) {
    case http::verb::get:
      return Method::kGet;
    case http::verb::put:
      return Method::kPut;
    case http::verb::post:
      return Method::kPost;
    case http::verb::delete_:
      return Method::kDelete;
    default:
      return Method::kOther;
  }
}

const std::string kUnmatched = "unmatched";
// Beast reads at most the buffer's free capacity per call (min 512 bytes): without room, a large
// body arrives in thousands of tiny reads. Small requests get a small buffer, large bodies a
// large one (given back after the request).
constexpr size_t kSmallBuffer = 16 << 10;
constexpr size_t kLargeBuffer = 1 << 20;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<HttpServer::Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {}

  void Start() {
    buffer_.reserve(kSmallBuffer);
    beast::error_code ec;
    stream_.socket().non_blocking(true, ec);  // for WriteNow(); async operations are unaffected
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::DoRead, shared_from_this()));
  }

 private:
  const HttpServerOptions& opts() const { return shared_->options; }

  void DoRead() {
    parser_.emplace();
    parser_->body_limit(opts().max_body_bytes);
    parser_->header_limit(opts().max_header_bytes);
    stream_.expires_after(opts().read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  // Errors that end the read; returns true if handled.
  bool HandleReadError(beast::error_code ec) {
    if (!ec) return false;
    start_ = std::chrono::steady_clock::now();
    if (ec == http::error::body_limit) {
      Reply(ErrorResponse(413,
                          "request body exceeds the limit of " +
                              std::to_string(opts().max_body_bytes) + " bytes",
                          0),
            kUnmatched, /*close=*/true);
    } else if (ec == http::error::header_limit) {
      Reply(ErrorResponse(431,
                          "request header exceeds the limit of " +
                              std::to_string(opts().max_header_bytes) + " bytes",
                          0),
            kUnmatched, true);
    } else if (ec == http::error::end_of_stream || ec == net::error::eof ||
               ec == beast::error::timeout || ec == net::error::operation_aborted ||
               ec == net::error::connection_reset || !parser_->got_some()) {
      Close();  // client went away, or idle/slow past the read timeout (socket already closed)
    } else {
      Reply(ErrorResponse(400, "malformed HTTP request: " + ec.message(), 0), kUnmatched, true);
    }
    return true;
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (HandleReadError(ec)) return;
    start_ = std::chrono::steady_clock::now();
    // From here on a graceful shutdown waits for this request.
    shared_->metrics->RequestBegun();
    counted_ = true;
    auto& req = parser_->get();
    if (req.target().size() > opts().max_url_bytes) {
      Reply(ErrorResponse(414,
                          "request URL of " + std::to_string(req.target().size()) +
                              " bytes exceeds the limit of " + std::to_string(opts().max_url_bytes),
                          0),
            kUnmatched, true);
      return;
    }
    if (beast::iequals(req[http::field::expect], "100-continue") && !parser_->is_done()) {
      continue_ = std::make_unique<http::response<http::empty_body>>(http::status::continue_,
                                                                     req.version());
      http::async_write(stream_, *continue_,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRead({}, 0);
    if (auto len = parser_->content_length(); len && *len > kSmallBuffer) {
      buffer_.reserve(std::min<uint64_t>(*len, kLargeBuffer));
    }
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (HandleReadError(ec)) return;
    stream_.expires_never();
    req_ = parser_->release();
    keep_alive_ = req_.keep_alive();
    routed_ = shared_->api->Match(ToMethod(req_.method()),
                                  std::string_view(req_.target().data(), req_.target().size()));
    if (!routed_.route) {
      Reply(std::move(routed_.error), kUnmatched, false);
      return;
    }
    if (!routed_.route->compute) {
      Reply(shared_->api->Execute(routed_, req_.body()), routed_.route->label, false);
      return;
    }
    net::thread_pool* pool = routed_.route->write ? shared_->writes : shared_->compute;
    net::post(*pool, [self = shared_from_this()]() {
      // Answer from this thread when the socket takes the whole reply (the common case): the
      // client does not wait for a hop back to the I/O thread.
      self->Prepare(self->shared_->api->Execute(self->routed_, self->req_.body()),
                    self->routed_.route->label, false);
      self->WriteNow();
      net::post(self->stream_.get_executor(), [self]() { self->WriteRest(); });
    });
  }

  // Replies from the strand: serialize, write what the socket takes now, then the rest.
  void Reply(HttpResponse resp, const std::string& label, bool close) {
    Prepare(std::move(resp), label, close);
    WriteNow();
    WriteRest();
  }

  // Serializes the response into head_ and body_.
  void Prepare(HttpResponse resp, const std::string& label, bool close) {
    if (close || shared_->stopping.load()) keep_alive_ = false;
    if (close) drain_ = true;
    status_ = resp.status;
    label_ = &label;
    body_ = std::move(resp.body);
    head_.clear();
    head_ += "HTTP/1.1 ";
    head_ += std::to_string(resp.status);
    head_ += ' ';
    auto reason = http::obsolete_reason(http::int_to_status(resp.status));
    head_.append(reason.data(), reason.size());
    head_ += "\r\nServer: vectord\r\nContent-Type: ";
    head_ += resp.content_type;
    head_ += "\r\nContent-Length: ";
    head_ += std::to_string(body_.size());
    if (!resp.allow.empty()) {
      head_ += "\r\nAllow: ";
      head_ += resp.allow;
    }
    head_ += keep_alive_ ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
    written_ = 0;
  }

  std::array<net::const_buffer, 2> Unwritten() const {
    size_t h = std::min(written_, head_.size());
    size_t b = written_ - h;
    return {net::buffer(head_.data() + h, head_.size() - h),
            net::buffer(body_.data() + b, body_.size() - b)};
  }

  // Writes as much as the (non-blocking) socket accepts right now. Safe from the compute thread:
  // no other operation is pending on the socket while a request is being handled, and the
  // strand is re-entered through a post afterwards.
  void WriteNow() {
    const size_t total = head_.size() + body_.size();
    beast::error_code ec;
    while (written_ < total) {
      size_t n = stream_.socket().write_some(Unwritten(), ec);
      if (ec) break;  // would_block (or an error the async write will report)
      written_ += n;
    }
  }

  void WriteRest() {
    if (written_ == head_.size() + body_.size()) return OnWrite({}, 0);
    stream_.expires_after(opts().write_timeout);
    net::async_write(stream_, Unwritten(),
                     beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, size_t) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    shared_->metrics->Record(*label_, status_, seconds);
    EndRequest();
    req_ = {};
    if (body_.capacity() > kSmallBuffer) {
      std::string().swap(body_);
    } else {
      body_.clear();
    }
    if (ec) return Close();
    if (buffer_.capacity() > kSmallBuffer && buffer_.size() == 0) {
      buffer_.shrink_to_fit();
      buffer_.reserve(kSmallBuffer);
    }
    if (!keep_alive_) {
      if (drain_) return Drain();
      return Close();
    }
    DoRead();
  }

  // After an error reply with the request unread: half-close, then read and drop what the client
  // still sends (up to 1 s) so that closing does not reset the connection before it reads the
  // reply.
  void Drain() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    drain_buf_.resize(64 << 10);
    stream_.expires_after(std::chrono::seconds(1));
    DrainSome();
  }
  void DrainSome() {
    stream_.async_read_some(net::buffer(drain_buf_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->DrainSome();
                            });
  }

  void EndRequest() {
    if (counted_) {
      counted_ = false;
      shared_->metrics->RequestEnded();
    }
  }

  void Close() {
    EndRequest();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<HttpServer::Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::unique_ptr<http::response<http::empty_body>> continue_;
  http::request<http::string_body> req_;
  std::string head_;    // status line and headers of the reply being written
  std::string body_;    // its body
  size_t written_ = 0;  // bytes of head_ + body_ already sent
  Api::Routed routed_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  const std::string* label_ = &kUnmatched;
  unsigned status_ = 0;
  bool keep_alive_ = true;
  bool counted_ = false;
  bool drain_ = false;
  std::vector<char> drain_buf_;
};

}  // namespace

HttpServer::HttpServer(Api* api, Metrics* metrics, HttpServerOptions options)
    : api_(api),
      metrics_(metrics),
      options_(std::move(options)),
      // The acceptor, the signal set and the shutdown timer share one strand: with several I/O
      // threads, the accept loop and BeginShutdown (which closes the acceptor) must not overlap.
      acceptor_(net::make_strand(ioc_)),
      compute_(options_.compute_threads ? options_.compute_threads
                                        : std::max(1u, std::thread::hardware_concurrency())),
      writes_(std::max(1u, options_.write_threads)),
      signals_(acceptor_.get_executor()),
      shutdown_timer_(acceptor_.get_executor()),
      shared_(std::make_shared<Shared>()) {
  shared_->api = api_;
  shared_->metrics = metrics_;
  shared_->options = options_;
  shared_->compute = &compute_;
  shared_->writes = &writes_;
}

HttpServer::~HttpServer() {
  compute_.join();
  writes_.join();
}

Status HttpServer::Listen() {
  beast::error_code ec;
  auto addr = net::ip::make_address(options_.host, ec);
  if (ec) {
    return Status::InvalidArgument("host '" + options_.host +
                                   "' is not an IP address: " + ec.message());
  }
  tcp::endpoint ep(addr, options_.port);
  std::string where = options_.host + ":" + std::to_string(options_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("cannot listen on " + where + ": " + ec.message());
  bound_port_ = acceptor_.local_endpoint().port();
  Accept();
  return Status::OK();
}

void HttpServer::Accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
    if (!acceptor_.is_open()) return;
    if (!ec) {
      beast::error_code ignored;
      s.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(s), shared_)->Start();
    }
    Accept();
  });
}

void HttpServer::Run(bool handle_signals) {
  if (handle_signals) {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.async_wait([this](beast::error_code ec, int) {
      if (!ec) BeginShutdown();
    });
  }
  std::vector<std::thread> threads;
  unsigned n = std::max(1u, options_.io_threads);
  for (unsigned i = 1; i < n; ++i) threads.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : threads) t.join();
  compute_.join();  // nothing may touch the Database after Run returns
  writes_.join();
}

void HttpServer::Stop() {
  net::post(acceptor_.get_executor(), [this] { BeginShutdown(); });
}

void HttpServer::BeginShutdown() {
  if (stopping_.exchange(true)) return;
  shared_->stopping = true;
  api_->SetShuttingDown();
  beast::error_code ec;
  acceptor_.close(ec);
  signals_.cancel(ec);
  shutdown_deadline_ = std::chrono::steady_clock::now() + options_.shutdown_timeout;
  PollShutdown();
}

void HttpServer::PollShutdown() {
  if (shared_->metrics->in_flight() == 0 ||
      std::chrono::steady_clock::now() >= shutdown_deadline_) {
    ioc_.stop();
    return;
  }
  shutdown_timer_.expires_after(std::chrono::milliseconds(5));
  shutdown_timer_.async_wait([this](beast::error_code) { PollShutdown(); });
}

}  // namespace vectord::server
