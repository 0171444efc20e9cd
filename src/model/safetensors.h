// Reading safetensors checkpoints in place through a memory map (one file, or shards listed by
// `model.safetensors.index.json`), and writing small ones. Every error names the file, and the
// tensor where there is one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/json_file.h"
#include "core/mapped_file.h"
#include "core/tensor.h"

namespace vortex {

// A header length prefix above this is refused before anything is read (the limit of the
// reference safetensors implementation); the header then parses under parse_json's limits.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;
// Tensors of more dimensions are refused (checkpoints of LLMs hold at most 2 or 3).
inline constexpr size_t kMaxTensorRank = 16;

struct TensorEntry {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  const void* data = nullptr;  // inside the file's mmap, aligned to the dtype's size
  std::string file;            // path of the file that holds it
};

// Every header entry is checked against the file before anything uses it: known dtype, at most
// kMaxTensorRank non-negative dims, data_offsets [begin, end] inside the data section with
// end - begin == numel * dtype size (computed without overflow), data aligned to the dtype, no
// two tensors sharing bytes, no name given twice; `__metadata__` (null or an object of strings)
// is not a tensor. Shard names in an index must be relative paths that do not climb with "..".
// Every error is a vortex::Error naming the file and, where there is one, the tensor.
class SafetensorsArchive {
 public:
  // DIR/model.safetensors.index.json if present (all its shards), else DIR/model.safetensors.
  static SafetensorsArchive open_dir(const std::string& dir);
  static SafetensorsArchive open_file(const std::string& path);

  const TensorEntry* find(const std::string& name) const;  // nullptr if absent
  // A view into the mmap, which the tensor keeps alive; throws if `name` is absent.
  Tensor tensor(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  size_t size() const { return slots_.size(); }
  // What to name in messages about the checkpoint as a whole: the file for a single file, the
  // directory for a sharded checkpoint.
  const std::string& source() const { return source_; }
  // The `__metadata__` of the file (of the first shard when sharded); empty if none.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Slot {
    TensorEntry entry;
    std::shared_ptr<MappedFile> file;
  };
  std::string source_;
  std::map<std::string, Slot> slots_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (in any order; names must be unique) as one safetensors file, with
// `metadata` (an object of string values, or null) as `__metadata__`. Tensors are laid out by
// decreasing element size so that each is aligned to its dtype when the file is mapped.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const Json& metadata = {});

}  // namespace vortex
