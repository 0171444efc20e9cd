// `vortex bench`: throughput and latency of a synthetic workload (B requests of L random prompt
// tokens, G generated tokens each), with the bandwidth floor of a decode step for comparison.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/model_flags.h"
#include "cli/progress.h"
#include "cli/sparse_flags.h"
#include "core/error.h"
#include "core/json_file.h"
#include "core/rng.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"

namespace vortex::cli {

namespace {

struct BenchArgs : ModelFlags {
  int32_t batch = 8, input_len = 512, output_len = 64;
  EngineFlags engine;
  uint64_t seed = 1;
  bool json = false;
  bool compare_full = false;
  SparseFlags sparse;
};

// The cache and the batch come from the workload: --batch is the batch limit.
EngineFlagSet bench_engine_flags() {
  EngineFlagSet set;
  set.kv_cache = false;
  set.max_batch = false;
  set.max_batch_flag = "--batch";
  set.default_max_step_tokens = 2048;
  return set;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double idx = p * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(idx));
  size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - static_cast<double>(lo));
}

// Runs the workload once (dense when `sparse` is null) and returns its figures.
Json run_bench(const LoadedModel& model, const BenchArgs& a, EngineOptions eo,
               const std::string& label, std::shared_ptr<const SparseAttentionConfig> sparse) {
  const ModelConfig& c = model.config;
  const int32_t pages_per_request = (a.input_len + a.output_len + eo.page_size - 1) / eo.page_size;
  eo.num_pages = a.batch * pages_per_request + 1;
  eo.sparse = sparse;
  Engine engine(model, eo);

  Rng rng(a.seed);
  GenerationParams gp;
  gp.max_tokens = a.output_len;
  gp.ignore_eos = true;
  for (int32_t b = 0; b < a.batch; ++b) {
    std::vector<int32_t> prompt(static_cast<size_t>(a.input_len));
    for (int32_t& t : prompt) t = static_cast<int32_t>(rng.next_u64() % c.vocab_size);
    engine.add_request(std::move(prompt), gp);
  }

  const double bandwidth = engine.runner().measure_bandwidth();
  const double weight_bytes = static_cast<double>(engine.runner().weight_bytes());
  const double kv_bytes_per_token =
      static_cast<double>(
          kv_bytes_per_page(eo.device, {c.num_layers, c.num_kv_heads, c.head_dim, eo.page_size})) /
      eo.page_size;

  // Prefill phase: steps that compute prompt tokens. Decode phase: steps where every request
  // decodes (full batch), which is what the step-time percentiles describe.
  double prefill_s = 0, decode_s = 0;
  int64_t prefill_tokens = 0, decode_tokens = 0;
  std::vector<double> step_s, step_floor_s, step_kv_bytes;
  const int64_t total = int64_t{a.batch} * (a.input_len + a.output_len);
  Progress progress(label.c_str(), total);
  int64_t done_tokens = 0;
  int64_t read_before = 0, dense_before = 0, profiled_before = 0, profiled_excluded = 0;
  while (engine.has_unfinished()) {
    engine.step();
    const StepInfo& s = engine.last_step();
    // A profiled step (GPU flows: every few steps, a copy of the step's graph with timing events
    // between its parts; the first one also captures that graph) is measurement, not serving:
    // it is left out of the decode figures, which the dense run has no such steps in either.
    bool profiled = false;
    if (const SparseStepProfile* pr = engine.runner().sparse_profile()) {
      profiled = pr->steps != profiled_before;
      profiled_before = pr->steps;
    }
    // The KV this step read: all of it when dense, the flow's share when sparse.
    double kv_fraction = 1.0;
    if (const SparseStats* ss = engine.runner().sparse_stats()) {
      int64_t read = ss->read_pages - read_before, dense = ss->dense_pages - dense_before;
      read_before = ss->read_pages;
      dense_before = ss->dense_pages;
      if (dense > 0) kv_fraction = static_cast<double>(read) / static_cast<double>(dense);
    }
    done_tokens += s.prefill_tokens + s.decode_tokens;
    progress.update(std::min(done_tokens, total));
    if (s.prefill_tokens > 0) {
      prefill_s += s.seconds;
      prefill_tokens += s.prefill_tokens;
    } else if (profiled) {
      ++profiled_excluded;
    } else {
      decode_s += s.seconds;
      decode_tokens += s.decode_tokens;
      if (s.decode_tokens == a.batch) {
        double kv = static_cast<double>(s.decode_kv_tokens) * kv_bytes_per_token * kv_fraction;
        step_s.push_back(s.seconds);
        step_kv_bytes.push_back(kv);
        step_floor_s.push_back((weight_bytes + kv) / bandwidth);
      }
    }
  }
  progress.update(total);
  std::fflush(stderr);

  const double p50 = percentile(step_s, 0.5), p95 = percentile(step_s, 0.95);
  const double floor_p50 = percentile(step_floor_s, 0.5);
  Json out = {
      {"label", label},
      {"model", a.model},
      {"device", a.engine.device},
      {"batch", a.batch},
      {"input_len", a.input_len},
      {"output_len", a.output_len},
      {"page_size", eo.page_size},
      {"prefill_first", eo.prefill_first},
      {"prefill_tokens", prefill_tokens},
      {"prefill_seconds", prefill_s},
      {"prefill_tokens_per_s", prefill_s > 0 ? prefill_tokens / prefill_s : 0.0},
      {"decode_tokens", decode_tokens},
      {"decode_seconds", decode_s},
      {"decode_tokens_per_s", decode_s > 0 ? decode_tokens / decode_s : 0.0},
      {"decode_steps_measured", step_s.size()},
      {"profiled_steps_excluded", profiled_excluded},
      {"decode_step_ms_p50", p50 * 1e3},
      {"decode_step_ms_p95", p95 * 1e3},
      {"kv_bytes_per_step_p50", percentile(step_kv_bytes, 0.5)},
      {"weight_bytes", weight_bytes},
      {"bandwidth_bytes_per_s", bandwidth},
      {"floor_step_ms_p50", floor_p50 * 1e3},
      {"floor_fraction", p50 > 0 ? floor_p50 / p50 : 0.0},
      {"kv_read_fraction", 1.0},
  };
  if (const SparseStats* ss = engine.runner().sparse_stats()) {
    out["flow"] = label;
    out.update(sparse_stats_json(*ss));
  }
  // Device time per part of the profiled decode steps (GPU runner with a flow).
  if (const SparseStepProfile* pr = engine.runner().sparse_profile(); pr && pr->steps > 0) {
    const double n = static_cast<double>(pr->steps);
    out["profiled_steps"] = pr->steps;
    out["fused_select_steps"] = pr->fused_select_steps;
    out["step_breakdown_ms"] = {
        {"plan", pr->plan_s / n * 1e3},
        {"summarize", pr->summarize_s / n * 1e3},
        {"score", pr->score_s / n * 1e3},
        {"select", pr->select_s / n * 1e3},
        {"sparse_attention", pr->attention_s / n * 1e3},
        {"dense_attention", pr->dense_attention_s / n * 1e3},
        {"other", (pr->step_s - pr->flow_s() - pr->attention_s - pr->dense_attention_s) / n * 1e3},
        {"step", pr->step_s / n * 1e3},
    };
    out["flow_overhead_fraction"] = pr->step_s > 0 ? pr->flow_s() / pr->step_s : 0.0;
  }
  return out;
}

