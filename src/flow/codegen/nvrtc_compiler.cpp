// NVRTC behind dlopen, and the on-disk cache of the CUBINs it produces. The few NVRTC entry
// points are declared here so that this library needs no CUDA headers. A cache entry is the
// CUBIN followed by a footer (magic, length, checksum), written to a temporary file and renamed
// into place, so a reader sees a whole entry or none; an entry that fails its checksum is
// compiled again and overwritten.
#include "flow/codegen/nvrtc_compiler.h"

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/error.h"

namespace vortex::flow {
namespace {

// The NVRTC C API, as far as it is used here (nvrtc.h, CUDA 11 and later).
using nvrtcResult = int;
using nvrtcProgram = struct _nvrtcProgram*;
constexpr nvrtcResult kNvrtcSuccess = 0;

struct NvrtcApi {
  void* lib = nullptr;
  std::string error;  // why it could not be loaded
  const char* (*get_error_string)(nvrtcResult) = nullptr;
  nvrtcResult (*version)(int*, int*) = nullptr;
  nvrtcResult (*create_program)(nvrtcProgram*, const char*, const char*, int, const char* const*,
                                const char* const*) = nullptr;
  nvrtcResult (*destroy_program)(nvrtcProgram*) = nullptr;
  nvrtcResult (*compile_program)(nvrtcProgram, int, const char* const*) = nullptr;
  nvrtcResult (*get_log_size)(nvrtcProgram, size_t*) = nullptr;
  nvrtcResult (*get_log)(nvrtcProgram, char*) = nullptr;
  nvrtcResult (*get_cubin_size)(nvrtcProgram, size_t*) = nullptr;
  nvrtcResult (*get_cubin)(nvrtcProgram, char*) = nullptr;
  std::string version_text;
};

// Where libnvrtc may live: the loader's search path first, then the toolkit's usual places.
std::vector<std::string> library_candidates() {
  std::vector<std::string> names;
  if (const char* env = std::getenv("VORTEX_NVRTC"); env && *env) names.push_back(env);
  names.push_back("libnvrtc.so.13");
  names.push_back("libnvrtc.so");
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"}) {
    const char* root = std::getenv(var);
    if (!root || !*root) continue;
    names.push_back(std::string(root) + "/lib64/libnvrtc.so.13");
    names.push_back(std::string(root) + "/lib64/libnvrtc.so");
  }
  names.push_back("/usr/local/cuda/lib64/libnvrtc.so.13");
  names.push_back("/usr/local/cuda/lib64/libnvrtc.so");
  return names;
}

template <class F>
bool resolve(void* lib, const char* name, F& fn, std::string& error) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn) error = str_cat("libnvrtc lacks ", name);
  return fn != nullptr;
}

const NvrtcApi& nvrtc_api() {
  static NvrtcApi api = [] {
    NvrtcApi a;
    std::string tried;
    for (const std::string& name : library_candidates()) {
      a.lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (a.lib) break;
      const char* why = dlerror();
      tried += str_cat("\n  ", why ? why : name.c_str());
    }
    if (!a.lib) {
      a.error =
          "cannot load libnvrtc (the CUDA toolkit's run-time compiler); set VORTEX_NVRTC "
          "to its path or CUDA_HOME to the toolkit. Tried:" +
          tried;
      return a;
    }
    bool ok = resolve(a.lib, "nvrtcGetErrorString", a.get_error_string, a.error) &&
              resolve(a.lib, "nvrtcVersion", a.version, a.error) &&
              resolve(a.lib, "nvrtcCreateProgram", a.create_program, a.error) &&
              resolve(a.lib, "nvrtcDestroyProgram", a.destroy_program, a.error) &&
              resolve(a.lib, "nvrtcCompileProgram", a.compile_program, a.error) &&
              resolve(a.lib, "nvrtcGetProgramLogSize", a.get_log_size, a.error) &&
              resolve(a.lib, "nvrtcGetProgramLog", a.get_log, a.error) &&
              resolve(a.lib, "nvrtcGetCUBINSize", a.get_cubin_size, a.error) &&
              resolve(a.lib, "nvrtcGetCUBIN", a.get_cubin, a.error);
    if (!ok) {
      dlclose(a.lib);
      a.lib = nullptr;
      return a;
    }
    int major = 0, minor = 0;
    if (a.version(&major, &minor) == kNvrtcSuccess)
      a.version_text = std::to_string(major) + "." + std::to_string(minor);
    return a;
  }();
  return api;
}

// FNV-1a, 64 bits, from a given basis (two bases give two independent-enough halves of a key).
uint64_t fnv1a(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

constexpr uint64_t kBasisA = 0xcbf29ce484222325ull;
constexpr uint64_t kBasisB = 0x84222325cbf29ce4ull;

std::string hex64(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<size_t>(i)] = digits[v & 15];
  return s;
}

// The cache key: every input that changes the CUBIN, each prefixed by its length so that
// different splits of the same bytes differ.
std::string cache_key(const std::string& source, const std::string& arch,
                      const std::string& version, const std::vector<std::string>& options) {
  std::string blob = "vortex-nvrtc-cache-v1";
  auto add = [&](const std::string& s) {
    blob += std::to_string(s.size());
    blob += ':';
    blob += s;
  };
  add(source);
  add(arch);
  add(version);
  for (const std::string& o : options) add(o);
  return hex64(fnv1a(blob.data(), blob.size(), kBasisA)) +
         hex64(fnv1a(blob.data(), blob.size(), kBasisB));
}

