// Synchronous Boost.Beast HTTP client with keep-alive and one retry after a closed connection.
#include "tools/vectorctl/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <optional>

namespace vectord::vectorctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Result<Url> ParseUrl(std::string_view url) {
  std::string_view rest = url;
  constexpr std::string_view kHttp = "http://";
  if (rest.substr(0, kHttp.size()) == kHttp) {
    rest.remove_prefix(kHttp.size());
  } else if (rest.find("://") != std::string_view::npos) {
    return Status::InvalidArgument("URL '" + std::string(url) + "': only http:// is supported");
  }
  Url out;
  const size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    out.prefix = std::string(rest.substr(slash));
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  }
  const size_t colon = hostport.rfind(':');
  if (colon != std::string_view::npos && hostport.find(']') == std::string_view::npos) {
    out.host = std::string(hostport.substr(0, colon));
    out.port = std::string(hostport.substr(colon + 1));
  } else {
    out.host = std::string(hostport);
  }
  if (out.host.empty() || out.port.empty() ||
      out.port.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("URL '" + std::string(url) +
                                   "': expected http://host:port, e.g. http://127.0.0.1:6333");
  }
  return out;
}

struct HttpClient::Impl {
  explicit Impl(Url u) : url(std::move(u)), resolver(ioc) {}
  Url url;
  asio::io_context ioc;
  tcp::resolver resolver;
  std::optional<tcp::resolver::results_type> endpoints;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::string host_header;

  std::string Where() const { return "http://" + url.host + ":" + url.port; }

  Status Connect() {
    beast::error_code ec;
    if (!endpoints) {
      auto r = resolver.resolve(url.host, url.port, ec);
      if (ec) return Status::IOError("cannot resolve " + Where() + ": " + ec.message());
      endpoints = r;
      host_header = url.host + ":" + url.port;
    }
    stream.emplace(ioc);
    stream->connect(*endpoints, ec);
    if (ec) {
      stream.reset();
      return Status::IOError("cannot connect to " + Where() + ": " + ec.message());
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
    buffer.clear();
    return Status::OK();
  }

  void Close() {
    if (stream) {
      beast::error_code ec;
      stream->socket().shutdown(tcp::socket::shutdown_both, ec);
      stream->socket().close(ec);
      stream.reset();
    }
  }

  // One attempt; `*stale` is set when the failure looks like a server-closed keep-alive socket.
  Result<HttpResponse> Once(http::request<http::string_body>& req, bool* stale) {
    beast::error_code ec;
    *stale = false;
    http::write(*stream, req, ec);
    if (ec) {
      *stale = true;
      return Status::IOError("sending to " + Where() + " failed: " + ec.message());
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    http::read(*stream, buffer, parser, ec);
    if (ec) {
      *stale = (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                ec == asio::error::eof || ec == asio::error::broken_pipe);
      return Status::IOError("reading the response from " + Where() + " failed: " + ec.message());
    }
    auto res = parser.release();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    if (!res.keep_alive()) Close();
    return out;
  }
};

HttpClient::HttpClient(Url url) : impl_(std::make_unique<Impl>(std::move(url))) {}
HttpClient::~HttpClient() { impl_->Close(); }

Status HttpClient::Connect() {
  impl_->Close();
  return impl_->Connect();
}

Result<HttpResponse> HttpClient::Request(std::string_view method, std::string_view target,
                                         std::string_view body) {
  http::request<http::string_body> req;
  req.method(http::string_to_verb(beast::string_view(method.data(), method.size())));
  req.target(impl_->url.prefix + std::string(target));
  req.version(11);
  req.keep_alive(true);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body().assign(body.data(), body.size());
  }
  for (int attempt = 0;; ++attempt) {
    const bool reused = impl_->stream.has_value();
    if (!reused) VECTORD_RETURN_IF_ERROR(impl_->Connect());
    req.set(http::field::host, impl_->host_header);
    req.prepare_payload();
    bool stale = false;
    Result<HttpResponse> r = impl_->Once(req, &stale);
    if (r.ok()) return r;
    impl_->Close();
    if (!(reused && stale && attempt == 0)) return r.status();
  }
}

std::string DescribeHttpError(const HttpResponse& r) {
  std::string what = r.body;
  try {
    auto j = nlohmann::json::parse(r.body);
    if (j.is_object() && j.contains("status") && j["status"].is_object() &&
        j["status"].contains("error")) {
      what = j["status"]["error"].is_string() ? j["status"]["error"].get<std::string>()
                                              : j["status"]["error"].dump();
    }
  } catch (const std::exception&) {
    // Not JSON: show the raw body.
  }
  if (what.size() > 2000) what = what.substr(0, 2000) + "...";
  return "server answered HTTP " + std::to_string(r.status) + ": " + what;
}

}  // namespace vectord::vectorctl