// The per-part device time of a profiled sparse decode step, when the runner measured it.
void print_breakdown(const Json& r) {
  if (!r.contains("step_breakdown_ms")) return;
  const Json& b = r["step_breakdown_ms"];
  std::printf("  decode step breakdown of %s (device ms, mean of %lld profiled graph steps):\n",
              r["label"].get<std::string>().c_str(), r["profiled_steps"].get<long long>());
  const long long fused = r.value("fused_select_steps", 0LL);
  for (const char* part : {"plan", "summarize", "score", "select", "sparse_attention",
                           "dense_attention", "other", "step"}) {
    std::string name = part;
    if (fused > 0 && name == "score") name = "score (+ select, fused)";
    if (fused > 0 && name == "select") name = "select (separate)";
    std::printf("    %-26s %10.3f\n", name.c_str(), b[part].get<double>());
  }
  if (fused > 0)
    std::printf("    (%lld of the profiled steps scored and selected in one kernel)\n", fused);
  std::printf("    %-26s %9.1f%%\n", "flow overhead (plan..select)",
              100.0 * r["flow_overhead_fraction"].get<double>());
  std::printf("    (the profiled steps are not in the decode tokens/s and step times above)\n");
}

void print_single(const Json& r, const BenchArgs& a) {
  std::printf("vortex bench: %s on %s, batch %d, input %d, output %d, page %d%s%s\n",
              a.model.c_str(), a.engine.device.c_str(), a.batch, a.input_len, a.output_len,
              a.engine.page_size, r.contains("flow") ? ", flow " : "",
              r.contains("flow") ? r["flow"].get<std::string>().c_str() : "");
  auto row = [&](const char* name, const char* key, double scale, const char* fmt) {
    std::printf("  %-28s ", name);
    std::printf(fmt, r[key].get<double>() * scale);
    std::printf("\n");
  };
  // The step percentiles and the floor describe full-batch decode steps; a run whose requests
  // never all decode together (short outputs beside long prefills) has none to describe.
  const bool have_steps = r["decode_steps_measured"].get<int64_t>() > 0;
  auto step_row = [&](const char* name, const char* key, double scale, const char* fmt) {
    if (have_steps) return row(name, key, scale, fmt);
    std::printf("  %-28s %12s\n", name, "n/a");
  };
  row("prefill tokens/s", "prefill_tokens_per_s", 1, "%12.1f");
  row("decode tokens/s", "decode_tokens_per_s", 1, "%12.1f");
  step_row("decode step p50 (ms)", "decode_step_ms_p50", 1, "%12.3f");
  step_row("decode step p95 (ms)", "decode_step_ms_p95", 1, "%12.3f");
  step_row("KV read per step (MB)", "kv_bytes_per_step_p50", 1e-6, "%12.2f");
  row("weights read per step (MB)", "weight_bytes", 1e-6, "%12.2f");
  row("measured bandwidth (GB/s)", "bandwidth_bytes_per_s", 1e-9, "%12.2f");
  step_row("bandwidth floor (ms)", "floor_step_ms_p50", 1, "%12.3f");
  step_row("achieved / floor", "floor_fraction", 1, "%12.2f");
  if (!have_steps) {
    std::printf("  (no step had every request decoding: a longer --output-len measures decode)\n");
  }
  if (r.contains("flow")) {
    row("KV pages read (fraction)", "kv_read_fraction", 1, "%12.3f");
    // Host-timed parts exist only on the CPU; on the GPU the device breakdown below has them.
    if (a.engine.device == "cpu") {
      row("flow summarize (s)", "time_summarize_s", 1, "%12.3f");
      row("flow score+select (s)", "time_score_select_s", 1, "%12.3f");
      row("decode attention (s)", "time_decode_attention_s", 1, "%12.3f");
    }
    if (r.contains("recall_mean")) row("attention recall (mean)", "recall_mean", 1, "%12.3f");
  }
  print_breakdown(r);
}

