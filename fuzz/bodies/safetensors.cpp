#include <cstdint>
#include <string>

#include "bodies/temp_input.h"
#include "core/dtype.h"
#include "fuzz_targets.h"
#include "model/safetensors.h"

namespace vortex::fuzz {
namespace {

// Every tensor's view must cover exactly what its header entry says, and every byte of it must be
// readable, as it is when load_model_weights' users run the model.
void read_every_tensor(const SafetensorsArchive& archive) {
  for (const auto& [key, value] : archive.metadata()) (void)(key.size() + value.size());
  for (const std::string& name : archive.names()) {
    const TensorEntry* entry = archive.find(name);
    if (!entry) throw FuzzInvariantError("names() lists '" + name + "' but find() misses it");
    const Tensor t = archive.tensor(name);
    int64_t numel = 1;
    for (int64_t d : entry->shape) numel *= d;
    const size_t bytes = static_cast<size_t>(numel) * dtype_size(entry->dtype);
    if (t.nbytes() != bytes)
      throw FuzzInvariantError("tensor '" + name + "' views " + std::to_string(t.nbytes()) +
                               " bytes, its header entry says " + std::to_string(bytes));
    const auto* p = static_cast<const unsigned char*>(t.data());
    unsigned sum = 0;
    for (size_t i = 0; i < bytes; ++i) sum += p[i];
    volatile unsigned sink = sum;
    (void)sink;
  }
}

}  // namespace

void fuzz_safetensors(std::string_view data) {
  // SafetensorsArchive maps files: there is no in-memory reader. An input that starts with '{'
  // is a sharded checkpoint, model.safetensors.index.json up to the first NUL and then the one
  // shard it may name, kShard; anything else is a single file.
  constexpr const char* kShard = "model-00001-of-00001.safetensors";
  const size_t nul = data.find('\0');
  if (!data.empty() && data.front() == '{' && nul != std::string_view::npos) {
    write_scratch_file("model.safetensors.index.json", data.substr(0, nul));
    write_scratch_file(kShard, data.substr(nul + 1));
    read_every_tensor(SafetensorsArchive::open_dir(scratch_dir()));
    return;
  }
  read_every_tensor(SafetensorsArchive::open_file(write_scratch_file("model.safetensors", data)));
}

}  // namespace vortex::fuzz
