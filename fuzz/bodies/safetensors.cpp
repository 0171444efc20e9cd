#include <cstdint>
#include <string>

#include "bodies/temp_input.h"
#include "core/dtype.h"
#include "fuzz_targets.h"
#include "model/safetensors.h"

namespace vortex::fuzz {

void fuzz_safetensors(std::string_view data) {
  // SafetensorsArchive maps a file: there is no in-memory reader.
  const std::string path = write_scratch_file("model.safetensors", data);
  const SafetensorsArchive archive = SafetensorsArchive::open_file(path);
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
    // Read every byte the header promises, as load_model_weights' users will: an entry that
    // points outside the mapping faults here.
    const auto* p = static_cast<const unsigned char*>(t.data());
    unsigned sum = 0;
    for (size_t i = 0; i < bytes; ++i) sum += p[i];
    volatile unsigned sink = sum;
    (void)sink;
  }
}

}  // namespace vortex::fuzz
