// Run-time compilation of generated CUDA source with NVRTC, loaded with dlopen (the binary does
// not link it, so it starts without the CUDA toolkit). Compiled code is cached on disk by a hash
// of everything that determines it (source, target architecture, NVRTC version, options).
#pragma once

#include <string>
#include <vector>

namespace vortex::flow {

struct NvrtcOptions {
  std::string arch = "sm_90a";  // the target: "sm_90a", "sm_80", ...
  std::string cache_dir;        // "" = $VORTEX_CACHE_DIR, else $XDG_CACHE_HOME/vortex, else
                                // ~/.cache/vortex (kernels/ below it); "-" = no disk cache
  std::string display_name;     // the file name NVRTC messages name (e.g. "quest.py.cu")
};

struct NvrtcResult {
  std::vector<char> cubin;  // the device code for opt.arch
  std::string log;          // NVRTC's log (warnings), possibly empty
  std::string cache_path;   // where it was read from or stored ("" without a cache)
  bool from_cache = false;
};

// True when libnvrtc can be loaded; otherwise false with the reason in *why.
bool nvrtc_available(std::string* why = nullptr);
std::string nvrtc_version();  // "13.0", or "" when unavailable

// Compiles `source` to a CUBIN for opt.arch (or returns the cached one). Throws vortex::Error
// with NVRTC's log when compilation fails, and when NVRTC cannot be loaded.
NvrtcResult nvrtc_compile(const std::string& source, const NvrtcOptions& opt);

}  // namespace vortex::flow
