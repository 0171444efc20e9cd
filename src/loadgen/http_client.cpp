#include "loadgen/http_client.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "loadgen/sse_parser.h"
#include "loadgen/stream_reader.h"

namespace vortex::loadgen {
namespace {

using Clock = std::chrono::steady_clock;

// An error body is kept to this many bytes: enough for any server's error JSON.
constexpr size_t kMaxErrorBody = 2048;

std::string describe(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "could not connect";
    case httplib::Error::ConnectionTimeout:
      return "connecting timed out";
    case httplib::Error::Read:
      return "the connection broke or timed out while reading the response";
    case httplib::Error::Write:
      return "the connection broke while sending the request";
    case httplib::Error::SSLConnection:
    case httplib::Error::SSLLoadingCerts:
    case httplib::Error::SSLServerVerification:
      return "TLS failed (" + httplib::to_string(e) + ")";
    default:
      return httplib::to_string(e);
  }
}

// httplib takes whole seconds and microseconds.
void set_timeouts(httplib::Client& c, double timeout_s) {
  auto split = [](double s, time_t& sec, time_t& usec) {
    s = std::min(s, 1e8);
    sec = static_cast<time_t>(s);
    usec = static_cast<time_t>((s - static_cast<double>(sec)) * 1e6);
  };
  time_t sec, usec;
  split(timeout_s, sec, usec);
  c.set_read_timeout(sec, usec);
  c.set_write_timeout(sec, usec);
  // A refused connection fails at once; this only bounds a host that never answers.
  split(std::min(timeout_s, 30.0), sec, usec);
  c.set_connection_timeout(sec, usec);
}

std::unique_ptr<httplib::Client> make_client(const ServerUrl& server, double timeout_s) {
  auto c = std::make_unique<httplib::Client>(server.origin);
  if (!c->is_valid()) fail_usage("--url: cannot use '", printable(server.url), "'");
  set_timeouts(*c, timeout_s);
  return c;
}

httplib::Headers to_headers(const ClientOptions& o) {
  httplib::Headers h;
  for (const auto& [k, v] : o.headers) h.emplace(k, v);
  return h;
}

std::string body_excerpt(const std::string& body) {
  std::string text = body.substr(0, std::min<size_t>(body.size(), 300));
  // Most servers answer errors with {"error": {"message": ...}} or {"detail": ...}.
  Json j;
  try {
    j = parse_json(body, "error body");
  } catch (const Error&) {
    return printable(text, 200);  // not JSON: the text as it came
  }
  if (j.is_object()) {
    if (j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
        j["error"]["message"].is_string()) {
      text = j["error"]["message"].get<std::string>();
    } else if (j.contains("detail") && j["detail"].is_string()) {
      text = j["detail"].get<std::string>();
    } else if (j.contains("message") && j["message"].is_string()) {
      text = j["message"].get<std::string>();
    }
  }
  return printable(text, 200);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

ServerUrl parse_server_url(const std::string& url) {
  ServerUrl s;
  s.url = url;
  while (!s.url.empty() && s.url.back() == '/') s.url.pop_back();
  const size_t scheme_end = s.url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : s.url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    fail_usage("--url: '", printable(url), "' must start with http:// or https://");
  }
  const size_t host_begin = scheme_end + 3;
  const size_t path_begin = s.url.find('/', host_begin);
  s.origin = s.url.substr(0, path_begin);
  if (s.origin.size() == host_begin) fail_usage("--url: '", printable(url), "' has no host");
  if (path_begin != std::string::npos) s.path_prefix = s.url.substr(path_begin);
  if (s.origin.find_first_of("?# ") != std::string::npos ||
      s.path_prefix.find_first_of("?# ") != std::string::npos) {
    fail_usage("--url: '", printable(url), "' must be a base URL (no query or fragment)");
  }
  return s;
}

void check_reachable(const ServerUrl& server, const ClientOptions& options) {
  auto c = make_client(server, options.timeout_s);
  auto res = c->Get(server.path_prefix + "/v1/models", to_headers(options));
  if (!res) fail("cannot reach ", server.url, ": ", describe(res.error()));
}

std::string first_served_model(const ServerUrl& server, const ClientOptions& options) {
  auto c = make_client(server, options.timeout_s);
  const std::string where = server.url + "/v1/models";
  auto res = c->Get(server.path_prefix + "/v1/models", to_headers(options));
  if (!res) fail("cannot reach ", server.url, ": ", describe(res.error()));
  if (res->status != 200) {
    fail(where, ": HTTP ", res->status, ": ", body_excerpt(res->body), " (give --model)");
  }
  Json j;
  try {
    // Under the project's JSON limits: the answer comes from whatever listens at the URL.
    j = parse_json(res->body, where);
  } catch (const Error&) {
    fail(where, ": the answer is not JSON (give --model)");
  }
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array()) {
    fail(where, ": expected an object with a \"data\" list (give --model)");
  }
  if (j["data"].empty()) fail(where, ": lists no model (give --model)");
  const Json& first = j["data"][0];
  if (!first.is_object() || !first.contains("id") || !first["id"].is_string()) {
    fail(where, ": \"data\"[0] has no string \"id\" (give --model)");
  }
  return first["id"].get<std::string>();
}

