// A small synchronous HTTP/1.1 client for vectorctl (Boost.Beast over one TCP socket): keep-alive,
// reconnect when the server closed the connection. One client per thread; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "vectord/status.h"

namespace vectord::vectorctl {

// "http://host:port[/prefix]" split into parts. Only plain http is supported.
struct Url {
  std::string host;
  std::string port = "80";
  std::string prefix;  // path prefix without trailing '/', e.g. "" or "/api"
};
Result<Url> ParseUrl(std::string_view url);

struct HttpResponse {
  int status = 0;
  std::string body;
};

class HttpClient {
 public:
  explicit HttpClient(Url url);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `method` `target` (the URL prefix is prepended) with a JSON body (empty = no body) and
  // returns the response, whatever its status. A request on a reused connection that fails
  // because the server closed it is retried once on a fresh connection. IOError names the URL.
  Result<HttpResponse> Request(std::string_view method, std::string_view target,
                               std::string_view body = {});

  // Connects now (Request connects lazily otherwise).
  Status Connect();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "server said 400 Bad Request: <status.error from the JSON body, or the body>".
std::string DescribeHttpError(const HttpResponse& r);

}  // namespace vectord::vectorctl
