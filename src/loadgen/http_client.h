// The benchmark's HTTP side, over cpp-httplib: the server's base URL, the model it serves, and
// one streaming request timed chunk by chunk.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loadgen/endpoint.h"
#include "loadgen/request_result.h"

namespace httplib {
class Client;
}

namespace vortex::loadgen {

struct ServerUrl {
  std::string url;          // as given, without a trailing '/'
  std::string origin;       // scheme://host[:port], what httplib connects to
  std::string path_prefix;  // "" or "/api", put before every endpoint path
};

// Parses http[s]://host[:port][/prefix]; a usage error naming --url otherwise.
ServerUrl parse_server_url(const std::string& url);

struct ClientOptions {
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every request
  double timeout_s = 3600;  // per request, from sending to the end of the stream
};

// The first model GET /v1/models lists. Throws vortex::Error: "cannot reach URL: ..." when no
// connection can be made, else naming the status or the malformed field.
std::string first_served_model(const ServerUrl& server, const ClientOptions& options);

// Throws "cannot reach URL: ..." unless the server answers HTTP at all (any status): a cheap
// check before a run whose every request would fail to connect.
void check_reachable(const ServerUrl& server, const ClientOptions& options);

// One connection (kept alive between requests) for one worker thread; not thread-safe.
class StreamingClient {
 public:
  StreamingClient(const ServerUrl& server, const ClientOptions& options);
  ~StreamingClient();

  // Posts `body` to the endpoint with streaming and times it. Never throws for what the server
  // does: HTTP errors, broken connections, malformed or unfinished streams and timeouts come
  // back as a failed result. `prompt_ids` counts the input when the server reports none.
  RequestResult post_stream(Endpoint endpoint, const std::string& body, int64_t prompt_ids);

 private:
  ServerUrl server_;
  ClientOptions options_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace vortex::loadgen
