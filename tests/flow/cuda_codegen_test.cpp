// CUDA code generation for flows, without a GPU: every shipped flow generates and compiles with
// NVRTC for several geometries; the generated source carries the ABI checks and #line
// directives; NVRTC errors come back with its log; the disk cache is hit the second time and
// survives a corrupt entry; unsupported constructs are reported at the flow's line.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "flow/codegen/cuda_codegen.h"
#include "flow/codegen/nvrtc_compiler.h"
#include "flow/compiler.h"

namespace vortex::flow {
namespace {

namespace fs = std::filesystem;

const char* const kShippedFlows[] = {"block_topk", "gqa_softmax_max", "h2o",          "quest",
                                     "streaming",  "subpage_quest",   "value_gated"};

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

FlowProgram compile_source(const std::string& source, const std::string& filename) {
  CompileOptions options;
  options.dump_ir = false;
  CompileResult result = compile_flow(source, filename, nullptr, options);
  if (!result.ok()) {
    ADD_FAILURE() << format_compile_errors(result, source, filename);
    return FlowProgram{};
  }
  return *result.program;
}

FlowProgram compile_shipped(const std::string& name) {
  const fs::path path = fs::path(VORTEX_SOURCE_DIR) / "flows" / (name + ".py");
  return compile_source(read_text(path), name + ".py");
}

// Flows that exercise the generator's other paths (tests/data/flows/codegen).
const char* const kCoverageFlows[] = {"chain",  "both_sides", "odd_scale",
                                      "nested", "page_ops",   "row_ops"};

FlowProgram compile_coverage(const std::string& name) {
  const fs::path path = fs::path(VORTEX_SOURCE_DIR) / "tests/data/flows/codegen" / (name + ".py");
  return compile_source(read_text(path), name + ".py");
}

// A fresh cache directory per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("vortex_codegen_test_" + std::to_string(::getpid()) + "_" + std::to_string(next_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
  static inline int next_ = 0;
};

#define REQUIRE_NVRTC()                                                   \
  do {                                                                    \
    std::string why;                                                      \
    if (!nvrtc_available(&why)) GTEST_SKIP() << "NVRTC unavailable: " << why; \
  } while (0)

struct Geometry {
  int64_t G, D, P;
};

const Geometry kGeometries[] = {{8, 128, 16}, {2, 64, 16}, {4, 128, 64}, {1, 64, 4}};

void expect_compiles(const FlowProgram& program, const std::string& name, const Geometry& g,
                     const std::string& cache) {
  SCOPED_TRACE(name + " G=" + std::to_string(g.G) + " D=" + std::to_string(g.D) +
               " P=" + std::to_string(g.P));
  CudaFlowSource src;
  try {
    src = generate_cuda_flow(program, FlowGeometry{g.G, g.D, g.P});
  } catch (const Error& e) {
    ADD_FAILURE() << "generation failed: " << e.what();
    return;
  }
  EXPECT_FALSE(src.score_kernels.empty());
  EXPECT_NE(src.source.find("static_assert(sizeof(CudaScoreArgs)"), std::string::npos);
  EXPECT_NE(src.source.find("#line "), std::string::npos);
  NvrtcOptions opt;
  opt.arch = "sm_90a";
  opt.cache_dir = cache;
  opt.display_name = name + ".py.cu";
  try {
    NvrtcResult r = nvrtc_compile(src.source, opt);
    EXPECT_FALSE(r.cubin.empty());
  } catch (const Error& e) {
    ADD_FAILURE() << e.what() << "\n--- generated source ---\n" << src.source;
  }
}

TEST(CudaCodegen, EveryShippedFlowGeneratesAndCompilesForEveryGeometry) {
  REQUIRE_NVRTC();
  TempDir cache;
  for (const char* name : kShippedFlows) {
    const FlowProgram program = compile_shipped(name);
    for (const Geometry& g : kGeometries) expect_compiles(program, name, g, cache.str());
  }
}

TEST(CudaCodegen, CoverageFlowsGenerateAndCompile) {
  REQUIRE_NVRTC();
  TempDir cache;
  for (const char* name : kCoverageFlows) {
    const FlowProgram program = compile_coverage(name);
    for (const Geometry& g : {Geometry{4, 64, 16}, Geometry{1, 128, 64}})
      expect_compiles(program, name, g, cache.str());
  }
}

TEST(CudaCodegen, SizesFollowTheFieldLayout) {
  const FlowProgram quest = compile_shipped("quest");
  CudaFlowSource q = generate_cuda_flow(quest, FlowGeometry{8, 128, 16});
  EXPECT_EQ(q.field_floats, 256);
  EXPECT_EQ(q.field_stride, 256);
  EXPECT_EQ(q.state_floats, 0);
  EXPECT_EQ(q.state_stride, 0);
  EXPECT_EQ(q.summarize_kernel, "Quest_summarize");
  ASSERT_EQ(q.score_kernels.size(), 1u);
  EXPECT_EQ(q.score_kernels[0].kind, CudaKernelKind::kPerPage);

  const FlowProgram vg = compile_shipped("value_gated");
  CudaFlowSource v = generate_cuda_flow(vg, FlowGeometry{2, 64, 16});
  EXPECT_EQ(v.field_floats, 65);  // centroid [1, 64] then vnorm []
  EXPECT_EQ(v.field_stride, 72);

  const FlowProgram h2o = compile_shipped("h2o");
  CudaFlowSource h = generate_cuda_flow(h2o, FlowGeometry{8, 128, 16});
  EXPECT_EQ(h.state_floats, 1);
  EXPECT_EQ(h.state_stride, 4);
  ASSERT_EQ(h.score_kernels.size(), 2u);
  EXPECT_EQ(h.score_kernels[0].kind, CudaKernelKind::kPerPage);
  EXPECT_EQ(h.score_kernels[1].kind, CudaKernelKind::kPerRow);
  EXPECT_EQ(h.page_scratch_floats, 8);  // the [N, G] logits cross to the row kernel

  const FlowProgram streaming = compile_shipped("streaming");
  CudaFlowSource s = generate_cuda_flow(streaming, FlowGeometry{2, 64, 16});
  EXPECT_EQ(s.summarize_kernel, "");
  EXPECT_EQ(s.field_stride, 0);
}

TEST(CudaCodegen, BlockTopkScoresWithOneDotProductPerPage) {
  // After the reduction rewrite the per-page code reads the centroid once, 16 bytes at a time,
  // against the head-averaged query in shared memory.
  const FlowProgram program = compile_shipped("block_topk");
  CudaFlowSource src = generate_cuda_flow(program, FlowGeometry{8, 128, 16});
  ASSERT_EQ(src.score_kernels.size(), 1u);
  const std::string& s = src.source;
  const size_t kernel = s.find(src.score_kernels[0].name);
  ASSERT_NE(kernel, std::string::npos);
  const std::string body = s.substr(kernel);
  EXPECT_NE(body.find("vx_ld8("), std::string::npos) << body;
  EXPECT_EQ(body.find("vx_ld1("), std::string::npos) << body;
}

TEST(CudaCodegen, NvrtcErrorsCarryTheLog) {
  REQUIRE_NVRTC();
  NvrtcOptions opt;
  opt.cache_dir = "-";
  opt.display_name = "broken.cu";
  try {
    nvrtc_compile("extern \"C\" __global__ void k() { undeclared_name = 1; }\n", opt);
    FAIL() << "a broken source compiled";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("broken.cu"), std::string::npos) << what;
    EXPECT_NE(what.find("undeclared_name"), std::string::npos) << what;
  }
}

