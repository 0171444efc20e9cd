#include "core/json_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace vortex {
namespace {

// Byte offset where `text` first nests deeper than `max_depth` (brackets inside strings do not
// count), or npos. Only run after the parser refused the depth, to say where.
size_t too_deep_at(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string_view::npos;
}

// Builds the document from nlohmann's SAX events. The parser itself is iterative, so checking
// depth here, before the tree exists, is what keeps every later walk of it shallow. Containers
// are filled in place through pointers, as nlohmann's own DOM builder does: a parent never grows
// while a child is open, so the pointers stay valid.
class BoundedDomBuilder : public nlohmann::json_sax<Json> {
 public:
  explicit BoundedDomBuilder(Json& root) : root_(root) {}

  bool null() override { return add(Json(nullptr)) != nullptr; }
  bool boolean(bool v) override { return add(Json(v)) != nullptr; }
  bool number_integer(number_integer_t v) override { return add(Json(v)) != nullptr; }
  bool number_unsigned(number_unsigned_t v) override { return add(Json(v)) != nullptr; }
  bool number_float(number_float_t v, const string_t&) override { return add(Json(v)) != nullptr; }
  bool string(string_t& v) override { return add(Json(std::move(v))) != nullptr; }
  bool binary(binary_t&) override { return refuse("binary values are not JSON"); }

  bool start_object(std::size_t) override { return open(Json::object()); }
  bool start_array(std::size_t) override { return open(Json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& k) override {
    if (!count()) return false;
    key_ = std::move(k);
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const Json::exception& e) override {
    // nlohmann prefixes "[json.exception.parse_error.101] "; the rest is the useful part, but its
    // "last read" token can be a whole (huge) string, hence the cut.
    std::string what = e.what();
    if (const size_t bracket = what.find("] "); bracket != std::string::npos) {
      what = what.substr(bracket + 2);
    }
    error_ = str_cat("invalid JSON at byte ", position, ": ", printable(what, 200));
    return false;
  }

  const std::string& error() const { return error_; }
  bool too_deep() const { return too_deep_; }

 private:
  bool refuse(std::string message) {
    error_ = std::move(message);
    return false;
  }

  bool count() {
    if (++values_ > kMaxJsonValues) {
      return refuse(str_cat("more than ", kMaxJsonValues, " JSON values (the limit)"));
    }
    return true;
  }

  // Places `v` in the open container (or as the root); nullptr when refused.
  Json* add(Json v) {
    if (!count()) return nullptr;
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Json& parent = *stack_.back();
    if (parent.is_array()) {
      auto& array = parent.get_ref<Json::array_t&>();
      array.push_back(std::move(v));
      return &array.back();
    }
    auto& object = parent.get_ref<Json::object_t&>();
    auto [it, inserted] = object.emplace(key_, std::move(v));
    if (!inserted) {
      refuse(str_cat("the key \"", printable(key_), "\" appears twice in ", where()));
      return nullptr;
    }
    return &it->second;
  }

  bool open(Json container) {
    if (static_cast<int>(stack_.size()) >= kMaxJsonDepth) {
      too_deep_ = true;
      return refuse(str_cat("nested deeper than ", kMaxJsonDepth, " levels (the limit)"));
    }
    std::string label = stack_.empty()              ? std::string()
                        : stack_.back()->is_array() ? str_cat("[", stack_.back()->size(), "]")
                                                    : str_cat(".", printable(key_, 40));
    Json* placed = add(std::move(container));
    if (!placed) return false;
    stack_.push_back(placed);
    labels_.push_back(std::move(label));
    return true;
  }

  bool close() {
    stack_.pop_back();
    labels_.pop_back();
    return true;
  }

  // The dotted path of the innermost open object, for messages: "the object at 'model.vocab'".
  std::string where() const {
    std::string path;
    for (const std::string& l : labels_) path += l;
    if (path.empty()) return "the top-level object";
    if (path[0] == '.') path.erase(0, 1);
    return str_cat("the object at '", printable(path, 120), "'");
  }

  Json& root_;
  std::vector<Json*> stack_;
  std::vector<std::string> labels_;
  std::string key_;
  uint64_t values_ = 0;
  std::string error_;
  bool too_deep_ = false;
};

}  // namespace

Json parse_json(std::string_view text, const std::string& what) {
  Json root;
  BoundedDomBuilder builder(root);
  if (!Json::sax_parse(text, &builder)) {
    if (builder.too_deep()) {
      const size_t at = too_deep_at(text, kMaxJsonDepth);
      if (at != std::string_view::npos) {
        fail(what, ": JSON nested deeper than ", kMaxJsonDepth, " levels (the limit) at byte ", at);
      }
    }
    fail(what, ": ", builder.error());
  }
  return root;
}

Json read_json_file(const std::string& path) {
  // stat first: opening a FIFO for reading would block until a writer comes.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) fail(path, ": cannot open (does it exist?)");
    fail(path, ": cannot open: ", std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    fail(path, ": is ", S_ISDIR(st.st_mode) ? "a directory" : "not a regular file",
         ", expected a JSON file");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxJsonFileBytes) {
    fail(path, ": is ", st.st_size, " bytes, over the limit of ", kMaxJsonFileBytes,
         " bytes for a JSON file");
  }
  // O_NONBLOCK in case the path was swapped for a FIFO since the stat.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  std::string text;
  struct stat fst {};
  if (::fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
    ::close(fd);
    fail(path, ": is not a regular file, expected a JSON file");
  }
  // Read to the end rather than trusting st_size (the file may grow), but never past the limit.
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      fail(path, ": read failed: ", std::strerror(e));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxJsonFileBytes) {
      ::close(fd);
      fail(path, ": is over the limit of ", kMaxJsonFileBytes, " bytes for a JSON file");
    }
  }
  ::close(fd);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    fail(path, ": is empty, expected JSON");
  }
  return parse_json(text, path);
}

namespace {

void excerpt_string(std::string_view s, size_t max_chars, std::string& out) {
  // Only the part that can show is escaped: the string may be the size of the file.
  const size_t room = max_chars - out.size() + 1;
  out += Json(std::string(s.substr(0, room))).dump(-1, ' ', false, Json::error_handler_t::replace);
}

void excerpt_into(const Json& v, size_t max_chars, std::string& out) {
  if (out.size() > max_chars) return;
  if (v.is_string()) {
    excerpt_string(v.get_ref<const std::string&>(), max_chars, out);
  } else if (v.is_array()) {
    out += '[';
    bool first = true;
    for (const Json& item : v) {
      if (out.size() > max_chars) return;
      if (!first) out += ',';
      first = false;
      excerpt_into(item, max_chars, out);
    }
    out += ']';
  } else if (v.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, item] : v.get_ref<const Json::object_t&>()) {
      if (out.size() > max_chars) return;
      if (!first) out += ',';
      first = false;
      excerpt_string(key, max_chars, out);
      out += ':';
      excerpt_into(item, max_chars, out);
    }
    out += '}';
  } else {
    out += v.dump();
  }
}

}  // namespace

std::string json_excerpt(const Json& value, size_t max_chars) {
  std::string out;
  // Each level adds at least one character, so the recursion is at most max_chars deep.
  excerpt_into(value, max_chars, out);
  return printable(out, max_chars);
}

}  // namespace vortex
