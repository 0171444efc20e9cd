#include "server/routes.h"

namespace vortex::server {

const std::vector<Route>& routes() {
  static const std::vector<Route> kRoutes = {
      {"POST", "/v1/chat/completions"},
      {"POST", "/v1/completions"},
      {"POST", "/generate"},
      {"GET", "/v1/models"},
      {"GET", "/v1/models/"},
      {"GET", "/get_model_info"},
      {"GET", "/model_info"},
      {"GET", "/health"},
      {"GET", "/health_generate"},
      {"GET", "/metrics"},
      {"GET", "/v1/flows"},
      {"POST", "/v1/flows"},
      {"GET", "/v1/flows/"},
      {"DELETE", "/v1/flows/"},
  };
  return kRoutes;
}

namespace {

bool matches(const Route& r, const std::string& path) {
  const std::string p = r.path;
  if (p.back() == '/') return path.size() > p.size() && path.compare(0, p.size(), p) == 0;
  return path == p;
}

}  // namespace

std::string allowed_methods(const std::string& path) {
  std::string allowed;
  for (const Route& r : routes()) {
    if (!matches(r, path)) continue;
    if (!allowed.empty()) allowed += ", ";
    allowed += std::string(r.method) == "GET" ? "GET, HEAD" : r.method;
  }
  return allowed;
}

HttpError unmatched_route_error(const std::string& method, const std::string& path) {
  const std::string allowed = allowed_methods(path);
  if (!allowed.empty()) {
    return HttpError(405, str_cat("Method ", printable(method, 16), " is not allowed for ",
                                  printable(path, 120), " (use ", allowed, ")"));
  }
  return HttpError(404,
                   str_cat("Invalid URL (", printable(method, 16), " ", printable(path, 120), ")"));
}

}  // namespace vortex::server
