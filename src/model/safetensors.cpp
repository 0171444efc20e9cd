#include "model/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <optional>
#include <set>

#include "core/error.h"

namespace vortex {
namespace {

namespace fs = std::filesystem;

struct SafetensorsDType {
  std::string_view name;
  DType dtype;
};

constexpr SafetensorsDType kDTypes[] = {
    {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16},
    {"I32", DType::kI32}, {"I64", DType::kI64}, {"U8", DType::kU8},
};

std::string supported_dtypes() {
  std::string out;
  for (const SafetensorsDType& d : kDTypes) out += str_cat(out.empty() ? "" : ", ", d.name);
  return out;
}

std::string_view safetensors_dtype_name(DType t) {
  for (const SafetensorsDType& d : kDTypes) {
    if (d.dtype == t) return d.name;
  }
  return "?";
}

struct ParsedFile {
  std::shared_ptr<MappedFile> file;
  std::map<std::string, TensorEntry> entries;
  std::map<std::string, std::string> metadata;
};

// A non-negative JSON integer, or nullopt.
std::optional<uint64_t> as_u64(const Json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

// Where one tensor's bytes lie in the data section, for the overlap check.
struct Extent {
  uint64_t begin, end;
  const std::string* name;
};

TensorEntry parse_entry(const std::string& path, const std::string& name, const Json& e,
                        uint64_t data_start, const unsigned char* data, uint64_t data_size,
                        Extent& extent) {
  auto bad = [&](const auto&... what) { fail(path, ": tensor '", printable(name), "' ", what...); };
  if (!e.is_object()) bad("has a header entry that is not an object: ", json_excerpt(e));
  TensorEntry entry;
  entry.name = name;
  entry.file = path;

  auto dtype_it = e.find("dtype");
  if (dtype_it == e.end()) bad("has no 'dtype' in the header");
  if (!dtype_it->is_string()) bad("has a 'dtype' that is not a string: ", json_excerpt(*dtype_it));
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  auto known = std::find_if(std::begin(kDTypes), std::end(kDTypes),
                            [&](const SafetensorsDType& d) { return d.name == dtype_name; });
  if (known == std::end(kDTypes)) {
    bad("has unsupported dtype '", printable(dtype_name), "' (supported: ", supported_dtypes(),
        ")");
  }
  entry.dtype = known->dtype;
  const uint64_t element_size = dtype_size(entry.dtype);

  auto shape_it = e.find("shape");
  if (shape_it == e.end()) bad("has no 'shape' in the header");
  if (!shape_it->is_array()) bad("has a 'shape' that is not a list: ", json_excerpt(*shape_it));
  if (shape_it->size() > kMaxTensorRank) {
    bad("has a shape of ", shape_it->size(), " dimensions; at most ", kMaxTensorRank,
        " are supported");
  }
  // numel * element_size must fit in int64 (Tensor sizes are int64) and so in the address space.
  constexpr uint64_t kMaxBytes = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t numel = 1;
  bool has_zero = false, overflow = false;
  for (const Json& d : *shape_it) {
    std::optional<uint64_t> dim = as_u64(d);
    if (!dim || *dim > kMaxBytes) {
      bad("has a 'shape' that is not a list of non-negative integers: ", json_excerpt(*shape_it));
    }
    // A zero anywhere makes the tensor empty, however large the other dimensions.
    if (*dim == 0) {
      has_zero = true;
    } else if (!overflow && numel > kMaxBytes / element_size / *dim) {
      overflow = true;
    } else if (!overflow) {
      numel *= *dim;
    }
    entry.shape.push_back(static_cast<int64_t>(*dim));
  }
  if (has_zero) {
    numel = 0;
  } else if (overflow) {
    bad("has a shape ", json_excerpt(*shape_it), " too large to address");
  }

  auto offsets_it = e.find("data_offsets");
  if (offsets_it == e.end()) bad("has no 'data_offsets' in the header");
  std::optional<uint64_t> begin, end;
  if (offsets_it->is_array() && offsets_it->size() == 2) {
    begin = as_u64((*offsets_it)[0]);
    end = as_u64((*offsets_it)[1]);
  }
  if (!begin || !end || *begin > *end) {
    bad("has 'data_offsets' ", json_excerpt(*offsets_it),
        ", expected [begin, end] with begin <= end");
  }
  const uint64_t expected = numel * element_size;
  if (*end - *begin != expected) {
    bad("has data_offsets ", json_excerpt(*offsets_it), " spanning ", *end - *begin,
        " bytes, but shape ", shape_str(entry.shape), " of ", dtype_name, " needs ", expected,
        " bytes");
  }
  if (*end > data_size) {
    bad("has data_offsets ", json_excerpt(*offsets_it), " beyond the end of the data section (",
        data_size, " bytes): the file is truncated or corrupt");
  }
  // The map starts on a page boundary, so the offset in the file decides the alignment. Kernels
  // read the data in place as float* or uint16_t*, which misaligned data would make undefined.
  // An empty tensor has nothing to read.
  if (expected > 0 && (data_start + *begin) % element_size != 0) {
    bad("starts at byte ", data_start + *begin, " of the file, which is not a multiple of the ",
        element_size, "-byte size of ", dtype_name,
        ": misaligned data cannot be used in place (rewrite the file with the safetensors "
        "library)");
  }
  entry.data = data + *begin;
  extent = Extent{*begin, *end, nullptr};
  return entry;
}

// Two tensors sharing bytes would alias: writing one (nothing does today) or a crafted file
// could make one tensor's values depend on another's.
void check_no_overlap(const std::string& path, std::vector<Extent>& extents) {
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < extents.size(); ++i) {
    const Extent& prev = extents[i - 1];
    const Extent& cur = extents[i];
    if (cur.begin < prev.end) {
      fail(path, ": tensors '", printable(*prev.name), "' (bytes ", prev.begin, "..", prev.end,
           ") and '", printable(*cur.name), "' (bytes ", cur.begin, "..", cur.end,
           ") overlap in the data section");
    }
  }
}

ParsedFile parse_file(const std::string& path) {
  ParsedFile out;
  out.file = MappedFile::open(path);
  const unsigned char* bytes = out.file->data();
  uint64_t size = out.file->size();
  if (size < 8) {
    fail(path, ": not a safetensors file: ", size,
         " bytes is shorter than the 8-byte header length prefix");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kMaxSafetensorsHeaderBytes) {
    fail(path, ": header length ", header_len, " is over the limit of ", kMaxSafetensorsHeaderBytes,
         " bytes: not a safetensors file, or corrupt");
  }
  if (header_len > size - 8) {
    fail(path, ": header length ", header_len, " runs past the end of the file (", size,
         " bytes): not a safetensors file, or truncated");
  }
  std::string_view header_text(reinterpret_cast<const char*>(bytes + 8), header_len);
  Json header = parse_json(header_text, str_cat(path, ": safetensors header"));
  if (!header.is_object()) {
    fail(path, ": safetensors header must be a JSON object, got ", header.type_name());
  }
  const uint64_t data_start = 8 + header_len;
  const unsigned char* data = bytes + data_start;
  uint64_t data_size = size - data_start;
  std::vector<Extent> extents;
  for (const auto& [name, value] : header.get_ref<const Json::object_t&>()) {
    if (name == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object()) {
        fail(path, ": '__metadata__' must be an object of strings, got ", json_excerpt(value));
      }
      for (const auto& [k, v] : value.get_ref<const Json::object_t&>()) {
        if (!v.is_string()) {
          fail(path, ": '__metadata__' entry '", printable(k),
               "' is not a string: ", json_excerpt(v));
        }
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    Extent extent{};
    TensorEntry entry = parse_entry(path, name, value, data_start, data, data_size, extent);
    auto placed = out.entries.emplace(name, std::move(entry)).first;
    extent.name = &placed->first;
    if (extent.end > extent.begin) extents.push_back(extent);
  }
  check_no_overlap(path, extents);
  return out;
}

// The file a shard name of the index stands for. Names are paths relative to the model
// directory; one that is absolute or climbs with ".." could make a downloaded checkpoint read
// any file on the machine, so it is refused. (Symlinks are followed: the Hugging Face cache
// links every file of a snapshot to a blob outside it.)
fs::path shard_path(const std::string& dir, const std::string& index, const std::string& tensor,
                    const std::string& shard) {
  auto bad = [&](const char* why) {
    fail(index, ": field 'weight_map' gives tensor '", printable(tensor), "' the shard '",
         printable(shard), "', which ", why);
  };
  if (shard.empty()) bad("is empty");
  for (char c : shard) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) bad("holds a control character");
  }
  const fs::path relative(shard);
  if (relative.is_absolute() || relative.has_root_name() || relative.has_root_directory()) {
    bad("is an absolute path; shards must be inside the model directory");
  }
  for (const fs::path& part : relative) {
    if (part == "..") bad("climbs out of the model directory with '..'");
  }
  return fs::path(dir) / relative.lexically_normal();
}

}  // namespace

