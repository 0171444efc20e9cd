// Files for the fuzz bodies whose APIs only read from disk: one folder per process, removed at
// exit, whose files each input overwrites.
#pragma once

#include <string>
#include <string_view>

namespace vortex::fuzz {

// The per-process scratch folder (created on first use, on a RAM-backed file system when there
// is one, since every input writes there).
const std::string& scratch_dir();

// Writes `content` to scratch_dir()/name, replacing what was there; returns the path.
std::string write_scratch_file(const std::string& name, std::string_view content);

// Removes scratch_dir()/name if present.
void remove_scratch_file(const std::string& name);

}  // namespace vortex::fuzz
