// The server's routes as data, so that what an unmatched request hears is a pure function: an
// unknown path is a 404 and a known path with the wrong method a 405 naming the allowed one,
// both in OpenAI's error shape.
#pragma once

#include <string>
#include <vector>

#include "server/error_response.h"

namespace vortex::server {

struct Route {
  const char* method;  // "GET" (HEAD too), "POST" or "DELETE"
  const char* path;    // exact, or a prefix ending in '/' for "/v1/models/{id}"
};

const std::vector<Route>& routes();

// The error for a request no handler took: 405 with the allowed method when the path is a
// route, else 404 ("Invalid URL (POST /v1/foo)", as OpenAI words it).
HttpError unmatched_route_error(const std::string& method, const std::string& path);

// The Allow header of a 405 for `path` ("GET, HEAD", "POST", "GET, HEAD, POST", "DELETE"); ""
// when the path is unknown.
std::string allowed_methods(const std::string& path);

}  // namespace vortex::server