std::string resolve_cache_dir(const std::string& dir) {
  if (dir == "-") return {};
  if (!dir.empty()) return dir;
  if (const char* v = std::getenv("VORTEX_CACHE_DIR"); v && *v) return v;
  if (const char* v = std::getenv("XDG_CACHE_HOME"); v && *v) return std::string(v) + "/vortex";
  if (const char* v = std::getenv("HOME"); v && *v) return std::string(v) + "/.cache/vortex";
  return {};
}

// Footer after the CUBIN bytes in a cache file.
constexpr char kFooterMagic[8] = {'V', 'X', 'C', 'U', 'B', 'I', 'N', '1'};
struct Footer {
  char magic[8];
  uint64_t size;
  uint64_t checksum;
};

bool read_cache_entry(const std::string& path, std::vector<char>& cubin) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() <= sizeof(Footer)) return false;
  Footer f;
  std::memcpy(&f, bytes.data() + bytes.size() - sizeof(Footer), sizeof(Footer));
  const size_t size = bytes.size() - sizeof(Footer);
  if (std::memcmp(f.magic, kFooterMagic, sizeof f.magic) != 0 || f.size != size ||
      f.checksum != fnv1a(bytes.data(), size, kBasisA))
    return false;
  bytes.resize(size);
  cubin = std::move(bytes);
  return true;
}

// Best effort: a cache that cannot be written only costs a compile next time.
bool write_cache_entry(const std::string& path, const std::vector<char>& cubin) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return false;
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = str_cat(path, ".tmp.", getpid(), ".", counter.fetch_add(1));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    Footer f;
    std::memcpy(f.magic, kFooterMagic, sizeof f.magic);
    f.size = cubin.size();
    f.checksum = fnv1a(cubin.data(), cubin.size(), kBasisA);
    out.write(cubin.data(), static_cast<std::streamsize>(cubin.size()));
    out.write(reinterpret_cast<const char*>(&f), sizeof f);
    if (!out.good()) {
      out.close();
      fs::remove(tmp, ec);
      return false;
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

void check_arch(const std::string& arch) {
  bool ok = arch.size() >= 5 && arch.compare(0, 3, "sm_") == 0;
  size_t i = 3;
  while (ok && i < arch.size() && arch[i] >= '0' && arch[i] <= '9') ++i;
  ok = ok && i > 3 &&
       (i == arch.size() || (i + 1 == arch.size() && arch[i] >= 'a' && arch[i] <= 'z'));
  if (!ok)
    fail_usage("CUDA architecture '", arch,
               "' is not a real GPU target of the form sm_XX or sm_XXa (e.g. sm_90a, sm_80)");
}

}  // namespace

bool nvrtc_available(std::string* why) {
  const NvrtcApi& api = nvrtc_api();
  if (!api.lib && why) *why = api.error;
  return api.lib != nullptr;
}

std::string nvrtc_version() {
  return nvrtc_api().version_text;
}

NvrtcResult nvrtc_compile(const std::string& source, const NvrtcOptions& opt) {
  check_arch(opt.arch);
  const NvrtcApi& api = nvrtc_api();
  if (!api.lib) fail(api.error);
  const std::vector<std::string> options = {"-arch=" + opt.arch, "-std=c++17", "-default-device"};
  const std::string display = opt.display_name.empty() ? "flow.cu" : opt.display_name;

  NvrtcResult result;
  const std::string dir = resolve_cache_dir(opt.cache_dir);
  if (!dir.empty()) {
    result.cache_path = dir + "/kernels/" +
                        cache_key(source + '\0' + display, opt.arch, api.version_text, options) +
                        ".cubin";
    if (read_cache_entry(result.cache_path, result.cubin)) {
      result.from_cache = true;
      return result;
    }
  }

  nvrtcProgram program = nullptr;
  nvrtcResult rc =
      api.create_program(&program, source.c_str(), display.c_str(), 0, nullptr, nullptr);
  if (rc != kNvrtcSuccess)
    fail("NVRTC cannot create a program for ", display, ": ", api.get_error_string(rc));
  struct Destroy {
    const NvrtcApi& api;
    nvrtcProgram& p;
    ~Destroy() { api.destroy_program(&p); }
  } destroy{api, program};

  std::vector<const char*> argv;
  for (const std::string& o : options) argv.push_back(o.c_str());
  rc = api.compile_program(program, static_cast<int>(argv.size()), argv.data());
  size_t log_size = 0;
  if (api.get_log_size(program, &log_size) == kNvrtcSuccess && log_size > 1) {
    std::string log(log_size, '\0');
    if (api.get_log(program, log.data()) == kNvrtcSuccess) {
      log.resize(std::strlen(log.c_str()));
      result.log = std::move(log);
    }
  }
  if (rc != kNvrtcSuccess)
    fail("NVRTC ", api.version_text, " failed to compile ", display, " for ", opt.arch, " (",
         api.get_error_string(rc), "):\n", result.log);
  size_t cubin_size = 0;
  rc = api.get_cubin_size(program, &cubin_size);
  if (rc != kNvrtcSuccess || cubin_size == 0)
    fail("NVRTC produced no CUBIN for ", display, " (", opt.arch,
         " must be a real architecture such as sm_90a): ",
         rc != kNvrtcSuccess ? api.get_error_string(rc) : "empty");
  result.cubin.resize(cubin_size);
  rc = api.get_cubin(program, result.cubin.data());
  if (rc != kNvrtcSuccess)
    fail("NVRTC cannot return the CUBIN of ", display, ": ", api.get_error_string(rc));
  if (!result.cache_path.empty() && !write_cache_entry(result.cache_path, result.cubin))
    result.cache_path.clear();
  return result;
}

}  // namespace vortex::flow