SafetensorsArchive SafetensorsArchive::open_file(const std::string& path) {
  ParsedFile parsed = parse_file(path);
  SafetensorsArchive archive;
  archive.source_ = path;
  archive.metadata_ = std::move(parsed.metadata);
  for (auto& [name, entry] : parsed.entries) {
    archive.slots_.emplace(name, Slot{std::move(entry), parsed.file});
  }
  return archive;
}

SafetensorsArchive SafetensorsArchive::open_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    fail(dir, ": not a directory (expected a model checkpoint folder)");
  }
  fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  if (!fs::exists(fs::symlink_status(index_path, ec))) {
    fs::path single = fs::path(dir) / "model.safetensors";
    if (!fs::exists(fs::symlink_status(single, ec))) {
      fail(dir, ": has neither model.safetensors nor model.safetensors.index.json");
    }
    return open_file(single.string());
  }

  std::string index = index_path.string();
  Json j = read_json_file(index);
  if (!j.is_object()) fail(index, ": expected a JSON object, got ", j.type_name());
  auto map_it = j.find("weight_map");
  if (map_it == j.end()) fail(index, ": missing field 'weight_map'");
  if (!map_it->is_object()) {
    fail(index, ": field 'weight_map' must be an object of name: shard, got ",
         json_excerpt(*map_it));
  }

  SafetensorsArchive archive;
  archive.source_ = dir;
  std::map<std::string, ParsedFile> shards;  // by normalized path: each file is mapped once
  for (const auto& [name, shard_value] : map_it->get_ref<const Json::object_t&>()) {
    if (!shard_value.is_string()) {
      fail(index, ": field 'weight_map' gives tensor '", printable(name),
           "' a shard that is not a string: ", json_excerpt(shard_value));
    }
    const std::string& shard = shard_value.get_ref<const std::string&>();
    const std::string file = shard_path(dir, index, name, shard).string();
    auto it = shards.find(file);
    if (it == shards.end()) {
      if (!fs::exists(fs::symlink_status(file, ec))) {
        fail(index, ": shard '", printable(shard), "' (holding tensor '", printable(name),
             "') is missing from ", dir);
      }
      ParsedFile parsed = parse_file(file);
      if (archive.metadata_.empty()) archive.metadata_ = parsed.metadata;
      it = shards.emplace(file, std::move(parsed)).first;
    }
    auto entry = it->second.entries.find(name);
    if (entry == it->second.entries.end()) {
      fail(index, ": lists tensor '", printable(name), "' in shard '", printable(shard),
           "', but that shard has no such tensor");
    }
    archive.slots_.emplace(name, Slot{entry->second, it->second.file});
  }
  return archive;
}