TEST(CudaCodegen, GeneratedErrorsPointAtTheFlowLine) {
  REQUIRE_NVRTC();
  // The generator's own output compiles; a flow line number reaches NVRTC's messages through
  // #line. Break the source on purpose after the first #line that names the flow file.
  const FlowProgram program = compile_shipped("quest");
  CudaFlowSource src = generate_cuda_flow(program, FlowGeometry{2, 64, 16});
  const std::string marker = "#line ";
  size_t pos = src.source.find("\"quest.py\"");
  ASSERT_NE(pos, std::string::npos);
  pos = src.source.find('\n', pos);
  std::string broken = src.source;
  broken.insert(pos + 1, "this_is_not_cuda;\n");
  NvrtcOptions opt;
  opt.cache_dir = "-";
  opt.display_name = "quest.py.cu";
  try {
    nvrtc_compile(broken, opt);
    FAIL() << "a broken source compiled";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("quest.py("), std::string::npos) << e.what();
  }
}

TEST(CudaCodegen, SecondCompileHitsTheCacheAndACorruptEntryIsRebuilt) {
  REQUIRE_NVRTC();
  TempDir cache;
  const FlowProgram program = compile_shipped("block_topk");
  CudaFlowSource src = generate_cuda_flow(program, FlowGeometry{2, 64, 16});
  NvrtcOptions opt;
  opt.cache_dir = cache.str();
  opt.display_name = "block_topk.py.cu";
  NvrtcResult first = nvrtc_compile(src.source, opt);
  EXPECT_FALSE(first.from_cache);
  ASSERT_FALSE(first.cache_path.empty());
  EXPECT_TRUE(fs::exists(first.cache_path));
  EXPECT_EQ(fs::path(first.cache_path).parent_path().filename(), "kernels");
  NvrtcResult second = nvrtc_compile(src.source, opt);
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.cubin, first.cubin);
  EXPECT_EQ(second.cache_path, first.cache_path);

  // Another architecture is another entry.
  NvrtcOptions other = opt;
  other.arch = "sm_80";
  NvrtcResult sm80 = nvrtc_compile(src.source, other);
  EXPECT_FALSE(sm80.from_cache);
  EXPECT_NE(sm80.cache_path, first.cache_path);

  // A truncated entry fails its checksum: compiled again and rewritten.
  fs::resize_file(first.cache_path, fs::file_size(first.cache_path) / 2);
  NvrtcResult third = nvrtc_compile(src.source, opt);
  EXPECT_FALSE(third.from_cache);
  EXPECT_EQ(third.cubin, first.cubin);
  NvrtcResult fourth = nvrtc_compile(src.source, opt);
  EXPECT_TRUE(fourth.from_cache);
}

TEST(CudaCodegen, BadArchitectureIsAUsageError) {
  NvrtcOptions opt;
  opt.arch = "compute_90";
  opt.cache_dir = "-";
  try {
    nvrtc_compile("", opt);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("compute_90"), std::string::npos);
  }
}

TEST(CudaCodegen, UnsupportedConstructNamesTheFlowLine) {
  // A softmax over pages of a [N, 1, D] field needs D per-row statistics: more than the row
  // kernel keeps (64).
  const std::string source = R"(
"""Softmax of every centroid coordinate over the pages."""
from vortex.flow import Flow, Field, D, softmax

class Wide(Flow):
    c = Field(1, D)

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        w = softmax(self.c, axis=0)
        return (q * w).sum(axis=-1).mean(axis=-1)
)";
  const FlowProgram program = compile_source(source, "wide.py");
  ASSERT_FALSE(program.score.ops.empty());
  try {
    generate_cuda_flow(program, FlowGeometry{2, 128, 16});
    FAIL() << "the generator accepted a softmax with 128 statistics per row";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("wide.py:12:", 0), 0u) << what;
    EXPECT_NE(what.find("softmax"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace vortex::flow
