// `vortex check FLOW.py...`: compiles flows for a model's geometry (or symbolically) and reports
// their fields, per-page memory overhead, budget policy and any errors. With --target cuda it
// also generates the flow's CUDA kernels and compiles them with NVRTC (no GPU needed).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/submit_pipeline.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/json_file.h"
#include "flow/codegen/cuda_codegen.h"
#include "flow/codegen/nvrtc_compiler.h"
#include "flow/compiler.h"
#include "flow/source_file.h"
#include "model/model_config.h"
#include "model/presets.h"

namespace vortex::cli {

namespace {

struct CheckArgs {
  std::vector<std::string> files;
  std::string model;
  int64_t page_size = 16;
  bool json = false;
  bool dump_ir = false;
  bool page_size_given = false;
  std::string target = "cpu";
  std::string arch = "sm_90a";
  bool dump_cuda = false;
  std::string score_lanes = "auto";  // --flow-score-lanes, for --target cuda
  // Each error's source line and a caret under it, after its one-line message: on by default
  // where stderr is a terminal, so piped output (scripts, agents) has one line per error.
  bool show_source = false;
  // With --context: the estimated bytes and time of one decode step of `batch` rows of `context`
  // tokens on the model, with the flow and with full attention.
  int64_t context = 0;
  int64_t batch = 32;
};

flow::CudaCodegenOptions codegen_options(const CheckArgs& args) {
  flow::CudaCodegenOptions o;
  o.score_lanes = flow::parse_score_lanes(args.score_lanes);
  return o;
}

struct ResolvedGeometry {
  flow::FlowGeometry geometry;
  bool bound = false;
  std::string model;
  int64_t num_layers = 0;             // with --model: dense layers must exist
  std::optional<ModelConfig> config;  // with --model
};

ResolvedGeometry resolve_geometry(const CheckArgs& args) {
  ResolvedGeometry r;
  if (args.page_size <= 0 || (args.page_size & (args.page_size - 1)) != 0 || args.page_size > 4096)
    fail_usage("--page-size must be a power of two up to 4096, got ", args.page_size);
  if (args.target == "cuda" && (args.arch.rfind("sm_", 0) != 0 || args.arch.size() < 5))
    fail_usage("--arch must name a real GPU architecture such as sm_90a or sm_80, got '", args.arch,
               "'");
  if (args.target == "cuda" && args.model.empty())
    fail_usage(
        "--target cuda generates kernels for concrete sizes: pass --model (a preset or a "
        "model directory) to bind G and D");
  if (args.model.empty()) {
    // Without a model only P can be bound; G and D stay symbolic.
    if (args.page_size_given) {
      r.geometry.P = args.page_size;
      r.bound = true;
      r.model = "symbolic G, D";
    }
    return r;
  }
  std::optional<ModelConfig> config = preset_config(args.model);
  if (!config) {
    if (!std::filesystem::is_directory(args.model)) {
      std::string presets;
      for (const std::string& p : preset_names()) presets += (presets.empty() ? "" : ", ") + p;
      fail_usage("--model '", args.model, "' is neither a preset (", presets,
                 ") nor a directory with config.json");
    }
    config = load_model_config(args.model);
  }
  r.geometry.G = config->group_size();
  r.geometry.D = config->head_dim;
  r.geometry.P = args.page_size;
  r.bound = true;
  r.model = args.model;
  r.num_layers = config->num_layers;
  r.config = config;
  return r;
}

std::string shape_text(const flow::Shape& dims) {
  return dims.empty() ? "[] (scalar)" : flow::shape_to_string(dims);
}

// Elements of one field per (page, KV head, layer), if every dim is concrete.
std::optional<int64_t> field_elements(const flow::FieldDecl& f) {
  int64_t n = 1;
  for (const flow::Dim& d : f.dims) {
    if (!d.is_constant()) return std::nullopt;
    n *= d.num;
  }
  return n;
}

// Bytes one (page, KV head, layer) of a field of n values takes where a GPU serves it: bf16 2
// each, int8 1 each plus its f32 scale, a State f32 4 each. (The CPU backend keeps every value
// in f32, as it keeps K and V.)
int64_t stored_bytes(const flow::FieldDecl& f, int64_t n) {
  if (f.kind == flow::FieldKind::kState) return 4 * n;
  return f.dtype == flow::FieldDtype::kInt8 ? n + 4 : 2 * n;
}

const char* dtype_text(const flow::FieldDecl& f) {
  if (f.kind == flow::FieldKind::kState) return "f32";
  return f.dtype == flow::FieldDtype::kInt8 ? "int8" : "bf16";
}

std::string budget_text(const flow::BudgetPolicy& b) {
  std::string out;
  if (b.pages)
    out += "pages=" + std::to_string(*b.pages);
  else {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", b.effective_ratio());
    out += std::string("ratio=") + buf;
  }
  out += " floor=" + std::to_string(b.floor);
  out += " cap=" + (b.cap ? std::to_string(*b.cap) : std::string("none"));
  out += " sink=" + std::to_string(b.sink) + " recent=" + std::to_string(b.recent);
  out += " dense_layers=[";
  for (size_t i = 0; i < b.dense_layers.size(); ++i)
    out += (i ? ", " : "") + std::to_string(b.dense_layers[i]);
  return out + "]";
}

Json budget_json(const flow::BudgetPolicy& b) {
  Json j;
  j["pages"] = b.pages ? Json(*b.pages) : Json(nullptr);
  j["ratio"] = b.pages ? Json(nullptr) : Json(b.effective_ratio());
  j["floor"] = b.floor;
  j["cap"] = b.cap ? Json(*b.cap) : Json(nullptr);
  j["sink"] = b.sink;
  j["recent"] = b.recent;
  j["dense_layers"] = b.dense_layers;
  return j;
}

const char* kernel_kind_name(flow::CudaKernelKind k) {
  return k == flow::CudaKernelKind::kPerPage ? "per-page" : "per-row";
}

// --target cuda: generates the kernels and compiles them with NVRTC. Fills report["cuda"];
// `text` gets the lines of the human-readable report. Returns whether both steps succeeded.
bool check_cuda_target(const std::string& path, const std::string& source,
                       const flow::FlowProgram& program, const ResolvedGeometry& geo,
                       const CheckArgs& args, Json& report, std::string& text) {
  Json cuda;
  cuda["arch"] = args.arch;
  cuda["ok"] = false;
  // A failure is also one of the report's errors, so `ok: false` never comes without one.
  auto error = [&](const std::string& message, const std::string& rendered,
                   flow::SourceLoc loc = {}, const std::string& detail = "") {
    cuda["error"] = message;
    report["cuda"] = cuda;
    report["errors"].push_back(
        {{"line", loc.line}, {"col", loc.col}, {"message", detail.empty() ? message : detail}});
    text += rendered;
    return false;
  };
  flow::CudaFlowSource generated;
  try {
    generated = flow::generate_cuda_flow(program, geo.geometry, codegen_options(args));
  } catch (const flow::CudaCodegenError& e) {
    const flow::SourceLoc loc = e.loc().line > 0 ? e.loc() : program.loc;
    flow::Diagnostic d{flow::Severity::kError, loc, e.detail(), {}};
    return error(e.what(), flow::format_diagnostics({d}, source, path, args.show_source), loc,
                 e.detail());
  } catch (const Error& e) {
    return error(e.what(), std::string(e.what()) + "\n");
  }
  Json kernels = Json::array();
  if (!generated.summarize_kernel.empty())
    kernels.push_back({{"name", generated.summarize_kernel}, {"phase", "summarize"}});
  for (const flow::CudaScoreKernel& k : generated.score_kernels)
    kernels.push_back({{"name", k.name},
                       {"phase", "score"},
                       {"kind", kernel_kind_name(k.kind)},
                       {"lanes_per_page", k.lanes}});
  if (!generated.select_kernel.empty())
    kernels.push_back({{"name", generated.select_kernel},
                       {"phase", "score+select"},
                       {"kind", "per-row"},
                       {"lanes_per_page", generated.select_lanes}});
  cuda["kernels"] = kernels;
  cuda["field_floats"] = generated.field_floats;
  cuda["field_stride"] = generated.field_stride;
  cuda["field_scales"] = generated.field_scales;
  cuda["state_floats"] = generated.state_floats;
  cuda["state_stride"] = generated.state_stride;
  cuda["page_scratch_floats"] = generated.page_scratch_floats;
  cuda["row_scratch_floats"] = generated.row_scratch_floats;
  cuda["source_bytes"] = generated.source.size();
  if (args.dump_cuda && !args.json) text += generated.source;

  std::string why;
  if (!flow::nvrtc_available(&why))
    return error("NVRTC unavailable: " + why, path + ": error: NVRTC unavailable: " + why + "\n");
  flow::NvrtcOptions opt;
  opt.arch = args.arch;
  opt.display_name = path + ".cu";
  flow::NvrtcResult compiled;
  const auto start = std::chrono::steady_clock::now();
  try {
    compiled = flow::nvrtc_compile(generated.source, opt);
  } catch (const Error& e) {
    return error(e.what(), path + ": error: " + e.what() + "\n");
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  cuda["ok"] = true;
  cuda["nvrtc"] = flow::nvrtc_version();
  cuda["cached"] = compiled.from_cache;
  cuda["cubin_bytes"] = compiled.cubin.size();
  cuda["cache_path"] = compiled.cache_path.empty() ? Json(nullptr) : Json(compiled.cache_path);
  cuda["compile_s"] = seconds;
  report["cuda"] = cuda;

  char line[256];
  std::snprintf(line, sizeof line, "  cuda %s (NVRTC %s): %s in %.2f s, CUBIN %zu B\n",
                args.arch.c_str(), flow::nvrtc_version().c_str(),
                compiled.from_cache ? "compiled (cached)" : "compiled", seconds,
                compiled.cubin.size());
  text += line;
  if (!generated.summarize_kernel.empty())
    text += "    kernel " + generated.summarize_kernel + " (summarize)\n";
  for (const flow::CudaScoreKernel& k : generated.score_kernels)
    text += "    kernel " + k.name + " (score, " + kernel_kind_name(k.kind) + ")" +
            (k.lanes > 1 ? str_cat(", ", k.lanes, " lanes per page") : std::string()) + "\n";
  if (!generated.select_kernel.empty())
    text += "    kernel " + generated.select_kernel + " (score + select, one block per row" +
            (generated.select_lanes > 1 ? str_cat(", ", generated.select_lanes, " lanes per page")
                                        : std::string()) +
            ")\n";
  std::snprintf(
      line, sizeof line,
      "    fields %d values (block %d B + %d int8 scales), state %d floats (stride %d f32), "
      "scratch %d per page + %d per row\n",
      generated.field_floats, 2 * generated.field_stride, generated.field_scales,
      generated.state_floats, generated.state_stride, generated.page_scratch_floats,
      generated.row_scratch_floats);
  text += line;
  if (!compiled.log.empty()) text += "    NVRTC log:\n" + compiled.log + "\n";
  return true;
}

// Checks one file; prints its report; returns whether it compiled.
// Bytes a flow stores per (page, KV head, layer) for the geometry, as `report` fields too.
struct Storage {
  int64_t field_bytes = 0, state_bytes = 0;
  bool concrete = true;             // every field's size is known (the geometry is bound)
  std::optional<int64_t> kv_bytes;  // K and V of one page and KV head in bf16
};

Storage storage_of(const flow::FlowProgram& program, const ResolvedGeometry& geo, Json& report) {
  Storage st;
  int64_t& field_bytes = st.field_bytes;
  int64_t& state_bytes = st.state_bytes;
  bool& concrete = st.concrete;
  std::optional<int64_t>& kv_bytes = st.kv_bytes;
  Json fields = Json::array();
  for (const flow::FieldDecl& f : program.fields) {
    std::optional<int64_t> n = field_elements(f);
    concrete = concrete && n.has_value();
    if (n) (f.kind == flow::FieldKind::kField ? field_bytes : state_bytes) += stored_bytes(f, *n);
    Json shape = Json::array();
    for (const flow::Dim& d : f.dims) shape.push_back(flow::dim_to_string(d));
    fields.push_back({{"name", f.name},
                      {"kind", f.kind == flow::FieldKind::kField ? "Field" : "State"},
                      {"shape", shape},
                      {"dtype", dtype_text(f)},
                      {"bytes", n ? Json(stored_bytes(f, *n)) : Json(nullptr)}});
  }
  // K and V of one page and KV head in bf16: 2 tensors x P x D x 2 bytes.
  if (geo.geometry.D > 0 && geo.geometry.P > 0) kv_bytes = 2 * geo.geometry.P * geo.geometry.D * 2;
  report["class"] = program.class_name;
  report["fields"] = fields;
  report["field_bytes_per_page"] = concrete ? Json(field_bytes) : Json(nullptr);
  report["state_bytes_per_page"] = concrete ? Json(state_bytes) : Json(nullptr);
  report["kv_bytes_per_page"] = kv_bytes ? Json(*kv_bytes) : Json(nullptr);
  report["overhead_fraction"] =
      concrete && kv_bytes ? Json(static_cast<double>(field_bytes) / *kv_bytes) : Json(nullptr);
  return st;
}

// With --context: one decode step's bytes with the flow and with full attention, and the time
// on the reference card from them (an estimate). Adds report["step_estimate"]; returns the text.
std::string step_estimate(const flow::FlowProgram& program, const flow::CudaFlowSource& layout,
                          const ResolvedGeometry& geo, const CheckArgs& args, Json& report) {
  const agent::StepBytes b = agent::estimate_step_bytes(
      program.budget, layout, *geo.config, static_cast<int32_t>(geo.geometry.P),
      static_cast<int32_t>(args.batch), static_cast<int32_t>(args.context));
  const double bw = agent::kReferenceBandwidth;
  const double t_full = agent::estimated_step_seconds(b.full_total());
  const double t_flow = agent::estimated_step_seconds(b.flow_total());
  const double gb = 1e-9;
  report["step_estimate"] = {
      {"batch", args.batch},           {"context", args.context},
      {"card", agent::kReferenceCard}, {"estimate", true},
      {"gb", b.gigabytes_json()},      {"flow_part_ms", 1e3 * (b.fields + b.state) / bw},
      {"step_ms_flow", 1e3 * t_flow},  {"step_ms_full", 1e3 * t_full},
      {"speedup", t_full / t_flow}};
  char line[512];
  std::snprintf(line, sizeof line,
                "  decode step estimate (batch %lld x %lld tokens, bytes on an %s at %.2f TB/s):\n"
                "    flow's own part: Fields %.3f GB + State %.3f GB = %.3f ms bandwidth-bound\n"
                "    selected KV %.3f GB, dense layers' KV %.3f GB, weights %.3f GB\n"
                "    step ~%.2f ms against full attention's ~%.2f ms (%.3f GB KV): ~%.2fx "
                "(an estimate, not a measurement)\n",
                static_cast<long long>(args.batch), static_cast<long long>(args.context),
                agent::kReferenceCard, bw * 1e-12, b.fields * gb, b.state * gb,
                1e3 * (b.fields + b.state) / bw, b.selected_kv * gb, b.dense_kv * gb,
                b.weights * gb, 1e3 * t_flow, 1e3 * t_full, b.full_kv * gb, t_full / t_flow);
  return line;
}

// The text report of a flow that compiled (without the budget line and what follows it).
void print_report(const std::string& path, const flow::FlowProgram& program,
                  const ResolvedGeometry& geo, const Storage& st,
                  const std::optional<flow::CudaFlowSource>& layout) {
  const int64_t field_bytes = st.field_bytes, state_bytes = st.state_bytes;
  const bool concrete = st.concrete;
  const std::optional<int64_t>& kv_bytes = st.kv_bytes;
  std::printf("%s: ok: flow %s\n", path.c_str(), program.class_name.c_str());
  auto dim = [](int64_t v, const char* sym) {
    return v > 0 ? std::to_string(v) : std::string(sym);
  };
  if (geo.bound)
    std::printf("  geometry: %s (G=%s D=%s P=%s)\n", geo.model.c_str(),
                dim(geo.geometry.G, "G").c_str(), dim(geo.geometry.D, "D").c_str(),
                dim(geo.geometry.P, "P").c_str());
  else
    std::printf("  geometry: symbolic (pass --model to check sizes for a model)\n");
  if (program.fields.empty()) std::printf("  fields: none\n");
  for (const flow::FieldDecl& f : program.fields) {
    std::optional<int64_t> n = field_elements(f);
    std::printf("  %-6s %-12s %s", f.kind == flow::FieldKind::kField ? "field" : "state",
                f.name.c_str(), shape_text(f.dims).c_str());
    std::printf("  %s", dtype_text(f));
    if (n) std::printf("  %lld B", static_cast<long long>(stored_bytes(f, *n)));
    std::printf("\n");
  }
  if (concrete && kv_bytes) {
    std::printf(
        "  per-page overhead: %lld B per (page, KV head, layer) = %.2f%% of the page's "
        "K+V in bf16 (%lld B)\n",
        static_cast<long long>(field_bytes), 100.0 * field_bytes / *kv_bytes,
        static_cast<long long>(*kv_bytes));
    if (state_bytes)
      std::printf("  per-request state: %lld B per (request, page, KV head, layer)\n",
                  static_cast<long long>(state_bytes));
  } else if (concrete) {
    std::printf("  per-page overhead: %lld B per (page, KV head, layer) of fields\n",
                static_cast<long long>(field_bytes));
  } else {
    std::printf("  per-page overhead: depends on the geometry; pass --model for bytes\n");
  }
  if (layout) {
    std::printf(
        "  GPU footprint: Fields %lld B + State %lld B per (page, KV head, layer) (the Fields' "
        "values in one block padded to 16 B, plus a 4 B scale per int8 field; States padded to "
        "16 B)\n",
        2LL * layout->field_stride + 4LL * layout->field_scales, 4LL * layout->state_stride);
  }
  for (const flow::FieldDecl& f : program.fields) {
    std::optional<int64_t> n = field_elements(f);
    if (n && f.kind == flow::FieldKind::kField && f.dtype == flow::FieldDtype::kInt8 && *n < 4)
      std::printf(
          "  note: int8 field %s holds %lld value%s: its 4 B scale makes it larger than "
          "in bf16 (%lld B against %lld B)\n",
          f.name.c_str(), static_cast<long long>(*n), *n == 1 ? "" : "s",
          static_cast<long long>(*n + 4), static_cast<long long>(2 * *n));
  }
}

bool check_one(const std::string& path, const ResolvedGeometry& geo, const CheckArgs& args) {
  std::optional<std::string> source;
  Json report;
  report["file"] = path;
  try {
    source = flow::read_flow_source_file(path);
  } catch (const flow::FlowFileError& e) {
    // Not a flow file at all (missing, a directory, a FIFO, a device, too large): one line.
    if (args.json) {
      report["ok"] = false;
      report["errors"] = Json::array({{{"line", 0}, {"col", 0}, {"message", e.detail()}}});
      std::printf("%s\n", report.dump().c_str());
    } else {
      std::fprintf(stderr, "%s: error: %s\n", path.c_str(), e.detail().c_str());
    }
    return false;
  }
  flow::CompileOptions options;
  options.dump_ir = args.dump_ir;
  options.num_layers = geo.num_layers;
  flow::CompileResult result =
      flow::compile_flow(*source, path, geo.bound ? &geo.geometry : nullptr, options);

  if (args.dump_ir && !args.json)
    for (const std::string& dump : result.ir_dumps) std::printf("%s\n", dump.c_str());

  report["ok"] = result.ok();
  report["model"] = geo.bound ? Json(geo.model) : Json(nullptr);
  auto value_or_null = [](int64_t v) { return v > 0 ? Json(v) : Json(nullptr); };
  report["geometry"] = geo.bound ? Json{{"G", value_or_null(geo.geometry.G)},
                                        {"D", value_or_null(geo.geometry.D)},
                                        {"P", value_or_null(geo.geometry.P)}}
                                 : Json(nullptr);
  Json errors = Json::array();
  for (const flow::Diagnostic& d : result.diagnostics)
    errors.push_back({{"line", d.loc.line}, {"col", d.loc.col}, {"message", d.message}});
  report["errors"] = errors;
  if (!result.ok()) {
    if (args.json) {
      std::printf("%s\n", report.dump().c_str());
    } else {
      std::fputs(flow::format_compile_errors(result, *source, path, args.show_source).c_str(),
                 stderr);
      std::printf("%s: FAILED (%zu error%s)\n", path.c_str(), result.diagnostics.size(),
                  result.diagnostics.size() == 1 ? "" : "s");
    }
    return false;
  }

  const flow::FlowProgram& program = *result.program;
  const Storage st = storage_of(program, geo, report);
  report["budget"] = budget_json(program.budget);
  // What the GPU stores per (page, KV head, layer): every Field in one block padded to 16 bytes
  // (bf16 values, int8 values plus a 4-byte scale each), States in f32 padded to 16 bytes.
  std::optional<flow::CudaFlowSource> layout;
  std::string estimate_text;
  if (geo.bound && geo.geometry.G > 0 && geo.geometry.D > 0) {
    try {
      layout = flow::generate_cuda_flow(program, geo.geometry, flow::CudaCodegenOptions{});
    } catch (const Error&) {
      // compile_flow already ran the generator: reached only for limits the CUDA target
      // reports itself (--target cuda), never for a valid flow.
    }
  }
  if (layout) {
    const int64_t gpu_field = 2 * int64_t{layout->field_stride} + 4 * int64_t{layout->field_scales};
    const int64_t gpu_state = 4 * int64_t{layout->state_stride};
    report["gpu_field_bytes_per_page"] = gpu_field;
    report["gpu_state_bytes_per_page"] = gpu_state;
    if (args.context > 0 && geo.config)
      estimate_text = step_estimate(program, *layout, geo, args, report);
  }
  std::string cuda_text;
  bool cuda_ok = true;
  if (args.target == "cuda") {
    cuda_ok = check_cuda_target(path, *source, program, geo, args, report, cuda_text);
    report["ok"] = cuda_ok;
  }
  if (args.json) {
    if (args.dump_ir) report["ir"] = result.ir_dumps;
    std::printf("%s\n", report.dump().c_str());
    return cuda_ok;
  }

  print_report(path, program, geo, st, layout);
  std::printf("  budget: %s\n", budget_text(program.budget).c_str());
  std::fputs(estimate_text.c_str(), stdout);
  if (!cuda_ok) {
    std::fputs(cuda_text.c_str(), stderr);
    std::printf("%s: FAILED for --target cuda\n", path.c_str());
    return false;
  }
  std::fputs(cuda_text.c_str(), stdout);
  return true;
}

}  // namespace

Action add_check_command(CLI::App& app) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cmd = app.add_subcommand(
      "check", "Verify flow files: fields, per-page memory overhead, budget policy, errors");
  cmd->add_option("flows", args->files, "Flow files (.py)")->required();
  cmd->add_option("--model", args->model,
                  "Model directory (config.json) or preset name; without it, check symbolically");
  CLI::Option* page_size =
      cmd->add_option("--page-size", args->page_size, "Tokens per KV page (a power of two)");
  cmd->add_flag("--json", args->json, "Print one JSON object per file");
  cmd->add_flag("--dump-ir", args->dump_ir, "Print the IR after each compiler pass");
  cmd->add_option("--target", args->target,
                  "cpu: check the flow (default); cuda: also generate its CUDA kernels for the "
                  "model's geometry and compile them with NVRTC (no GPU needed; needs --model)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--arch", args->arch,
                  "GPU architecture for --target cuda: sm_90a (H100, default), sm_80, ...");
  cmd->add_flag("--dump-cuda", args->dump_cuda,
                "With --target cuda: print the generated CUDA source");
  cmd->add_option("--flow-score-lanes", args->score_lanes,
                  "With --target cuda: lanes per page of the per-page score kernel: auto, thread "
                  "(one thread per page) or 2, 4, 8, 16, 32 (as the engine flag of that name)")
      ->capture_default_str();
  cmd->add_option("--context", args->context,
                  "With --model: estimate one decode step of --batch rows of this many tokens "
                  "(bytes moved with the flow and with full attention, and the time on an H100 "
                  "from them)");
  cmd->add_option("--batch", args->batch, "Rows of the --context estimate")->capture_default_str();
  CLI::Option* show_source =
      cmd->add_flag("--show-source,!--no-show-source", args->show_source,
                    "After each error line, print the source line with a caret under the column "
                    "(default: only when stderr is a terminal)");
  return [args, page_size, show_source]() {
    args->page_size_given = page_size->count() > 0;
    if (show_source->count() == 0) args->show_source = isatty(STDERR_FILENO) != 0;
    if (args->context < 0 || args->context > (int64_t{1} << 24))
      fail_usage("--context must be in [1, 16777216], got ", args->context);
    if (args->batch < 1 || args->batch > 65536)
      fail_usage("--batch must be in [1, 65536], got ", args->batch);
    if (args->context > 0 && args->model.empty())
      fail_usage("--context estimates a decode step of a model: pass --model");
    try {
      flow::parse_score_lanes(args->score_lanes);
    } catch (const Error& e) {
      fail_usage("--flow-score-lanes ", e.what());
    }
    ResolvedGeometry geo = resolve_geometry(*args);
    bool all_ok = true;
    for (const std::string& file : args->files) all_ok = check_one(file, geo, *args) && all_ok;
    return all_ok ? 0 : 1;
  };
}

}  // namespace vortex::cli
