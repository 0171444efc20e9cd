// Errors a client hears, in OpenAI's shape: {"error": {"message", "type", "param", "code"}} with
// an HTTP status. Every message names the field at fault ("messages[1].content: ..."), and
// `param` carries that field's path, so SDKs that surface `param` point at it too.
#pragma once

#include <stdexcept>
#include <string>

#include "core/error.h"
#include "core/json_file.h"

namespace vortex::server {

class HttpError : public std::runtime_error {
 public:
  // `param`: the request field at fault ("" = none, sent as null); `code`: a machine-readable
  // code ("" = null), e.g. "model_not_found"; `type` defaults from the status.
  HttpError(int status, const std::string& message, std::string param = "", std::string code = "",
            std::string type = "");

  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }
  const std::string& type() const { return type_; }

 private:
  int status_;
  std::string param_, code_, type_;
};

// 400 invalid_request_error for field `param`; the message starts with the field's name.
template <class... Args>
[[noreturn]] void fail_field(const std::string& param, const Args&... args) {
  throw HttpError(400, str_cat(param, ": ", args...), param);
}

// OpenAI's error type for an HTTP status, as its API sends them: "invalid_request_error" (4xx,
// unknown URLs and models included), "authentication_error" (401), "permission_error" (403),
// "rate_limit_error" (429), "server_error" (5xx).
std::string error_type_for_status(int status);

// {"error": {"message", "type", "param", "code"}}; an empty param or code is null.
Json error_json(const HttpError& error);

// The reason phrase of a status ("Not Found"), for messages of errors the router produces.
std::string status_text(int status);

}  // namespace vortex::server
