#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "tokenizer/sequence_limits.h"

namespace vortex::tok {
namespace {

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}

  std::string normalize(std::string_view text) const override {
    // Pure ASCII is invariant under every Unicode normalization form.
    bool ascii = true;
    for (char c : text) ascii &= static_cast<unsigned char>(c) < 0x80;
    if (ascii) return std::string(text);
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                static_cast<utf8proc_ssize_t>(text.size()), &out,
                                static_cast<utf8proc_option_t>(options_));
    if (n < 0) fail("tokenizer: cannot normalize text: ", utf8proc_errmsg(n));
    std::string result(reinterpret_cast<char*>(out), static_cast<size_t>(n));
    std::free(out);
    return result;
  }

 private:
  int options_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}

  std::string normalize(std::string_view text) const override {
    std::string s(text);
    for (const auto& step : steps_) s = step->normalize(s);
    return s;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// `depth` counts the Sequences around `spec`; `parts` the parts built so far.
std::unique_ptr<Normalizer> build(const Json& spec, const std::string& file,
                                  const std::string& field, int depth, int& parts) {
  if (spec.is_null()) return nullptr;
  count_sequence_part(file, field, parts);
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    fail(file, ": field '", field, "' must be an object with a string 'type'");
  }
  const std::string type = spec["type"];
  const int base = UTF8PROC_STABLE;
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(base | UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(base | UTF8PROC_DECOMPOSE);
  if (type == "NFKC") {
    return std::make_unique<UnicodeNormalizer>(base | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  }
  if (type == "NFKD") {
    return std::make_unique<UnicodeNormalizer>(base | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  }
  if (type == "Sequence") {
    check_sequence_depth(file, field, depth);
    const auto it = spec.find("normalizers");
    if (it == spec.end() || !it->is_array()) {
      fail(file, ": field '", field, ".normalizers' must be an array");
    }
    const Json& list = *it;
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      auto step = build(list[i], file, str_cat(field, ".normalizers[", i, "]"), depth + 1, parts);
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  fail(file, ": field '", field, ".type': unsupported normalizer '", printable(type),
       "' (supported: NFC, NFD, NFKC, NFKD, Sequence)");
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Json& spec, const std::string& file,
                                            const std::string& field) {
  int parts = 0;
  return build(spec, file, field, 0, parts);
}

}  // namespace vortex::tok
