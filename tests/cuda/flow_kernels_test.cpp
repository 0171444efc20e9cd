// The generated flow kernels (CudaFlowModule) against the CPU executor, the reference semantics,
// for every shipped flow and the generator's coverage flows (tests/data/flows/codegen):
//  - summarize on random bf16 K/V pages: fields equal CpuFlowExecutor::summarize_pages on the
//    same bf16 values, up to bf16 rounding, for each of two layers with different values
//    summarized by one launch through a layer list (a layer not in the list stays untouched),
//    and the one-layer launch gives exactly the multi-layer launch's fields;
//  - score over ragged rows (N from 0 to ~300, pages scattered in the pool, rows of one
//    sequence with different scoreable ranges), a worklist built on the host and run with grids
//    smaller and larger than it: scores equal CpuFlowExecutor::score_rows fed the GPU's fields
//    and the bf16 q, within 1e-3 of the row's score spread;
//  - State after each of 3 consecutive score calls equals the CPU's, and pages that are not
//    scored keep State 0;
//  - each flow in both per-page kernel forms: lane groups per page (the default, and other group
//    sizes) and one thread per page, so a wrong lane mapping shows up as a mismatch against the
//    CPU on rows whose page counts are not multiples of any group size;
//  - the fused score-and-select kernel (where the flow has one) writes exactly the per-page
//    kernel's scores and State, and the page lists and token counts of flow::select_pages on
//    those scores for plans with k from 0 to N, rows that read everything among them; a row
//    longer than the selection's shared-memory cache takes the path that reads the scores back;
//  - the launches can be captured in a CUDA graph and replay to the same results.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/rng.h"
#include "cuda/cuda_test_util.h"
#include "engine/cuda/cuda_flow_module.h"
#include "flow/compiler.h"
#include "flow/cpu_executor.h"
#include "flow/selection.h"

namespace vortex {
namespace {

namespace fs = std::filesystem;
using flow::CpuFlowExecutor;
using flow::FlowGeometry;
using flow::FlowProgram;
using test::DeviceArray;

constexpr int kKvHeads = 2;
constexpr int kCalls = 3;
constexpr size_t kMaxReported = 8;  // mismatches printed per check

FlowProgram compile_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  flow::CompileOptions options;
  options.dump_ir = false;
  const std::string name = path.filename().string();
  flow::CompileResult r = flow::compile_flow(ss.str(), name, nullptr, options);
  if (!r.ok()) {
    ADD_FAILURE() << flow::format_compile_errors(r, ss.str(), name);
    return FlowProgram{};
  }
  return *r.program;
}

std::vector<fs::path> all_flows() {
  std::vector<fs::path> paths;
  for (const char* name : {"block_topk", "gqa_softmax_max", "h2o", "quest", "streaming",
                           "subpage_quest", "value_gated"})
    paths.push_back(fs::path(VORTEX_SOURCE_DIR) / "flows" / (std::string(name) + ".py"));
  for (const char* name : {"chain", "both_sides", "odd_scale", "nested", "int8_fields", "page_ops",
                           "row_ops", "page_state", "row_invariant_n", "page_position"})
    paths.push_back(fs::path(VORTEX_SOURCE_DIR) / "tests/data/flows/codegen" /
                    (std::string(name) + ".py"));
  return paths;
}

std::string cache_dir() {
  static const std::string dir = [] {
    fs::path p =
        fs::temp_directory_path() / ("vortex_flow_kernels_test_" + std::to_string(getpid()));
    fs::create_directories(p);
    return p.string();
  }();
  return dir;
}

// Collects mismatches of one check and reports the first few with their context.
class Mismatches {
 public:
  explicit Mismatches(std::string what) : what_(std::move(what)) {}
  void add(const std::string& where, double got, double want, double tol) {
    ++count_;
    if (lines_.size() < kMaxReported) {
      char buf[128];
      std::snprintf(buf, sizeof buf, ": gpu %.9g cpu %.9g (|diff| %.3g > tol %.3g)", got, want,
                    std::fabs(got - want), tol);
      lines_.push_back(where + buf);
    }
  }
  void checked() { ++total_; }
  void report() const {
    if (count_ == 0) return;
    std::string msg = what_ + ": " + std::to_string(count_) + " of " + std::to_string(total_) +
                      " values differ; first:";
    for (const std::string& l : lines_) msg += "\n  " + l;
    ADD_FAILURE() << msg;
  }
  size_t count() const { return count_; }