StreamingClient::StreamingClient(const ServerUrl& server, const ClientOptions& options)
    : server_(server), options_(options), client_(make_client(server, options.timeout_s)) {
  client_->set_keep_alive(true);
}

StreamingClient::~StreamingClient() = default;

RequestResult StreamingClient::post_stream(Endpoint endpoint, const std::string& body,
                                           int64_t prompt_ids) {
  RequestResult r;
  StreamReader reader(endpoint);
  SseParser sse;
  int status = 0;
  std::string error_body, stream_error;
  bool timed_out = false;
  double last_chunk_s = 0;
  const Clock::time_point t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(std::min(options_.timeout_s, 1e8)));

  const SseParser::OnData on_event = [&](std::string_view data) {
    switch (reader.on_data(data)) {
      case StreamReader::Event::kError:
        stream_error = reader.error();
        return false;
      case StreamReader::Event::kContent: {
        const double t = seconds_since(t0);
        if (r.content_chunks == 0) {
          r.ttft_s = t;
        } else {
          r.chunk_gaps_s.push_back(t - last_chunk_s);
        }
        last_chunk_s = t;
        ++r.content_chunks;
        return true;
      }
      default:
        return true;
    }
  };

  httplib::Request req;
  req.method = "POST";
  req.path = server_.path_prefix + endpoint_path(endpoint);
  req.headers = to_headers(options_);
  req.headers.emplace("Accept", "text/event-stream");
  req.headers.emplace("Content-Type", "application/json");
  req.body = body;
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (Clock::now() > deadline) {
      timed_out = true;
      return false;
    }
    if (status != 200) {
      error_body.append(data,
                        std::min(n, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
      return true;
    }
    if (!sse.feed(std::string_view(data, n), on_event)) {
      if (stream_error.empty()) stream_error = "malformed stream: " + sse.error();
      return false;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  const bool sent = client_->send(req, res, error);
  if (sent && status == 200 && stream_error.empty() && !sse.finish(on_event) &&
      stream_error.empty()) {
    stream_error = "malformed stream: " + sse.error();
  }
  r.e2e_s = seconds_since(t0);

  if (timed_out || (!sent && r.e2e_s >= options_.timeout_s)) {
    r.error = str_cat("timed out after ", options_.timeout_s, " s");
  } else if (!stream_error.empty()) {
    r.error = stream_error;
  } else if (status != 0 && status != 200) {
    r.error = str_cat("HTTP ", status, ": ", body_excerpt(error_body));
  } else if (reader.done()) {
    // Complete: a connection that broke after [DONE] lost nothing.
  } else if (!sent) {
    r.error = describe(error);
  } else if (sse.events() == 0) {
    r.error = "the response is not an event stream (no data: lines)";
  } else {
    r.error = "the stream ended before data: [DONE]";
  }
  r.ok = r.error.empty();
  if (const auto n = reader.completion_tokens()) {
    r.output_tokens = *n;
    r.output_from_server = true;
  } else {
    r.output_tokens = r.content_chunks;
  }
  if (const auto n = reader.prompt_tokens()) {
    r.input_tokens = *n;
    r.input_from_server = true;
  } else {
    r.input_tokens = prompt_ids;
  }
  return r;
}

}  // namespace vortex::loadgen
