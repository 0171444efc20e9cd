#include "agent/decode_traces.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/cpu/cpu_model_runner.h"
#include "engine/engine.h"
#include "eval/eval_runner.h"
#include "flow/cpu_executor.h"

namespace vortex::agent {

namespace {

constexpr const char* kMagic = "vortex-decode-traces 1";
// A trace file is a cache: refuse sizes no recall stage records (a corrupt header must not
// make us allocate without bound).
constexpr int64_t kMaxFloats = int64_t{1} << 31;

}  // namespace

DecodeTraces record_decode_traces(const LoadedModel& model, const std::vector<TracePrompt>& prompts,
                                  int32_t page_size) {
  const ModelConfig& c = model.config;
  DecodeTraces out;
  out.num_layers = c.num_layers;
  out.num_q_heads = c.num_heads;
  out.num_kv_heads = c.num_kv_heads;
  out.head_dim = c.head_dim;
  const int32_t L = c.num_layers, Hq = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
  for (const TracePrompt& p : prompts) {
    EngineOptions eo;
    eo.device = Device::kCpu;
    eo.page_size = page_size;
    eo.max_step_tokens = 2048;
    eo.kv_memory_bytes = size_t{1} << 30;
    Engine engine(model, eo);
    auto* runner = dynamic_cast<CpuModelRunner*>(&engine.runner());
    VORTEX_ASSERT(runner != nullptr);
    DecodeTrace t;
    t.prompt_len = static_cast<int32_t>(p.ids.size());
    const int32_t capacity = t.prompt_len + std::max(p.max_tokens - 1, 0);
    t.k.assign(static_cast<size_t>(L), std::vector<float>(size_t{1} * Hkv * capacity * D));
    t.v = t.k;
    int32_t step = -1;
    runner->set_attention_observer([&](int32_t layer, const float* q, const cpu::PagedKv& kv,
                                       const std::vector<cpu::AttentionSeq>& seqs) {
      if (seqs.size() != 1 || seqs[0].q_len != 1) return;  // prefill
      const cpu::AttentionSeq& s = seqs[0];
      if (layer == 0) ++step;
      if (s.kv_len > capacity) return;  // cannot happen with ignore_eos; never write past
      if (layer == 0) t.steps = step + 1;
      const size_t at = (static_cast<size_t>(step) * L + layer) * Hq * D;
      if (t.q.size() < at + size_t{1} * Hq * D) t.q.resize(at + size_t{1} * Hq * D);
      std::memcpy(t.q.data() + at, q + int64_t{s.q_begin} * Hq * D, sizeof(float) * Hq * D);
      // Step 0 copies the whole prefix, later steps their own token.
      const int32_t from = step == 0 ? 0 : s.kv_len - 1;
      for (int32_t tok = from; tok < s.kv_len; ++tok) {
        const int64_t page = s.pages[tok / kv.page_size];
        for (int32_t h = 0; h < Hkv; ++h) {
          const int64_t src =
              page * kv.page_stride + h * kv.head_stride + int64_t{tok % kv.page_size} * D;
          const size_t dst = (static_cast<size_t>(h) * capacity + tok) * D;
          std::memcpy(t.k[layer].data() + dst, kv.k + src, sizeof(float) * D);
          std::memcpy(t.v[layer].data() + dst, kv.v + src, sizeof(float) * D);
        }
      }
    });
    eval::EvalRequest r;
    r.prompt = p.ids;
    r.params.max_tokens = p.max_tokens;
    r.params.ignore_eos = true;
    eval::run_eval_requests(engine, {r});
    // Keep only the tokens the steps wrote (a context limit may have ended the request early).
    const int32_t tokens = t.tokens();
    for (int32_t l = 0; l < L; ++l) {
      for (std::vector<float>* a : {&t.k[static_cast<size_t>(l)], &t.v[static_cast<size_t>(l)]}) {
        std::vector<float> kept(size_t{1} * Hkv * tokens * D);
        for (int32_t h = 0; h < Hkv; ++h)
          std::memcpy(kept.data() + size_t{1} * h * tokens * D,
                      a->data() + size_t{1} * h * capacity * D, sizeof(float) * tokens * D);
        *a = std::move(kept);
      }
    }
    t.q.resize(size_t{1} * t.steps * L * Hq * D);
    out.traces.push_back(std::move(t));
  }
  return out;
}

void write_decode_traces(const DecodeTraces& d, const std::string& path) {
  Json header = {{"num_layers", d.num_layers},
                 {"num_q_heads", d.num_q_heads},
                 {"num_kv_heads", d.num_kv_heads},
                 {"head_dim", d.head_dim}};
  Json traces = Json::array();
  for (const DecodeTrace& t : d.traces)
    traces.push_back({{"prompt_len", t.prompt_len}, {"steps", t.steps}});
  header["traces"] = traces;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(tmp, ": cannot write the decode traces");
    out << kMagic << '\n' << header.dump() << '\n';
    auto put = [&](const std::vector<float>& a) {
      out.write(reinterpret_cast<const char*>(a.data()),
                static_cast<std::streamsize>(a.size() * sizeof(float)));
    };
    for (const DecodeTrace& t : d.traces) {
      for (const auto& a : t.k) put(a);
      for (const auto& a : t.v) put(a);
      put(t.q);
    }
    out.close();
    if (!out) fail(tmp, ": cannot write the decode traces");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail(path, ": cannot write the decode traces: ", ec.message());
}

DecodeTraces read_decode_traces(const std::string& path, const ModelConfig& m) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot read the decode traces");
  std::string magic, line;
  std::getline(in, magic);
  if (magic != kMagic) fail(path, ": not a decode trace file (no '", kMagic, "' line)");
  std::getline(in, line);
  const Json h = parse_json(line, path + " (header)");
  DecodeTraces d;
  try {
    d.num_layers = h.at("num_layers").get<int32_t>();
    d.num_q_heads = h.at("num_q_heads").get<int32_t>();
    d.num_kv_heads = h.at("num_kv_heads").get<int32_t>();
    d.head_dim = h.at("head_dim").get<int32_t>();
    for (const Json& t : h.at("traces")) {
      DecodeTrace x;
      x.prompt_len = t.at("prompt_len").get<int32_t>();
      x.steps = t.at("steps").get<int32_t>();
      d.traces.push_back(std::move(x));
    }
  } catch (const Json::exception& e) {
    fail(path, ": bad header: ", e.what());
  }
  if (d.num_layers != m.num_layers || d.num_q_heads != m.num_heads ||
      d.num_kv_heads != m.num_kv_heads || d.head_dim != m.head_dim)
    fail(path, ": recorded for another model geometry");
  const int64_t L = d.num_layers, Hq = d.num_q_heads, Hkv = d.num_kv_heads, D = d.head_dim;
  int64_t total = 0;
  for (DecodeTrace& t : d.traces) {
    if (t.prompt_len < 1 || t.steps < 0 || int64_t{t.prompt_len} + t.steps > (1 << 24))
      fail(path, ": bad trace sizes");
    total += 2 * L * Hkv * t.tokens() * D + int64_t{t.steps} * L * Hq * D;
    if (total > kMaxFloats) fail(path, ": larger than any recorded trace");
  }
  auto get = [&](std::vector<float>& a, int64_t n) {
    a.resize(static_cast<size_t>(n));
    in.read(reinterpret_cast<char*>(a.data()), static_cast<std::streamsize>(n * sizeof(float)));
    if (in.gcount() != static_cast<std::streamsize>(n * sizeof(float)))
      fail(path, ": truncated decode traces");
  };
  for (DecodeTrace& t : d.traces) {
    t.k.resize(static_cast<size_t>(L));
    t.v.resize(static_cast<size_t>(L));
    for (auto& a : t.k) get(a, Hkv * t.tokens() * D);
    for (auto& a : t.v) get(a, Hkv * t.tokens() * D);
    get(t.q, int64_t{t.steps} * L * Hq * D);
  }
  if (in.peek() != std::char_traits<char>::eof()) fail(path, ": trailing bytes after the traces");
  return d;
}