 private:
  std::string what_;
  std::vector<std::string> lines_;
  size_t count_ = 0, total_ = 0;
};

bool close_enough(float got, float want, double tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::isfinite(got) && std::fabs(static_cast<double>(got) - want) <= tol;
}

// One test setup: the pool of pages, the sequences' page lists and the rows.
struct RowLayout {
  std::vector<int32_t> pages;            // physical pages of all sequences, concatenated
  std::vector<int32_t> seq_offset;       // per sequence: first entry in pages
  std::vector<int32_t> seq_pages;        // per sequence: n
  std::vector<int32_t> row_page_offset;  // per row
  std::vector<int32_t> row_first, row_count;
  std::vector<int32_t> q_rows;  // per sequence: its token row in q
  int32_t pool = 0, max_pages = 0;
};

const std::vector<int32_t> kRaggedRows = {1, 5, 300, 40, 0, 131, 17, 260, 3, 128, 129};

RowLayout make_layout(Rng& rng, const std::vector<int32_t>& n = kRaggedRows) {
  RowLayout l;
  const int32_t total = std::accumulate(n.begin(), n.end(), 0);
  l.pool = total + 9;  // a few pages no row uses
  std::vector<int32_t> perm(static_cast<size_t>(l.pool));
  std::iota(perm.begin(), perm.end(), 0);
  for (size_t i = perm.size(); i-- > 1;)
    std::swap(perm[i], perm[static_cast<size_t>(rng.next_u64() % (i + 1))]);
  int32_t next = 0;
  for (size_t s = 0; s < n.size(); ++s) {
    l.seq_offset.push_back(static_cast<int32_t>(l.pages.size()));
    l.seq_pages.push_back(n[s]);
    for (int32_t p = 0; p < n[s]; ++p) l.pages.push_back(perm[static_cast<size_t>(next++)]);
    l.max_pages = std::max(l.max_pages, n[s]);
  }
  for (size_t s = 0; s < n.size(); ++s)
    for (int h = 0; h < kKvHeads; ++h) {
      // Head 0: sink 1, recent 2; head 1: sink 2 and a tenth of the row recent; sequence 3
      // head 1 is not scored at all.
      int32_t first = std::min<int32_t>(h == 0 ? 1 : 2, n[s]);
      int32_t count = std::max<int32_t>(0, n[s] - first - (h == 0 ? 2 : 1 + n[s] / 10));
      if (s == 3 && h == 1) count = 0;
      l.row_page_offset.push_back(l.seq_offset[s]);
      l.row_first.push_back(first);
      l.row_count.push_back(count);
    }
  l.q_rows.resize(n.size());
  for (size_t s = 0; s < n.size(); ++s) l.q_rows[s] = static_cast<int32_t>(n.size() - 1 - s);
  return l;
}

// (row, first page) chunks of kCudaScorePageThreads pages.
void make_worklist(const RowLayout& l, bool reversed, std::vector<int32_t>* item_row,
                   std::vector<int32_t>* item_begin) {
  item_row->clear();
  item_begin->clear();
  for (size_t r = 0; r < l.row_count.size(); ++r)
    for (int32_t b = 0; b < l.row_count[r]; b += flow::kCudaScorePageThreads) {
      item_row->push_back(static_cast<int32_t>(r));
      item_begin->push_back(b);
    }
  if (reversed) {
    std::reverse(item_row->begin(), item_row->end());
    std::reverse(item_begin->begin(), item_begin->end());
  }
}

// Summarize arguments for one layer of a pool of pages of kKvHeads heads of `block` elements
// (the layer fields left at their defaults); multi-layer tests set those on top.
flow::CudaSummarizeArgs one_layer_summarize(const uint16_t* k, const uint16_t* v, uint16_t* fields,
                                            float* scales, const int32_t* items,
                                            const int32_t* num_items, int64_t block,
                                            int32_t field_stride, int32_t pool) {
  flow::CudaSummarizeArgs a;
  a.k = k;
  a.v = v;
  a.fields = fields;
  a.field_scales = scales;
  a.num_pages = pool;
  a.items = items;
  a.num_items = num_items;
  a.page_stride = kKvHeads * block;
  a.head_stride = block;
  a.num_kv_heads = kKvHeads;
  a.field_stride = field_stride;
  return a;
}

void check_fused_select(const CudaFlowModule& module, flow::CudaScoreArgs a, const RowLayout& l,
                        const FlowGeometry& g, const std::vector<float>& scores,
                        const std::vector<float>& state, DeviceArray<float>& d_state_before,
                        Rng& rng);

void check_flow(const FlowProgram& program, const FlowGeometry& g, int score_lanes, uint64_t seed,
                const std::vector<int32_t>& seq_pages = kRaggedRows) {
  const std::string label = program.filename + " G=" + std::to_string(g.G) +
                            " D=" + std::to_string(g.D) + " P=" + std::to_string(g.P) +
                            " score_lanes=" + std::to_string(score_lanes);
  SCOPED_TRACE(label);
  flow::CudaCodegenOptions options;
  options.score_lanes = score_lanes;
  CudaFlowModule module = CudaFlowModule::make(program, g, cache_dir(), &options);
  const CpuFlowExecutor cpu(program, g);
  ASSERT_EQ(module.field_floats(), cpu.field_floats_per_page_head());
  std::string kernels = module.source().summarize_kernel;
  for (const auto& k : module.source().score_kernels)
    kernels += " " + k.name + " (" + std::to_string(k.lanes) + " lanes per page)";
  SCOPED_TRACE("kernels: " + kernels);

  Rng rng(seed);
  const RowLayout l = make_layout(rng, seq_pages);
  const int64_t G = g.G, D = g.D, P = g.P;
  const int64_t Hq = G * kKvHeads;
  const int64_t block = P * D;
  const int64_t ff = cpu.field_floats_per_page_head();
  const int32_t fstride = module.field_stride();

  // ---- summarize ----
  // A cache of 3 layers: layer 0 random, layer 2 other values (layer 0's V as K and K as V,
  // pages rotated by one), layer 1 a dense layer (zeros) that is not summarized. One launch
  // summarizes layers {2, 0} (the runner's form for all sparse layers of a step); the one-layer
  // form (the per-layer path) summarizes layer 2 alone into another buffer. Both layers are
  // compared to the CPU executor, the one-layer result must equal the multi-layer one exactly,
  // and layer 1's Fields must stay untouched.
  std::vector<float> k_f, v_f;
  std::vector<uint16_t> k =
      test::random_bf16(static_cast<size_t>(l.pool * kKvHeads * block), rng, 1.0f, &k_f);
  std::vector<uint16_t> v =
      test::random_bf16(static_cast<size_t>(l.pool * kKvHeads * block), rng, 0.7f, &v_f);
  const size_t layer_kv = k.size();  // elements per layer of K (and of V)
  const size_t page_kv = static_cast<size_t>(kKvHeads * block);
  std::vector<float> k2_f(layer_kv), v2_f(layer_kv);
  std::vector<uint16_t> k_all(3 * layer_kv, 0), v_all(3 * layer_kv, 0);
  std::copy(k.begin(), k.end(), k_all.begin());
  std::copy(v.begin(), v.end(), v_all.begin());
  for (int32_t p = 0; p < l.pool; ++p) {
    const size_t from = static_cast<size_t>((p + 1) % l.pool) * page_kv;
    const size_t to = static_cast<size_t>(p) * page_kv;
    std::copy_n(v.begin() + from, page_kv, k_all.begin() + 2 * layer_kv + to);
    std::copy_n(k.begin() + from, page_kv, v_all.begin() + 2 * layer_kv + to);
    std::copy_n(v_f.begin() + from, page_kv, k2_f.begin() + to);
    std::copy_n(k_f.begin() + from, page_kv, v2_f.begin() + to);
  }
  std::vector<int32_t> items(l.pages.begin(), l.pages.end());
  for (size_t i = items.size(); i-- > 1;)
    std::swap(items[i], items[static_cast<size_t>(rng.next_u64() % (i + 1))]);
  const size_t layer_fields = static_cast<size_t>(l.pool * kKvHeads * std::max(fstride, 1));
  const int32_t nscales = module.source().field_scales;
  const size_t layer_scales = static_cast<size_t>(l.pool * kKvHeads * std::max(nscales, 1));
  DeviceArray<uint16_t> d_k(k_all), d_v(v_all);
  DeviceArray<uint16_t> d_fields(3 * layer_fields);  // poisoned 0xffff
  DeviceArray<uint16_t> d_fields_one(layer_fields);
  DeviceArray<float> d_scales(3 * layer_scales);  // poisoned NaN
  DeviceArray<float> d_scales_one(layer_scales);
  DeviceArray<int32_t> d_items(items);
  DeviceArray<int32_t> d_num_items(std::vector<int32_t>{static_cast<int32_t>(items.size())});
  DeviceArray<int32_t> d_layers(std::vector<int32_t>{2, 0});
  flow::CudaSummarizeArgs sa =
      one_layer_summarize(d_k.get(), d_v.get(), d_fields.get(), d_scales.get(), d_items.get(),
                          d_num_items.get(), block, fstride, l.pool);
  sa.layers = d_layers.get();
  sa.kv_layer_stride = static_cast<int64_t>(layer_kv);
  sa.field_layer_stride = static_cast<int64_t>(layer_fields);
  sa.scale_layer_stride = static_cast<int64_t>(layer_scales);
  sa.num_layers = 2;
  module.launch_summarize(sa, static_cast<int>(items.size()) + 3, nullptr);
  check_cuda(cudaGetLastError(), "summarize (layers 2 and 0)");
  const flow::CudaSummarizeArgs one = one_layer_summarize(
      d_k.get() + 2 * layer_kv, d_v.get() + 2 * layer_kv, d_fields_one.get(), d_scales_one.get(),
      d_items.get(), d_num_items.get(), block, fstride, l.pool);
  module.launch_summarize(one, static_cast<int>(items.size()), nullptr);
  check_cuda(cudaGetLastError(), "summarize (layer 2 alone)");
  const std::vector<uint16_t> all_fields = d_fields.download();
  const std::vector<uint16_t> gpu_fields(all_fields.begin(), all_fields.begin() + layer_fields);
  const std::vector<uint16_t> layer2_fields(all_fields.begin() + 2 * layer_fields,
                                            all_fields.end());
  const std::vector<float> all_scales = d_scales.download();
  const std::vector<float> gpu_scales(all_scales.begin(), all_scales.begin() + layer_scales);
  const std::vector<float> layer2_scales(all_scales.begin() + 2 * layer_scales, all_scales.end());
  {
    size_t touched = 0;
    for (size_t e = layer_fields; e < 2 * layer_fields; ++e) touched += all_fields[e] != 0xffff;
    for (size_t e = layer_scales; e < 2 * layer_scales; ++e) touched += !std::isnan(all_scales[e]);
    EXPECT_EQ(touched, 0u) << "the multi-layer summarize wrote the Fields of layer 1";
    if (ff > 0) {
      EXPECT_TRUE(d_fields_one.download() == layer2_fields)
          << "the one-layer summarize of layer 2 differs from the multi-layer one";
    }
    if (nscales > 0) {
      const std::vector<float> one = d_scales_one.download();
      EXPECT_EQ(std::memcmp(one.data(), layer2_scales.data(), one.size() * sizeof(float)), 0)
          << "the one-layer summarize of layer 2 wrote other int8 scales than the multi-layer one";
    }
  }

  // The GPU's fields as f32, the CPU's input to score.
  std::vector<float> fields(static_cast<size_t>(l.pool * kKvHeads * std::max<int64_t>(ff, 1)), 0);
  // One layer's GPU Fields against the CPU executor on that layer's K/V (fields_out: its f32).
  // The GPU blocks are head-major and laid out as CudaFlowSource::fields says; the CPU's (and
  // `fields`) are page-major in FieldSlot order.
  auto check_layer = [&](const std::vector<uint16_t>& gpu, const std::vector<float>& gpu_sc,
                         const std::vector<float>& kf, const std::vector<float>& vf,
                         const std::string& what, std::vector<float>* fields_out) -> size_t {
    std::vector<float> cpu_fields(static_cast<size_t>(items.size() * kKvHeads * ff));
    std::vector<const float*> kp, vp;
    std::vector<float*> out;
    for (size_t i = 0; i < items.size(); ++i)
      for (int h = 0; h < kKvHeads; ++h) {
        const int64_t src = (items[i] * kKvHeads + h) * block;
        kp.push_back(kf.data() + src);
        vp.push_back(vf.data() + src);
        out.push_back(cpu_fields.data() + (i * kKvHeads + static_cast<size_t>(h)) * ff);
      }
    cpu.summarize_pages(kp.data(), vp.data(), static_cast<int64_t>(kp.size()), out.data());
    Mismatches bad(what);
    for (size_t i = 0; i < items.size(); ++i)
      for (int h = 0; h < kKvHeads; ++h) {
        const float* want = out[i * kKvHeads + static_cast<size_t>(h)];
        const int64_t b = (items[i] * kKvHeads + h);
        const int64_t gb = h * l.pool + items[i];
        for (size_t s = 0; s < cpu.field_slots().size(); ++s) {
          const flow::FieldSlot& slot = cpu.field_slots()[s];
          const flow::CudaFieldLayout& at = module.source().fields[s];
          EXPECT_EQ(at.field, slot.field);
          EXPECT_EQ(at.scale >= 0, slot.int8);
          double scale = 0;
          for (int64_t e = 0; e < slot.num_floats; ++e)
            if (std::isfinite(want[slot.offset + e]))
              scale = std::max(scale, std::fabs(static_cast<double>(want[slot.offset + e])));
          const uint16_t* units = gpu.data() + gb * fstride + at.offset;
          for (int64_t e = 0; e < slot.num_floats; ++e) {
            const float w = want[slot.offset + e];
            float got;
            if (slot.int8) {
              uint8_t code;
              std::memcpy(&code, reinterpret_cast<const uint8_t*>(units) + e, 1);
              got = static_cast<float>(static_cast<int>(code) - 128) *
                    gpu_sc[static_cast<size_t>(gb * nscales + at.scale)];
            } else {
              got = bf16_to_f32(units[e]);
            }
            if (fields_out) (*fields_out)[static_cast<size_t>(b * ff + slot.offset + e)] = got;
            // Both backends round an int8 Field to its block's step (scale / 64 to scale / 128);
            // their f32 inputs differ by summation order, which can move a value by one step.
            const double tol =
                slot.int8 ? scale / 60.0 + 1e-30 : 1e-2 * std::fabs(w) + 1e-3 * scale + 1e-30;
            bad.checked();
            if (!close_enough(got, w, tol))
              bad.add(str_cat("page ", items[i], " head ", h, " field '",
                              program.fields[static_cast<size_t>(slot.field)].name, "'[", e, "]"),
                      got, w, tol);
          }
        }
      }
    bad.report();
    return bad.count();
  };
  if (ff > 0) {
    const size_t bad0 =
        check_layer(gpu_fields, gpu_scales, k_f, v_f, "summarize fields, layer 0", &fields);
    const size_t bad2 =
        check_layer(layer2_fields, layer2_scales, k2_f, v2_f, "summarize fields, layer 2", nullptr);
    if (bad0 + bad2 > 0) return;  // scores would only repeat the failure
  }

  // ---- score, kCalls times (State evolves) ----
  const int32_t num_rows = static_cast<int32_t>(l.row_count.size());
  const int32_t sstride = module.state_stride();
  DeviceArray<int32_t> d_q_rows(l.q_rows), d_row_page_offset(l.row_page_offset);
  DeviceArray<int32_t> d_pages(l.pages), d_row_first(l.row_first), d_row_count(l.row_count);
  DeviceArray<float> d_state(static_cast<size_t>(l.pool * kKvHeads * std::max(sstride, 1)));
  check_cuda(
      cudaMemset(d_state.get(), 0,
                 static_cast<size_t>(l.pool * kKvHeads) * std::max(sstride, 1) * sizeof(float)),
      "state");
  DeviceArray<float> d_page_scratch(static_cast<size_t>(num_rows) * l.max_pages *
                                    std::max(module.page_scratch_floats(), 1));
  DeviceArray<float> d_row_scratch(static_cast<size_t>(num_rows) *
                                   std::max(module.row_scratch_floats(), 1));
  std::vector<flow::RowState> states(static_cast<size_t>(num_rows));
  const int32_t num_seqs = static_cast<int32_t>(l.seq_pages.size());
  // Each row's tokens: its n pages, the last one partial for most rows (num_pages() is n).
  std::vector<int32_t> row_tokens(static_cast<size_t>(num_rows));
  for (int32_t r = 0; r < num_rows; ++r) {
    const int32_t n = l.seq_pages[static_cast<size_t>(r / kKvHeads)];
    row_tokens[static_cast<size_t>(r)] =
        n == 0 ? 0 : n * static_cast<int32_t>(P) - r % static_cast<int32_t>(P);
  }
  DeviceArray<int32_t> d_row_tokens(row_tokens);

  for (int call = 0; call < kCalls; ++call) {
    SCOPED_TRACE("score call " + std::to_string(call));
    std::vector<float> q_f;
    std::vector<uint16_t> q =
        test::random_bf16(static_cast<size_t>(num_seqs * Hq * D), rng, 1.0f, &q_f);
    std::vector<int32_t> item_row, item_begin;
    make_worklist(l, call == 2, &item_row, &item_begin);
    const int num_items = static_cast<int>(item_row.size());
    const int grid = call == 0 ? 3 : call == 1 ? num_items + 2 : 64;
    DeviceArray<uint16_t> d_q(q);
    DeviceArray<int32_t> d_item_row(item_row), d_item_begin(item_begin);
    DeviceArray<int32_t> d_num(std::vector<int32_t>{num_items});
    DeviceArray<float> d_scores(static_cast<size_t>(num_rows) * l.max_pages);  // poisoned NaN
    flow::CudaScoreArgs a;
    a.q = d_q.get();
    a.q_rows = d_q_rows.get();
    a.row_page_offset = d_row_page_offset.get();
    a.pages = d_pages.get();
    a.row_first = d_row_first.get();
    a.row_count = d_row_count.get();
    a.item_row = d_item_row.get();
    a.item_begin = d_item_begin.get();
    a.num_items = d_num.get();
    a.fields = d_fields.get();
    a.field_scales = d_scales.get();
    a.state = d_state.get();
    a.page_scratch = d_page_scratch.get();
    a.row_scratch = d_row_scratch.get();
    a.scores = d_scores.get();
    a.num_rows = num_rows;
    a.num_q_heads = static_cast<int32_t>(Hq);
    a.num_kv_heads = kKvHeads;
    a.max_pages = l.max_pages;
    a.field_stride = fstride;
    a.state_stride = sstride;
    a.num_pages = l.pool;
    a.row_num_tokens = d_row_tokens.get();  // num_pages()
    a.page_size = static_cast<int32_t>(P);
    // The fused kernel starts from the same State (it updates State as score does).
    const size_t state_elems = static_cast<size_t>(l.pool * kKvHeads * std::max(sstride, 1));
    DeviceArray<float> d_state_before(state_elems);
    check_cuda(cudaMemcpy(d_state_before.get(), d_state.get(), state_elems * sizeof(float),
                          cudaMemcpyDeviceToDevice),
               "state copy");
    module.launch_score(a, grid, nullptr);
    check_cuda(cudaGetLastError(), "score");
    const std::vector<float> gpu_scores = d_scores.download();
    const std::vector<float> gpu_state = d_state.download();
    if (module.has_score_select())
      check_fused_select(module, a, l, g, gpu_scores, gpu_state, d_state_before, rng);

    // CPU reference.
    std::vector<std::vector<float>> want(static_cast<size_t>(num_rows));
    std::vector<std::vector<const float*>> page_fields(static_cast<size_t>(num_rows));
    std::vector<flow::ScoreRow> rows;
    for (int32_t r = 0; r < num_rows; ++r) {
      const int32_t n = l.row_count[static_cast<size_t>(r)];
      if (n <= 0) continue;
      const int32_t s = r / kKvHeads, h = r % kKvHeads;
      auto& pf = page_fields[static_cast<size_t>(r)];
      for (int32_t i = 0; i < n; ++i) {
        const int32_t page = l.pages[static_cast<size_t>(l.row_page_offset[static_cast<size_t>(r)] +
                                                         l.row_first[static_cast<size_t>(r)] + i)];
        pf.push_back(fields.data() + (static_cast<int64_t>(page) * kKvHeads + h) * ff);
      }
      want[static_cast<size_t>(r)].resize(static_cast<size_t>(n));
      const float* qr = q_f.data() + (l.q_rows[static_cast<size_t>(s)] * Hq + h * G) * D;
      rows.push_back(flow::ScoreRow{
          qr, n, pf.data(), &states[static_cast<size_t>(r)], l.row_first[static_cast<size_t>(r)],
          want[static_cast<size_t>(r)].data(), l.seq_pages[static_cast<size_t>(s)]});
    }
    cpu.score_rows(rows);

    Mismatches bad_scores("scores");
    for (int32_t r = 0; r < num_rows; ++r) {
      const auto& w = want[static_cast<size_t>(r)];
      if (w.empty()) continue;
      double lo = INFINITY, hi = -INFINITY, big = 0;
      for (float x : w)
        if (std::isfinite(x)) {
          lo = std::min<double>(lo, x);
          hi = std::max<double>(hi, x);
          big = std::max(big, std::fabs(static_cast<double>(x)));
        }
      const double spread = hi > lo ? hi - lo : 0.0;
      const double tol = 1e-3 * std::max(spread, 0.05 * big) + 1e-30;
      for (size_t i = 0; i < w.size(); ++i) {
        const float got = gpu_scores[static_cast<size_t>(r) * l.max_pages + i];
        bad_scores.checked();
        if (!close_enough(got, w[i], tol))
          bad_scores.add(str_cat("row ", r, " (seq ", r / kKvHeads, " head ", r % kKvHeads,
                                 ", N=", w.size(), ") page ", i),
                         got, w[i], tol);
      }
    }
    bad_scores.report();

    if (cpu.has_state()) {
      Mismatches bad_state("State");
      std::vector<bool> scored(static_cast<size_t>(l.pool * kKvHeads), false);
      for (int32_t r = 0; r < num_rows; ++r) {
        const int32_t n = l.row_count[static_cast<size_t>(r)];
        const int32_t h = r % kKvHeads;
        for (int32_t i = 0; i < n; ++i) {
          const int32_t pos = l.row_first[static_cast<size_t>(r)] + i;
          const int32_t page =
              l.pages[static_cast<size_t>(l.row_page_offset[static_cast<size_t>(r)] + pos)];
          scored[static_cast<size_t>(page * kKvHeads + h)] = true;
          int64_t off = 0;
          for (size_t s = 0; s < cpu.state_slots().size(); ++s) {
            const flow::FieldSlot& slot = cpu.state_slots()[s];
            for (int64_t e = 0; e < slot.num_floats; ++e) {
              const float w =
                  states[static_cast<size_t>(r)].page_state(static_cast<int>(s), pos)[e];
              const float got =
                  gpu_state[static_cast<size_t>((page * kKvHeads + h) * sstride + off + e)];
              const double tol = 1e-4 * std::fabs(w) + 1e-6;
              bad_state.checked();
              if (!close_enough(got, w, tol))
                bad_state.add(str_cat("row ", r, " page position ", pos, " (physical ", page,
                                      ") state ", s, "[", e, "]"),
                              got, w, tol);
            }
            off += slot.num_floats;
          }
        }
      }
      for (int64_t b = 0; b < l.pool * kKvHeads; ++b) {
        if (scored[static_cast<size_t>(b)]) continue;
        for (int64_t e = 0; e < module.state_floats(); ++e) {
          bad_state.checked();
          const float got = gpu_state[static_cast<size_t>(b * sstride + e)];
          if (got != 0.0f)
            bad_state.add(str_cat("unscored block ", b, " state[", e, "]"), got, 0.0, 0.0);
        }
      }
      bad_state.report();
      if (bad_state.count() > 0) return;
    }
    if (bad_scores.count() > 0) return;  // later calls would only repeat it
  }
}

// Runs the fused score-and-select kernel with the arguments of a per-page score launch `a` (whose
// results were `scores` and `state`, from the State now in d_state_before) and plans with k
// from 0 to N: its scores and State must be those bits, and its page lists those of
// flow::select_pages on the scores.
void check_fused_select(const CudaFlowModule& module, flow::CudaScoreArgs a, const RowLayout& l,
                        const FlowGeometry& g, const std::vector<float>& scores,
                        const std::vector<float>& state, DeviceArray<float>& d_state_before,
                        Rng& rng) {
  SCOPED_TRACE("fused score-and-select kernel " + module.source().select_kernel);
  const int32_t num_rows = a.num_rows;
  std::vector<int32_t> tokens(num_rows), k(num_rows), recent(num_rows);
  for (int32_t r = 0; r < num_rows; ++r) {
    const int32_t n = l.seq_pages[static_cast<size_t>(r / kKvHeads)];
    const int32_t count = l.row_count[static_cast<size_t>(r)];
    tokens[r] = n == 0 ? 0 : n * g.P - static_cast<int32_t>(rng.next_u64() % g.P);
    recent[r] = l.row_first[static_cast<size_t>(r)] + count;
    k[r] = count * static_cast<int32_t>(r % 5) / 4;  // 0, N/4, N/2, 3N/4, N
    // Some rows without scoreable pages are another flow's (page_selection.h's kRowSkip).
    if (count == 0 && r % 2 == 1) k[r] = -1;
  }
  DeviceArray<int32_t> d_tokens(tokens), d_k(k), d_recent(recent);
  DeviceArray<int32_t> d_out(static_cast<size_t>(num_rows) * l.max_pages);  // poisoned -1
  DeviceArray<int32_t> d_out_tokens(static_cast<size_t>(num_rows));
  DeviceArray<float> d_scores(static_cast<size_t>(num_rows) * l.max_pages);  // poisoned NaN
  a.state = d_state_before.get();
  a.scores = d_scores.get();
  a.row_num_tokens = d_tokens.get();
  a.row_k = d_k.get();
  a.row_recent_begin = d_recent.get();
  a.out_pages = d_out.get();
  a.out_num_tokens = d_out_tokens.get();
  a.page_size = g.P;
  module.launch_score_select(a, nullptr);
  check_cuda(cudaGetLastError(), "score-and-select");
  const std::vector<float> got_scores = d_scores.download();
  const std::vector<float> got_state = d_state_before.download();
  const std::vector<int32_t> out = d_out.download(), out_tokens = d_out_tokens.download();

  int failures = 0;
  for (int32_t r = 0; r < num_rows && failures < 5; ++r) {
    const int32_t n = l.seq_pages[static_cast<size_t>(r / kKvHeads)];
    const int32_t count = l.row_count[static_cast<size_t>(r)];
    const size_t base = static_cast<size_t>(r) * l.max_pages;
    const std::string row = str_cat("row ", r, " (n ", n, ", N ", count, ", k ", k[r], ")");
    if (std::memcmp(got_scores.data() + base, scores.data() + base,
                    static_cast<size_t>(count) * sizeof(float)) != 0) {
      ADD_FAILURE() << row << ": the fused kernel's scores differ from the per-page kernel's";
      ++failures;
      continue;
    }
    flow::RowPlan plan;
    plan.num_pages = n;
    plan.sink_end = l.row_first[static_cast<size_t>(r)];
    plan.recent_begin = recent[r];
    plan.k = count == 0 ? 0 : k[r];
    plan.read_all = count == 0;
    const bool skipped = k[r] < 0;  // nothing of it written: the poison stays
    const std::vector<int32_t> positions =
        skipped ? std::vector<int32_t>{}
                : flow::select_pages(plan, std::span<const float>(scores.data() + base,
                                                                  static_cast<size_t>(count)));
    std::vector<int32_t> want(static_cast<size_t>(l.max_pages), -1);  // the poison stays
    int64_t want_tokens = skipped ? -1 : 0;
    for (size_t j = 0; j < positions.size(); ++j) {
      const int32_t p = positions[j];
      want[j] = l.pages[static_cast<size_t>(l.row_page_offset[static_cast<size_t>(r)] + p)];
      want_tokens += p == n - 1 ? tokens[r] - (n - 1) * g.P : g.P;
    }
    const std::vector<int32_t> got(out.begin() + static_cast<std::ptrdiff_t>(base),
                                   out.begin() + static_cast<std::ptrdiff_t>(base) + l.max_pages);
    EXPECT_EQ(got, want) << row;
    EXPECT_EQ(out_tokens[r], want_tokens) << row;
    if (got != want || out_tokens[r] != want_tokens) ++failures;
  }
  EXPECT_EQ(std::memcmp(got_state.data(), state.data(), state.size() * sizeof(float)), 0)
      << "the fused kernel's State differs from the per-page kernel's";
}

TEST(CudaFlowKernels, EveryFlowMatchesTheCpuExecutor) {
  VORTEX_REQUIRE_GPU();
  // Per geometry: the default form (0: lane groups where the program allows), one thread per
  // page (1), and one other group size (2 lanes: several trips over D; 4 lanes: 2 trips at
  // D = 64; 16 lanes: one trip at D = 128).
  struct Case {
    FlowGeometry g;
    int other_lanes;
  };
  const Case cases[] = {{{4, 128, 16}, 16}, {{8, 64, 64}, 4}, {{1, 128, 16}, 2}, {{2, 64, 16}, 16}};
  for (const fs::path& path : all_flows()) {
    const FlowProgram program = compile_file(path);
    if (program.score.ops.empty()) continue;
    for (const Case& c : cases) {
      for (int lanes : {0, 1, c.other_lanes}) {
        try {
          check_flow(program, c.g, lanes, 1234);
        } catch (const Error& e) {
          ADD_FAILURE() << path.filename() << " G=" << c.g.G << " D=" << c.g.D << " P=" << c.g.P
                        << " score_lanes=" << lanes << ": " << e.what();
        }
      }
    }
  }
}

// The flows the cooperative kernel is for get it by default.
TEST(CudaFlowKernels, BlockTopkAndQuestUseLaneGroups) {
  VORTEX_REQUIRE_GPU();
  for (const char* name : {"block_topk", "quest"}) {
    const FlowProgram program =
        compile_file(fs::path(VORTEX_SOURCE_DIR) / "flows" / (std::string(name) + ".py"));
    ASSERT_FALSE(program.score.ops.empty());
    const flow::CudaCodegenOptions automatic;
    CudaFlowModule module =
        CudaFlowModule::make(program, FlowGeometry{2, 128, 16}, cache_dir(), &automatic);
    ASSERT_EQ(module.source().score_kernels.size(), 1u);
    EXPECT_GT(module.source().score_kernels[0].lanes, 1) << name;
    EXPECT_TRUE(module.has_score_select()) << name;
    EXPECT_EQ(module.source().select_lanes, module.source().score_kernels[0].lanes) << name;
  }
}

// A row of more scoreable pages than the selection's shared-memory cache (4096): the fused
// kernel selects it from the scores it wrote to global memory.
TEST(CudaFlowKernels, FusedSelectOfARowLongerThanTheKeyCache) {
  VORTEX_REQUIRE_GPU();
  const FlowProgram program = compile_file(fs::path(VORTEX_SOURCE_DIR) / "flows" / "block_topk.py");
  ASSERT_FALSE(program.score.ops.empty());
  check_flow(program, FlowGeometry{2, 64, 16}, 0, 99, {4400, 7});
}

// The runner records the launches in a CUDA graph: capture summarize + score on a stream and
// replay; the results equal those of direct launches.
TEST(CudaFlowKernels, LaunchesReplayFromACudaGraph) {
  VORTEX_REQUIRE_GPU();
  const FlowProgram program =
      compile_file(fs::path(VORTEX_SOURCE_DIR) / "flows" / "gqa_softmax_max.py");
  ASSERT_FALSE(program.score.ops.empty());
  const FlowGeometry g{4, 128, 16};
  CudaFlowModule module = CudaFlowModule::make(program, g, cache_dir());
  Rng rng(7);
  const RowLayout l = make_layout(rng);
  const int64_t block = g.P * g.D, Hq = g.G * kKvHeads;
  std::vector<float> unused;
  DeviceArray<uint16_t> d_k(
      test::random_bf16(static_cast<size_t>(l.pool * kKvHeads * block), rng, 1.0f, &unused));
  DeviceArray<uint16_t> d_q(
      test::random_bf16(static_cast<size_t>(l.seq_pages.size() * Hq * g.D), rng, 1.0f, &unused));
  std::vector<int32_t> item_row, item_begin;
  make_worklist(l, false, &item_row, &item_begin);
  DeviceArray<int32_t> d_items(l.pages);
  DeviceArray<int32_t> d_num_pages(std::vector<int32_t>{static_cast<int32_t>(l.pages.size())});
  DeviceArray<uint16_t> d_fields(static_cast<size_t>(l.pool * kKvHeads * module.field_stride()));
  DeviceArray<float> d_scales(
      static_cast<size_t>(l.pool * kKvHeads * std::max(module.source().field_scales, 1)));
  DeviceArray<int32_t> d_q_rows(l.q_rows), d_offset(l.row_page_offset), d_pages(l.pages);
  DeviceArray<int32_t> d_first(l.row_first), d_count(l.row_count);
  DeviceArray<int32_t> d_item_row(item_row), d_item_begin(item_begin);
  DeviceArray<int32_t> d_num_items(std::vector<int32_t>{static_cast<int32_t>(item_row.size())});
  const int32_t num_rows = static_cast<int32_t>(l.row_count.size());
  DeviceArray<float> d_scratch(static_cast<size_t>(num_rows) * l.max_pages *
                               std::max(module.page_scratch_floats(), 1));
  DeviceArray<float> d_row_scratch(static_cast<size_t>(num_rows) + 1);
  DeviceArray<float> d_scores(static_cast<size_t>(num_rows) * l.max_pages);

  const flow::CudaSummarizeArgs sa =
      one_layer_summarize(d_k.get(), d_k.get(), d_fields.get(), d_scales.get(), d_items.get(),
                          d_num_pages.get(), block, module.field_stride(), l.pool);
  flow::CudaScoreArgs a;
  a.q = d_q.get();
  a.q_rows = d_q_rows.get();
  a.row_page_offset = d_offset.get();
  a.pages = d_pages.get();
  a.row_first = d_first.get();
  a.row_count = d_count.get();
  a.item_row = d_item_row.get();
  a.item_begin = d_item_begin.get();
  a.num_items = d_num_items.get();
  a.fields = d_fields.get();
  a.field_scales = d_scales.get();
  a.page_scratch = d_scratch.get();
  a.row_scratch = d_row_scratch.get();
  a.scores = d_scores.get();
  a.num_rows = num_rows;
  a.num_q_heads = static_cast<int32_t>(Hq);
  a.num_kv_heads = kKvHeads;
  a.max_pages = l.max_pages;
  a.field_stride = module.field_stride();
  a.num_pages = l.pool;

  module.launch_summarize(sa, static_cast<int>(l.pages.size()), nullptr);
  module.launch_score(a, 16, nullptr);
  const std::vector<float> direct = d_scores.download();

  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  check_cuda(cudaMemset(d_scores.get(), 0xff, direct.size() * sizeof(float)), "poison");
  check_cuda(cudaMemset(d_fields.get(), 0xff,
                        static_cast<size_t>(l.pool * kKvHeads * module.field_stride()) * 2),
             "poison");
  // The memsets run on the legacy default stream, which a non-blocking stream does not wait
  // for: finish them before the graph runs, or they may overwrite what it writes.
  check_cuda(cudaDeviceSynchronize(), "poison");
  cudaGraph_t graph;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
  module.launch_summarize(sa, static_cast<int>(l.pages.size()), stream);
  module.launch_score(a, 16, stream);
  check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
  cudaGraphExec_t exec;
  check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  check_cuda(cudaGraphLaunch(exec, stream), "graph launch");
  check_cuda(cudaStreamSynchronize(stream), "graph run");
  const std::vector<float> replayed = d_scores.download();
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  for (int32_t r = 0; r < num_rows; ++r)
    for (int32_t i = 0; i < l.row_count[static_cast<size_t>(r)]; ++i) {
      const size_t at = static_cast<size_t>(r) * l.max_pages + static_cast<size_t>(i);
      ASSERT_EQ(replayed[at], direct[at]) << "row " << r << " page " << i;
    }
}

}  // namespace
}  // namespace vortex