const TensorEntry* SafetensorsArchive::find(const std::string& name) const {
  auto it = slots_.find(name);
  return it == slots_.end() ? nullptr : &it->second.entry;
}

Tensor SafetensorsArchive::tensor(const std::string& name) const {
  auto it = slots_.find(name);
  if (it == slots_.end()) fail(source_, ": no tensor named '", printable(name), "'");
  const Slot& slot = it->second;
  return Tensor::view(const_cast<void*>(slot.entry.data), slot.entry.dtype, slot.entry.shape,
                      slot.file);
}

std::vector<std::string> SafetensorsArchive::names() const {
  std::vector<std::string> out;
  out.reserve(slots_.size());
  for (const auto& [name, slot] : slots_) out.push_back(name);
  return out;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const Json& metadata) {
  Json header = Json::object();
  if (!metadata.is_null()) {
    if (!metadata.is_object()) fail(path, ": safetensors metadata must be an object of strings");
    for (const auto& [k, v] : metadata.items()) {
      if (!v.is_string()) fail(path, ": safetensors metadata '", k, "' must be a string");
    }
    if (!metadata.empty()) header["__metadata__"] = metadata;
  }

  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") fail(path, ": '__metadata__' is reserved, not a tensor name");
    if (!seen.insert(name).second) fail(path, ": tensor '", name, "' is given twice");
    if (!t.defined()) fail(path, ": tensor '", name, "' is undefined");
  }
  // Largest elements first: every tensor then starts at a multiple of its element size.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    size_t sa = dtype_size(tensors[a].second.dtype()), sb = dtype_size(tensors[b].second.dtype());
    return sa != sb ? sa > sb : tensors[a].first < tensors[b].first;
  });
  uint64_t offset = 0;
  for (size_t i : order) {
    const auto& [name, t] = tensors[i];
    header[name] = {{"dtype", std::string(safetensors_dtype_name(t.dtype()))},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned

  // Write beside the target and rename, so a failed write never leaves a half file behind.
  std::string tmp = path + ".partial";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(path, ": cannot create: ", std::strerror(errno));
    unsigned char len[8];
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (size_t i : order) {
      const Tensor& t = tensors[i].second;
      out.write(static_cast<const char*>(t.data()), static_cast<std::streamsize>(t.nbytes()));
    }
    out.flush();
    if (!out) {
      int e = errno;
      out.close();
      std::error_code ignored;
      fs::remove(tmp, ignored);
      fail(path, ": write failed: ", std::strerror(e));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) fail(path, ": cannot move the written file into place: ", ec.message());
}

}  // namespace vortex
