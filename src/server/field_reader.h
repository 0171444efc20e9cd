// Typed reads of one JSON object of a request body. Clients send many fields this server does
// not know, and null for "not set": both read as absent. A value of the wrong type or out of
// range is an HttpError 400 whose message and param name the field's full path
// ("sampling_params.top_k", "messages[2].content").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/json_file.h"

namespace vortex::server {

class FieldReader {
 public:
  // `object` must outlive the reader; `path` is its own path ("" at the top level). Throws when
  // `object` is not a JSON object.
  FieldReader(const Json& object, std::string path);

  // The value of `key`, or null when absent or JSON null.
  const Json* find(const std::string& key) const;
  // "path.key" (or "key" at the top level).
  std::string path_of(const std::string& key) const;
  const std::string& path() const { return path_; }

  std::optional<bool> get_bool(const std::string& key) const;
  // An integer (an integral float such as 16.0 too) in [lo, hi].
  std::optional<int64_t> get_int(const std::string& key, int64_t lo, int64_t hi) const;
  // Any number; callers check the range with their own message.
  std::optional<double> get_number(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  // A nested object, or nullopt when absent.
  std::optional<FieldReader> get_object(const std::string& key) const;

  // Refuses a field this server does not implement unless it holds the value that means "off"
  // (`neutral`): a client asking for it gets a clear 400 instead of a silently different answer.
  void reject_unless(const std::string& key, const Json& neutral) const;

 private:
  const Json* object_;
  std::string path_;
};

// A JSON value's type for messages: "a string", "an integer", "an array", ...
std::string json_type_name(const Json& value);

}  // namespace vortex::server
