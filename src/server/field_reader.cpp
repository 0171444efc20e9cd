#include "server/field_reader.h"

#include <cmath>

#include "server/error_response.h"

namespace vortex::server {

std::string json_type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    default:
      return "a value";
  }
}

FieldReader::FieldReader(const Json& object, std::string path)
    : object_(&object), path_(std::move(path)) {
  if (!object.is_object()) {
    if (path_.empty()) throw HttpError(400, "the request body must be a JSON object");
    fail_field(path_, "expected an object, got ", json_type_name(object));
  }
}

const Json* FieldReader::find(const std::string& key) const {
  auto it = object_->find(key);
  if (it == object_->end() || it->is_null()) return nullptr;
  return &*it;
}

std::string FieldReader::path_of(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

std::optional<bool> FieldReader::get_bool(const std::string& key) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean())
    fail_field(path_of(key), "expected true or false, got ", json_type_name(*v));
  return v->get<bool>();
}

std::optional<int64_t> FieldReader::get_int(const std::string& key, int64_t lo, int64_t hi) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  int64_t value = 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) {
      fail_field(path_of(key), "must be in [", lo, ", ", hi, "], got ", u);
    }
    value = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    value = v->get<int64_t>();
  } else if (v->is_number_float()) {
    const double d = v->get<double>();
    // Integral floats only; the bounds keep the cast defined.
    if (!(d == std::floor(d)) || !(std::fabs(d) < 9.2e18)) {
      fail_field(path_of(key), "expected an integer, got ", json_excerpt(*v));
    }
    value = static_cast<int64_t>(d);
  } else {
    fail_field(path_of(key), "expected an integer, got ", json_type_name(*v));
  }
  if (value < lo || value > hi) {
    fail_field(path_of(key), "must be in [", lo, ", ", hi, "], got ", value);
  }
  return value;
}

std::optional<double> FieldReader::get_number(const std::string& key) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) fail_field(path_of(key), "expected a number, got ", json_type_name(*v));
  return v->get<double>();
}

std::optional<std::string> FieldReader::get_string(const std::string& key) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail_field(path_of(key), "expected a string, got ", json_type_name(*v));
  return v->get<std::string>();
}

std::optional<FieldReader> FieldReader::get_object(const std::string& key) const {
  const Json* v = find(key);
  if (!v) return std::nullopt;
  return FieldReader(*v, path_of(key));
}

void FieldReader::reject_unless(const std::string& key, const Json& neutral) const {
  const Json* v = find(key);
  if (!v) return;
  const bool same = v->is_number() && neutral.is_number()
                        ? v->get<double>() == neutral.get<double>()
                        : *v == neutral;
  if (!same) {
    fail_field(path_of(key), "is not supported by this server (only ", neutral.dump(),
               " is accepted), got ", json_excerpt(*v));
  }
}

}  // namespace vortex::server