std::vector<std::vector<float>> replay_recall(const DecodeTraces& d,
                                              const SparseAttentionConfig& flow,
                                              int32_t page_size) {
  const int32_t L = d.num_layers, Hq = d.num_q_heads, Hkv = d.num_kv_heads, D = d.head_dim;
  const int32_t G = Hq / Hkv, P = page_size;
  const flow::CpuFlowExecutor executor(flow.program, flow::FlowGeometry{G, D, P});
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));  // as attention's
  std::vector<std::vector<float>> recall(static_cast<size_t>(L));
  for (const DecodeTrace& t : d.traces) {
    const int32_t tokens = t.tokens();
    const int32_t max_pages = (tokens + P - 1) / P;
    flow::FieldStore fields(L, max_pages, Hkv, executor.field_floats_per_page_head());
    std::vector<flow::RowState> states(static_cast<size_t>(L) * Hkv);
    std::vector<int32_t> summarized(static_cast<size_t>(L), 0);
    std::vector<std::vector<int32_t>> selected(static_cast<size_t>(Hkv));
    std::vector<const float*> page_fields(static_cast<size_t>(max_pages) * Hkv);
    std::vector<double> logits(static_cast<size_t>(tokens));
    for (int32_t s = 0; s < t.steps; ++s) {
      const int32_t kv_len = t.prompt_len + 1 + s;
      const int32_t n = (kv_len + P - 1) / P, full = kv_len / P;
      for (int32_t l = 0; l < L; ++l) {
        if (flow::is_dense_layer(flow.policy, l)) continue;
        const float* k = t.k[static_cast<size_t>(l)].data();
        const float* v = t.v[static_cast<size_t>(l)].data();
        // The pages that filled since the last step, every KV head.
        int32_t& done = summarized[static_cast<size_t>(l)];
        if (full > done && executor.field_floats_per_page_head() > 0) {
          std::vector<const float*> kb, vb;
          std::vector<float*> out;
          for (int32_t p = done; p < full; ++p)
            for (int32_t h = 0; h < Hkv; ++h) {
              const size_t at = (static_cast<size_t>(h) * tokens + size_t{1} * p * P) * D;
              kb.push_back(k + at);
              vb.push_back(v + at);
              out.push_back(fields.block(l, p, h));
            }
          executor.summarize_pages(kb.data(), vb.data(), static_cast<int64_t>(kb.size()),
                                   out.data());
        }
        done = std::max(done, full);
        std::vector<flow::SelectRow> rows;
        for (int32_t h = 0; h < Hkv; ++h) {
          const float** pf = page_fields.data() + static_cast<size_t>(h) * max_pages;
          for (int32_t p = 0; p < n; ++p) pf[p] = p < full ? fields.block(l, p, h) : nullptr;
          flow::SelectRow r;
          r.q = t.q.data() + ((static_cast<size_t>(s) * L + l) * Hq + size_t{1} * h * G) * D;
          r.num_pages = n;
          r.page_fields = pf;
          r.state = &states[static_cast<size_t>(l) * Hkv + h];
          r.selected = &selected[static_cast<size_t>(h)];
          rows.push_back(r);
        }
        executor.select_rows(flow.policy, rows);
        // Full attention's softmax mass on the selected pages, averaged over the group's heads.
        std::vector<char> chosen(static_cast<size_t>(n));
        for (int32_t h = 0; h < Hkv; ++h) {
          std::fill(chosen.begin(), chosen.end(), 0);
          for (int32_t p : selected[static_cast<size_t>(h)]) chosen[static_cast<size_t>(p)] = 1;
          double sum_recall = 0;
          for (int32_t g = 0; g < G; ++g) {
            const float* qv = rows[static_cast<size_t>(h)].q + size_t{1} * g * D;
            double mx = -INFINITY;
            for (int32_t tok = 0; tok < kv_len; ++tok) {
              const float* kt = k + (static_cast<size_t>(h) * tokens + tok) * D;
              double dot = 0;
              for (int32_t e = 0; e < D; ++e) dot += double{qv[e]} * kt[e];
              logits[static_cast<size_t>(tok)] = dot * scale;
              mx = std::max(mx, logits[static_cast<size_t>(tok)]);
            }
            double all = 0, kept = 0;
            for (int32_t tok = 0; tok < kv_len; ++tok) {
              const double p = std::exp(logits[static_cast<size_t>(tok)] - mx);
              all += p;
              if (chosen[static_cast<size_t>(tok / P)]) kept += p;
            }
            sum_recall += kept / all;
          }
          recall[static_cast<size_t>(l)].push_back(static_cast<float>(sum_recall / G));
        }
      }
    }
  }
  return recall;
}

}  // namespace vortex::agent
