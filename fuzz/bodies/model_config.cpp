#include <string>

#include "bodies/temp_input.h"
#include "core/json_file.h"
#include "fuzz_targets.h"
#include "model/model_config.h"

namespace vortex::fuzz {

void fuzz_model_config(std::string_view data) {
  ModelConfig config;
  const size_t nul = data.find('\0');
  if (nul == std::string_view::npos) {
    config = parse_model_config(parse_json(std::string(data), "config.json"), "config.json");
  } else {
    // generation_config.json is only read beside config.json, from a directory.
    write_scratch_file("config.json", data.substr(0, nul));
    write_scratch_file("generation_config.json", data.substr(nul + 1));
    config = load_model_config(scratch_dir());
  }

  // What `vortex check --model DIR` and the runners derive from an accepted config.
  if (config.num_kv_heads <= 0 || config.num_heads % config.num_kv_heads != 0 ||
      config.head_dim <= 0)
    throw FuzzInvariantError("parse_model_config accepted heads " +
                             std::to_string(config.num_heads) + "/" +
                             std::to_string(config.num_kv_heads) + ", head_dim " +
                             std::to_string(config.head_dim));
  (void)config.group_size();
  (void)(int64_t{config.q_dim()} + config.kv_dim());

  // Checkpoints are written with model_config_to_json and read back with parse_model_config:
  // what was accepted once must be accepted again, unchanged.
  const Json written = model_config_to_json(config);
  Json again;
  try {
    again = model_config_to_json(parse_model_config(written, "written config.json"));
  } catch (const Error& e) {
    throw FuzzInvariantError(std::string("a written config is refused: ") + e.what());
  }
  if (again != written)
    throw FuzzInvariantError("config changed on a write/read round trip: " + written.dump() +
                             " became " + again.dump());
}

}  // namespace vortex::fuzz
