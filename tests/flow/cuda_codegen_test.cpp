// CUDA code generation for flows, without a GPU: every shipped flow generates and compiles with
// NVRTC for several geometries; the generated source carries the ABI checks and #line
// directives; NVRTC errors come back with its log; the disk cache is hit the second time and
// survives a corrupt entry; unsupported constructs are reported at the flow's line.
#include "flow/codegen/cuda_codegen.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "flow/codegen/nvrtc_compiler.h"
#include "flow/compiler.h"

namespace vortex::flow {
namespace {

namespace fs = std::filesystem;

const char* const kShippedFlows[] = {"block_topk", "gqa_softmax_max", "h2o",        "quest",
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
const char* const kCoverageFlows[] = {"chain",           "both_sides",   "odd_scale", "nested",
                                      "int8_fields",     "page_ops",     "row_ops",   "page_state",
                                      "row_invariant_n", "page_position"};

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

#define REQUIRE_NVRTC()                                                       \
  do {                                                                        \
    std::string why;                                                          \
    if (!nvrtc_available(&why)) GTEST_SKIP() << "NVRTC unavailable: " << why; \
  } while (0)

struct Geometry {
  int64_t G, D, P;
};

const Geometry kGeometries[] = {{8, 128, 16}, {2, 64, 16}, {4, 128, 64}, {1, 64, 4}};

void expect_compiles(const FlowProgram& program, const std::string& name, const Geometry& g,
                     const std::string& cache, int score_lanes = 0) {
  SCOPED_TRACE(name + " G=" + std::to_string(g.G) + " D=" + std::to_string(g.D) +
               " P=" + std::to_string(g.P) + " score_lanes=" + std::to_string(score_lanes));
  CudaFlowSource src;
  try {
    CudaCodegenOptions options;
    options.score_lanes = score_lanes;
    src = generate_cuda_flow(program, FlowGeometry{g.G, g.D, g.P}, options);
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

TEST(CudaCodegen, EveryFlowCompilesWithEachScoreForm) {
  // One thread per page, and lane groups of 2, 16 and 32 (32 splits nothing at D <= 128, so
  // it falls back to one thread per page).
  REQUIRE_NVRTC();
  TempDir cache;
  std::vector<std::pair<std::string, FlowProgram>> flows;
  for (const char* name : kShippedFlows) flows.push_back({name, compile_shipped(name)});
  for (const char* name : kCoverageFlows) flows.push_back({name, compile_coverage(name)});
  for (const auto& [name, program] : flows)
    for (int lanes : {1, 2, 16, 32})
      expect_compiles(program, name, {2, 128, 16}, cache.str(), lanes);
}

// The text of kernel `name` in a generated source.
std::string kernel_text(const CudaFlowSource& src, const std::string& name) {
  const size_t name_at = src.source.find(" " + name + "(const Cuda");
  if (name_at == std::string::npos) return "";
  const size_t at = src.source.rfind("extern \"C\"", name_at);
  if (at == std::string::npos) return "";
  return src.source.substr(at, src.source.find("\n}\n", at) - at);
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(CudaCodegen, BlockTopkAndQuestScoreWithLaneGroupsPerPage) {
  // A group of L lanes per page, each lane loading 16 bytes of each field row per trip, so a
  // group's load instruction reads 16 * L contiguous bytes; L is as large as leaves every lane
  // 4 loads per page: quest (two fields) D / 16 lanes, block_topk (one) D / 32, both 4 loads.
  // The dot products over D end in shuffles within the group and lane 0 writes the score.
  // block_topk's centroid is an int8 Field (8-byte loads of 8 codes), quest's bounds bf16.
  for (const char* name : {"block_topk", "quest"}) {
    const FlowProgram program = compile_shipped(name);
    const size_t fields = std::string(name) == "quest" ? 2 : 1;
    const bool int8 = std::string(name) == "block_topk";
    for (const Geometry& g : kGeometries) {
      SCOPED_TRACE(std::string(name) + " G=" + std::to_string(g.G) + " D=" + std::to_string(g.D));
      const CudaFlowSource src = generate_cuda_flow(program, FlowGeometry{g.G, g.D, g.P});
      ASSERT_EQ(src.score_kernels.size(), 1u);
      EXPECT_EQ(src.score_kernels[0].kind, CudaKernelKind::kPerPage);
      const int lanes = static_cast<int>(g.D / (fields == 2 ? 16 : 32));
      const int64_t trips = g.D / (8 * lanes);
      EXPECT_EQ(src.score_kernels[0].lanes, lanes);
      const std::string k = kernel_text(src, src.score_kernels[0].name);
      ASSERT_FALSE(k.empty()) << src.source;
      EXPECT_NE(k.find(str_cat("const int lane = (int)threadIdx.x & ", lanes - 1, ";")),
                std::string::npos)
          << k;
      EXPECT_NE(k.find(str_cat("i < end; i += ", 128 / lanes, ")")), std::string::npos) << k;
      // one load of 8 values per field and trip
      EXPECT_EQ(count_of(k, int8 ? "vx_ld8_int8(fv" : "vx_ld8(fv"), fields) << k;
      EXPECT_NE(k.find(int8 ? "fld8 + lane * 8 + c" : "fld + lane * 8 + c"), std::string::npos)
          << k;
      EXPECT_NE(k.find(str_cat(" < ", trips, "; ++")), std::string::npos) << k;
      EXPECT_EQ(k.find("vx_ld1("), std::string::npos) << k;
      // Quest reduces G sums over D, block_topk one (the head mean is row-invariant).
      EXPECT_EQ(count_of(k, str_cat("vx_lanes_sum<", lanes, ">(")),
                fields == 2 ? static_cast<size_t>(g.G) : size_t{1})
          << k;
      EXPECT_NE(k.find("if (lane == 0) a.scores["), std::string::npos) << k;
    }
  }
}

TEST(CudaCodegen, ThreadPerPageFormOnRequestAndWhenNothingSplits) {
  CudaCodegenOptions thread;
  thread.score_lanes = 1;
  const FlowProgram quest = compile_shipped("quest");
  const CudaFlowSource q = generate_cuda_flow(quest, FlowGeometry{2, 128, 16}, thread);
  ASSERT_EQ(q.score_kernels.size(), 1u);
  EXPECT_EQ(q.score_kernels[0].lanes, 1);
  const std::string k = kernel_text(q, q.score_kernels[0].name);
  EXPECT_NE(k.find("const int i = a.item_begin[it] + (int)threadIdx.x;"), std::string::npos) << k;
  EXPECT_EQ(k.find("vx_lanes_"), std::string::npos) << k;
  EXPECT_EQ(k.find("lane == 0"), std::string::npos) << k;

  // 16 lanes: one trip at D = 128; 16 lanes at D = 64 split nothing (64 < 8 * 16).
  CudaCodegenOptions sixteen;
  sixteen.score_lanes = 16;
  const CudaFlowSource q16 = generate_cuda_flow(quest, FlowGeometry{2, 128, 16}, sixteen);
  EXPECT_EQ(q16.score_kernels[0].lanes, 16);
  EXPECT_NE(kernel_text(q16, q16.score_kernels[0].name).find("vx_lanes_sum<16>("),
            std::string::npos);
  EXPECT_EQ(generate_cuda_flow(quest, FlowGeometry{2, 64, 16}, sixteen).score_kernels[0].lanes, 1);

  // No reduction per page: nothing to split.
  const CudaFlowSource s =
      generate_cuda_flow(compile_shipped("streaming"), FlowGeometry{2, 64, 16});
  EXPECT_EQ(s.score_kernels[0].lanes, 1);

  // Cross-page flows: the per-page kernel before the row kernel is cooperative, the row kernel
  // is not; a State written per page waits for the group before lane 0 stores it.
  const CudaFlowSource h = generate_cuda_flow(compile_shipped("h2o"), FlowGeometry{8, 128, 16});
  ASSERT_EQ(h.score_kernels.size(), 2u);
  EXPECT_GT(h.score_kernels[0].lanes, 1);
  EXPECT_EQ(h.score_kernels[1].lanes, 1);
  const CudaFlowSource ps =
      generate_cuda_flow(compile_coverage("page_state"), FlowGeometry{2, 64, 16});
  ASSERT_EQ(ps.score_kernels.size(), 1u);
  EXPECT_EQ(ps.score_kernels[0].lanes, 8);
  const std::string pk = kernel_text(ps, ps.score_kernels[0].name);
  EXPECT_NE(pk.find("__syncwarp(gmask);"), std::string::npos) << pk;
  EXPECT_NE(pk.find("if (lane == 0) st["), std::string::npos) << pk;
  EXPECT_NE(pk.find("vx_lanes_max<8>("), std::string::npos) << pk;
  EXPECT_NE(pk.find("vx_lanes_min<8>("), std::string::npos) << pk;

  CudaCodegenOptions bad;
  bad.score_lanes = 6;
  EXPECT_THROW(generate_cuda_flow(quest, FlowGeometry{2, 64, 16}, bad), Error);
}

TEST(CudaCodegen, ScoreLanesFromText) {
  EXPECT_EQ(parse_score_lanes(""), 0);
  EXPECT_EQ(parse_score_lanes("auto"), 0);
  EXPECT_EQ(parse_score_lanes("thread"), 1);
  EXPECT_EQ(parse_score_lanes("16"), 16);
  EXPECT_THROW(parse_score_lanes("warp"), Error);
  EXPECT_THROW(parse_score_lanes("6"), Error);
  EXPECT_THROW(parse_score_lanes("64"), Error);
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

// One summarize launch covers several layers (grid z): every K/V read and Field write of the
// kernel is offset by its layer, chosen through the layers list (or z itself without one).
TEST(CudaCodegen, SummarizeTakesItsLayerFromGridZ) {
  std::vector<std::pair<std::string, FlowProgram>> programs;
  for (const char* name : kShippedFlows) programs.emplace_back(name, compile_shipped(name));
  for (const char* name : kCoverageFlows) programs.emplace_back(name, compile_coverage(name));
  int with_summarize = 0;
  for (const auto& [name, program] : programs) {
    SCOPED_TRACE(name);
    const CudaFlowSource src = generate_cuda_flow(program, FlowGeometry{4, 64, 16});
    for (const char* member : {"layers", "kv_layer_stride", "field_layer_stride", "num_layers"})
      EXPECT_NE(src.source.find(std::string("offset of CudaSummarizeArgs::") + member),
                std::string::npos)
          << member;
    if (src.summarize_kernel.empty()) continue;
    ++with_summarize;
    const size_t begin = src.source.find(" " + src.summarize_kernel + "(");
    ASSERT_NE(begin, std::string::npos);
    const size_t next = src.source.find("extern \"C\"", begin);
    const std::string body =
        src.source.substr(begin, next == std::string::npos ? std::string::npos : next - begin);
    EXPECT_NE(body.find("const int layer = a.layers ? a.layers[blockIdx.z] : (int)blockIdx.z;"),
              std::string::npos)
        << body;
    EXPECT_NE(body.find("kv_base = (long long)layer * a.kv_layer_stride + "), std::string::npos)
        << body;
    EXPECT_NE(body.find("a.fields + (long long)layer * a.field_layer_stride + "), std::string::npos)
        << body;
    // K and V are read only at kv_base, Fields written only through the layer's pointer.
    for (const char* read : {"a.k[", "a.v["}) {
      for (size_t at = body.find(read); at != std::string::npos; at = body.find(read, at + 1))
        EXPECT_EQ(body.compare(at + 4, 7, "kv_base"), 0) << body.substr(at, 40);
    }
    EXPECT_EQ(body.find("a.fields +"), body.rfind("a.fields +")) << body;
  }
  EXPECT_GE(with_summarize, 5);
}

TEST(CudaCodegen, BlockTopkScoresWithOneDotProductPerPage) {
  // After the reduction rewrite the per-page code reads the (int8) centroid once, 8 codes at a
  // time, against the head-averaged query in shared memory.
  const FlowProgram program = compile_shipped("block_topk");
  CudaFlowSource src = generate_cuda_flow(program, FlowGeometry{8, 128, 16});
  ASSERT_EQ(src.score_kernels.size(), 1u);
  const std::string body = kernel_text(src, src.score_kernels[0].name);
  ASSERT_FALSE(body.empty()) << src.source;
  EXPECT_NE(body.find("vx_ld8_int8("), std::string::npos) << body;
  EXPECT_EQ(body.find("vx_ld1"), std::string::npos) << body;
}

TEST(CudaCodegen, PerPageScoresAlsoGetAFusedScoreAndSelectKernel) {
  // A score without cross-page ops gets a second kernel: one block of 512 threads per row runs
  // the same per-page code over the whole row, with the page numbers from the selection's
  // shared-memory cache and each score also stored as the selection's key, then selects with the
  // embedded row selection (kernels/cuda/select_row.cuh).
  for (const char* name : {"block_topk", "quest", "streaming"}) {
    SCOPED_TRACE(name);
    const CudaFlowSource src = generate_cuda_flow(compile_shipped(name), FlowGeometry{2, 128, 16});
    ASSERT_EQ(src.score_kernels.size(), 1u);
    ASSERT_FALSE(src.select_kernel.empty());
    EXPECT_EQ(src.select_lanes, src.score_kernels[0].lanes);
    const std::string k = kernel_text(src, src.select_kernel);
    ASSERT_FALSE(k.empty()) << src.source;
    EXPECT_NE(k.find("__launch_bounds__(512, 2)"), std::string::npos) << k;
    EXPECT_NE(k.find("vx_select_row_plan("), std::string::npos) << k;
    EXPECT_NE(k.find("if (!vx_select_row_begin("), std::string::npos) << k;
    EXPECT_NE(k.find("const int page = vx_select_row_page(sr, s_sel, i);"), std::string::npos) << k;
    EXPECT_NE(k.find("s_sel.keys[i] = vx_score_key("), std::string::npos) << k;
    EXPECT_NE(k.find("vx_select_row_finish("), std::string::npos) << k;
    EXPECT_EQ(k.find("item_row"), std::string::npos) << k;  // no worklist
    // The selection is in the source once, with the generator's checks on it.
    EXPECT_EQ(count_of(src.source, "struct VxSelectShared {"), 1u);
    EXPECT_NE(src.source.find("static_assert(VX_SELECT_THREADS == 512"), std::string::npos);
  }
  // Cross-page scores select in the separate kernel; their source carries no selection.
  for (const char* name : {"gqa_softmax_max", "h2o"}) {
    SCOPED_TRACE(name);
    const CudaFlowSource src = generate_cuda_flow(compile_shipped(name), FlowGeometry{2, 128, 16});
    EXPECT_TRUE(src.select_kernel.empty());
    EXPECT_EQ(src.source.find("VxSelectShared"), std::string::npos);
  }
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