void print_comparison(const std::vector<Json>& runs, const BenchArgs& a) {
  std::printf("vortex bench: %s on %s, batch %d, input %d, output %d, page %d\n", a.model.c_str(),
              a.engine.device.c_str(), a.batch, a.input_len, a.output_len, a.engine.page_size);
  std::printf("  %-28s %12s %12s %10s %10s %8s\n", "attention", "decode tok/s", "step p50 ms",
              "KV read", "recall", "speedup");
  for (const Json& r : runs) {
    std::string recall = r.contains("recall_mean")
                             ? std::to_string(r["recall_mean"].get<double>()).substr(0, 5)
                             : "-";
    std::string speedup =
        r.contains("decode_speedup_vs_full")
            ? std::to_string(r["decode_speedup_vs_full"].get<double>()).substr(0, 4) + "x"
            : "-";
    std::printf("  %-28s %12.1f %12.3f %10.3f %10s %8s\n", r["label"].get<std::string>().c_str(),
                r["decode_tokens_per_s"].get<double>(), r["decode_step_ms_p50"].get<double>(),
                r["kv_read_fraction"].get<double>(), recall.c_str(), speedup.c_str());
  }
  for (const Json& r : runs) print_breakdown(r);
}

}  // namespace

Action add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure prefill and decode throughput on a synthetic batch (random prompts)");
  add_model_flags(cmd, *a);
  cmd->add_option("--batch", a->batch, "Requests (B), all running at once")->capture_default_str();
  cmd->add_option("--input-len", a->input_len, "Prompt tokens per request (L)")
      ->capture_default_str();
  cmd->add_option("--output-len", a->output_len, "Generated tokens per request (G)")
      ->capture_default_str();
  add_engine_flags(cmd, a->engine, bench_engine_flags());
  cmd->add_option("--seed", a->seed, "Seed of the random prompts")->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the results as one JSON object");
  add_sparse_flags(cmd, a->sparse, /*several_flows=*/true);
  cmd->add_flag("--compare-full", a->compare_full,
                "Also run full attention on the same workload and report each flow's speed-up");

  return [a]() {
    if (a->batch < 1 || a->input_len < 1 || a->output_len < 1) {
      fail_usage("--batch, --input-len and --output-len must be at least 1");
    }
    a->engine.max_batch = a->batch;
    const EngineOptions eo = engine_options_from_flags(a->engine, bench_engine_flags());
    if (a->compare_full && a->sparse.flows.empty()) fail_usage("--compare-full needs --flow");
    LoadedModel model = a->load_model();
    if (a->input_len + a->output_len > model.config.max_position_embeddings) {
      fail_usage("--input-len + --output-len (", a->input_len + a->output_len,
                 ") exceeds the model's context of ", model.config.max_position_embeddings,
                 " tokens");
    }
    // Compile every flow before running anything, so a bad flow fails fast.
    std::vector<std::pair<std::string, std::shared_ptr<const SparseAttentionConfig>>> configs;
    if (a->sparse.flows.empty() || a->compare_full) configs.push_back({"full", nullptr});
    for (const std::string& f : a->sparse.flows) {
      configs.push_back({f, load_sparse_flags(f, a->sparse, model.config, eo.page_size)});
    }
    std::vector<Json> runs;
    for (const auto& [label, sparse] : configs)
      runs.push_back(run_bench(model, *a, eo, label, sparse));

    if (runs.size() == 1) {
      if (a->json) {
        std::printf("%s\n", runs[0].dump().c_str());
      } else {
        print_single(runs[0], *a);
      }
      return 0;
    }
    const double full_tps = a->compare_full ? runs[0]["decode_tokens_per_s"].get<double>() : 0.0;
    for (Json& r : runs) {
      if (full_tps > 0)
        r["decode_speedup_vs_full"] = r["decode_tokens_per_s"].get<double>() / full_tps;
    }
    if (a->json) {
      std::printf("%s\n", Json{{"runs", runs}}.dump().c_str());
      return 0;
    }
    print_comparison(runs, *a);
    return 0;
  };
}

}  // namespace vortex::cli
