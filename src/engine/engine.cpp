#include "engine/engine.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <mutex>
#include <random>

#include "core/error.h"

namespace vortex {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
  }
  return "unknown";
}

struct Engine::Active {
  Request request;
  GenerationParams params;
  Rng rng{0};
  TokenCallback on_token;
  std::vector<double> logprobs;
  std::vector<std::vector<TokenLogprob>> top_logprobs;
  std::optional<StreamDecoder> decoder;
  std::string text;
  size_t streamed = 0;  // bytes of `text` already given to on_token
  size_t max_stop_len = 0;
};

namespace {

// Every flow the options load, in Request::flow order: the default one first, then more_flows.
std::vector<std::shared_ptr<const SparseAttentionConfig>> loaded_flows(const EngineOptions& o) {
  std::vector<std::shared_ptr<const SparseAttentionConfig>> flows;
  if (o.sparse) flows.push_back(o.sparse);
  for (const auto& f : o.more_flows) {
    if (!f) fail_usage("internal error: a null flow in EngineOptions::more_flows");
    flows.push_back(f);
  }
  return flows;
}

int32_t pages_for(const LoadedModel& m, const EngineOptions& o) {
  if (o.page_size <= 0 || (o.page_size & (o.page_size - 1)) != 0) {
    fail_usage("page size must be a power of two, got ", o.page_size);
  }
  if (o.num_pages > 0) return o.num_pages;
  KvGeometry g{m.config.num_layers, m.config.num_kv_heads, m.config.head_dim, o.page_size};
  // A flow's Fields and States live beside every page: the budget pays for them too.
  const size_t kv_bytes = kv_bytes_per_page(o.device, g);
  size_t flow_bytes = 0;
  for (const auto& f : loaded_flows(o)) flow_bytes += flow_bytes_per_page(*f, g);
  size_t by_memory = o.kv_memory_bytes / (kv_bytes + flow_bytes);
  // No need for more pages than max_batch full-context sequences.
  size_t useful = static_cast<size_t>(o.max_batch) *
                  ((m.config.max_position_embeddings + o.page_size - 1) / o.page_size);
  size_t n = std::min(by_memory, useful);
  if (n < 2) {
    fail("KV cache budget of ", o.kv_memory_bytes, " bytes holds fewer than 2 pages (", kv_bytes,
         " bytes of K and V per page",
         flow_bytes ? str_cat(" and ", flow_bytes, " of the flow",
                              o.more_flows.empty() ? "'s" : "s'", " Fields and States")
                    : "",
         ")");
  }
  return static_cast<int32_t>(std::min<size_t>(n, INT32_MAX / 2));
}

// Whether prompt pages may be shared. The CUDA runner keeps a flow's State per physical page
// (reset when the page gets its first token), so a shared page would share its State between
// requests: flows with a State run without the prefix cache there. The CPU runner keeps State
// per request, so sharing stays exact.
bool shares_prefixes(const EngineOptions& o) {
  if (!o.prefix_cache) return false;
  if (o.device != Device::kCuda) return true;
  for (const auto& flow : loaded_flows(o)) {
    for (const flow::FieldDecl& f : flow->program.fields) {
      if (f.kind == flow::FieldKind::kState) return false;
    }
  }
  return true;
}

KvGeometry geometry_of(const LoadedModel& m, int32_t page_size) {
  return {m.config.num_layers, m.config.num_kv_heads, m.config.head_dim, page_size};
}

bool has_budget_overrides(const flow::BudgetOverrides& o) {
  return o.pages || o.ratio || o.floor || o.cap || o.sink || o.recent || o.dense_layers;
}

}  // namespace

Engine::Engine(const LoadedModel& model, const EngineOptions& options)
    : model_(model),
      options_(options),
      num_pages_(pages_for(model, options)),
      runner_(make_model_runner(options.device, model, geometry_of(model, options.page_size),
                                num_pages_, options.runner)),
      pool_(num_pages_),
      prefix_cache_(shares_prefixes(options) ? std::make_unique<PrefixCache>(options.page_size)
                                             : nullptr),
      scheduler_(SchedulerLimits{options.page_size, options.max_batch, options.max_step_tokens,
                                 num_pages_, options.prefill_first}) {
  scheduler_.set_prefix_cache(prefix_cache_.get());
  flows_ = loaded_flows(options);
  for (const auto& f : flows_) {
    std::string name = std::filesystem::path(f->flow_path).stem().string();
    if (name == "dense" || name.empty()) {
      fail_usage("--flow ", f->flow_path, ": a flow's file name (without .py) names it, and '",
                 name, "' cannot be a flow's name: rename the file");
    }
    if (std::find(flow_names_.begin(), flow_names_.end(), name) != flow_names_.end()) {
      fail_usage("--flow ", f->flow_path, ": another flow is already named '", name,
                 "' (a flow's name is its file name without .py): rename one of the files");
    }
    flow_names_.push_back(std::move(name));
  }
  if (options.sparse) flow_name_ = flow_names_.front();
  runner_->set_flows(flows_);
  runner_->warm_up(options.max_batch, options.max_step_tokens);
}

Engine::~Engine() = default;

void Engine::validate_request(const std::vector<int32_t>& prompt,
                              const GenerationParams& params) const {
  const ModelConfig& c = model_.config;
  if (prompt.empty()) fail("the prompt is empty: give at least one token");
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= c.vocab_size) {
      fail("prompt token ", i, " has id ", prompt[i], ", outside the model's vocabulary [0, ",
           c.vocab_size, ")");
    }
  }
  if (static_cast<int64_t>(prompt.size()) >= c.max_position_embeddings) {
    fail("the prompt has ", prompt.size(), " tokens but the model's context is ",
         c.max_position_embeddings, " tokens (max_position_embeddings): no room to generate");
  }
  // The prompt's KV and the first generated token's must fit the whole cache (Scheduler::add).
  const int64_t P = options_.page_size;
  if ((static_cast<int64_t>(prompt.size()) + 1 + P - 1) / P > num_pages_) {
    fail("the prompt has ", prompt.size(), " tokens but the KV cache holds at most ",
         int64_t{num_pages_} * P - 1, " prompt tokens (", num_pages_, " pages of ", P,
         " tokens, less one for the first generated token)");
  }
  if (params.max_tokens < 1) fail_usage("max_tokens must be at least 1, got ", params.max_tokens);
  params.sampling.validate();
  if (!params.stop.empty() && !model_.tokenizer) {
    fail_usage("stop strings need a tokenizer, and model '", model_.source, "' has none");
  }
  if (params.top_logprobs < 0 || params.top_logprobs > kMaxTopLogprobs) {
    fail_usage("top_logprobs must be in [0, ", kMaxTopLogprobs, "], got ", params.top_logprobs);
  }
  const int32_t flow = flow_index(params.flow);  // throws for an unknown name
  if (has_budget_overrides(params.budget)) request_budget(flow, params.budget);
  if (!params.forced_tokens.empty()) {
    if (!runner_->supports_forced_tokens())
      fail_usage("this backend does not support forced tokens (teacher forcing)");
    for (size_t i = 0; i < params.forced_tokens.size(); ++i) {
      const int32_t t = params.forced_tokens[i];
      if (t < 0 || t >= c.vocab_size)
        fail_usage("forced token ", i, " has id ", t, ", outside the model's vocabulary [0, ",
                   c.vocab_size, ")");
    }
    if (static_cast<int64_t>(prompt.size()) + static_cast<int64_t>(params.forced_tokens.size()) >
        c.max_position_embeddings)
      fail_usage("the prompt's ", prompt.size(), " tokens and ", params.forced_tokens.size(),
                 " forced tokens exceed the model's context of ", c.max_position_embeddings,
                 " tokens");
  }
}

int32_t Engine::flow_index(const std::string& name) const {
  // "dense" is always allowed: full attention for this request, beside the flows' requests.
  if (name == "dense") return Request::kDenseFlow;
  if (name.empty()) return flow_name_.empty() ? Request::kDenseFlow : 0;
  std::shared_lock<std::shared_mutex> lock(flows_mu_);
  for (size_t i = 0; i < flow_names_.size(); ++i) {
    if (!flow_names_[i].empty() && flow_names_[i] == name) return static_cast<int32_t>(i);
  }
  std::string known = "\"dense\"";
  for (const std::string& n : flow_names_)
    if (!n.empty()) known += str_cat(", \"", n, "\"");
  fail_usage("flow: no flow named '", name, "' is loaded",
             flow_names_.empty() ? ": this engine runs dense attention" : "", " (give \"\" or ",
             known, ")");
}

std::shared_ptr<const flow::BudgetPolicy> Engine::request_budget(
    int32_t flow, const flow::BudgetOverrides& overrides) const {
  if (!has_budget_overrides(overrides)) return nullptr;
  if (flow == Request::kDenseFlow) {
    fail_usage(
        "budget: budget overrides need a sparse flow, and this request runs dense "
        "attention");
  }
  if (overrides.dense_layers) {
    fail_usage(
        "budget: dense_layers cannot change per request (which layers are sparse is the "
        "flow's, set when it is loaded)");
  }
  if (!runner_->supports_request_budgets()) {
    fail_usage("budget: per-request budget overrides do not run on ",
               device_name(runner_->device()), " yet: every request there uses the budget its ",
               "flow was loaded with (leave the budget fields unset, or serve on the CPU)");
  }
  std::shared_ptr<const SparseAttentionConfig> f;
  std::string name;
  {
    std::shared_lock<std::shared_mutex> lock(flows_mu_);
    f = flows_[static_cast<size_t>(flow)];
    name = flow_names_[static_cast<size_t>(flow)];
  }
  if (!f) fail_usage("flow '", name, "' was removed");
  try {
    return std::make_shared<const flow::BudgetPolicy>(
        flow::apply_budget_overrides(f->policy, overrides));
  } catch (const Error& e) {
    fail_usage("budget of flow '", name, "': ", e.what());
  }
}

std::vector<std::string> Engine::flow_names() const {
  std::shared_lock<std::shared_mutex> lock(flows_mu_);
  std::vector<std::string> names;
  for (const std::string& n : flow_names_)
    if (!n.empty()) names.push_back(n);
  return names;
}

void Engine::add_flow(std::shared_ptr<const SparseAttentionConfig> flow, const std::string& name) {
  if (!flow) fail_usage("add_flow: no flow given");
  const bool name_ok =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
  if (!name_ok) {
    fail_usage("flow name '", printable(name),
               "' must be 1 to 64 characters of letters, digits, '_', '-' and '.'");
  }
  if (name == "dense") fail_usage("'dense' names full attention and cannot name a flow");
  {
    std::shared_lock<std::shared_mutex> lock(flows_mu_);
    if (std::find(flow_names_.begin(), flow_names_.end(), name) != flow_names_.end())
      fail_usage("a flow named '", name, "' is already loaded: remove it first or pick a name");
  }
  runner_->add_flow(flow, flows_.size());  // throws where the runner cannot
  std::unique_lock<std::shared_mutex> lock(flows_mu_);
  flows_.push_back(std::move(flow));
  flow_names_.push_back(name);
}

SparseStats Engine::flow_stats(const std::string& name) {
  if (name.empty() || name == "dense") fail_usage("flow statistics need a flow's name");
  const int32_t index = flow_index(name);  // throws naming the loaded flows
  const SparseStats* s = runner_->sparse_stats(static_cast<size_t>(index));
  return s ? *s : SparseStats{};
}

void Engine::remove_flow(const std::string& name) {
  size_t index = 0;
  {
    std::unique_lock<std::shared_mutex> lock(flows_mu_);
    const auto it = std::find(flow_names_.begin(), flow_names_.end(), name);
    if (name.empty() || it == flow_names_.end())
      fail("no flow named '", printable(name), "' is loaded");
    index = static_cast<size_t>(it - flow_names_.begin());
    if (options_.sparse && index == 0) {
      fail_usage("flow '", name,
                 "' is the server's default (its first --flow) and cannot be removed");
    }
    flow_names_[index].clear();  // new requests can no longer name it
  }
  removed_.push_back(index);
  release_removed_flows();
}

void Engine::release_removed_flows() {
  for (size_t i = 0; i < removed_.size();) {
    const size_t index = removed_[i];
    bool used = false;
    for (const auto& [id, a] : active_)
      used = used || a->request.flow == static_cast<int32_t>(index);
    if (used) {
      ++i;
      continue;
    }
    runner_->remove_flow(index);
    {
      std::unique_lock<std::shared_mutex> lock(flows_mu_);
      flows_[index].reset();
    }
    removed_.erase(removed_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

int64_t Engine::add_request(std::vector<int32_t> prompt, const GenerationParams& params,
                            TokenCallback on_token) {
  validate_request(prompt, params);
  const ModelConfig& c = model_.config;
  auto a = std::make_unique<Active>();
  a->request.id = next_id_++;
  a->request.prompt = std::move(prompt);
  a->request.flow = flow_index(params.flow);
  a->request.budget = request_budget(a->request.flow, params.budget);
  a->params = params;
  if (!params.forced_tokens.empty()) {
    // Exactly the forced tokens: neither EOS nor a stop string ends the request early.
    a->params.max_tokens = static_cast<int32_t>(params.forced_tokens.size());
    a->params.ignore_eos = true;
    a->params.stop.clear();
  }
  a->on_token = std::move(on_token);
  // Never generate past the context: the last token must still have a position.
  const int32_t room = c.max_position_embeddings - static_cast<int32_t>(a->request.prompt.size());
  a->params.max_tokens = std::min(a->params.max_tokens, room);
  uint64_t seed = params.sampling.seed;
  if (seed == 0 && params.sampling.temperature > 0) seed = std::random_device{}();
  a->rng = Rng(seed);
  if (model_.tokenizer) a->decoder.emplace(*model_.tokenizer, /*skip_special=*/true);
  for (const std::string& s : params.stop) a->max_stop_len = std::max(a->max_stop_len, s.size());
  scheduler_.add(&a->request);  // throws if it can never fit the cache
  by_request_[&a->request] = a.get();
  int64_t id = a->request.id;
  active_[id] = std::move(a);
  return id;
}

std::optional<GenerationResult> Engine::abort(int64_t id) {
  auto it = active_.find(id);
  if (it == active_.end()) return std::nullopt;
  GenerationResult r = finish(*it->second, FinishReason::kAbort);
  by_request_.erase(&it->second->request);
  active_.erase(it);
  return r;
}

bool Engine::has_unfinished() const {
  return !active_.empty();
}

namespace {

// Bytes of `text` that can be streamed now: all but the last `hold` bytes (a stop string may
// still complete there), moved back to a UTF-8 character boundary.
size_t streamable(const std::string& text, size_t hold) {
  size_t n = text.size() > hold ? text.size() - hold : 0;
  while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80) --n;
  return n;
}

}  // namespace

bool Engine::accept_token(Active& a, SampledToken&& sampled) {
  const int32_t token = sampled.token;
  a.request.output.push_back(token);
  a.logprobs.push_back(sampled.logprob);
  if (a.params.top_logprobs > 0) a.top_logprobs.push_back(sampled.top);
  const std::vector<int32_t>& eos_ids = model_.config.eos_token_ids;
  bool stopped =
      !a.params.ignore_eos && std::find(eos_ids.begin(), eos_ids.end(), token) != eos_ids.end();
  if (a.decoder) {
    size_t old_len = a.text.size();
    a.text += a.decoder->push(token);
    if (a.max_stop_len > 0 && a.text.size() > old_len) {
      // Search only where a stop string could newly end.
      size_t from = old_len >= a.max_stop_len ? old_len - a.max_stop_len + 1 : 0;
      size_t cut = std::string::npos;
      for (const std::string& s : a.params.stop) {
        size_t at = a.text.find(s, from);
        if (at != std::string::npos) cut = std::min(cut, at);
      }
      if (cut != std::string::npos) {
        a.text.resize(cut);
        stopped = true;
      }
    }
  }
  if (a.on_token) {
    size_t upto =
        stopped ? a.text.size() : streamable(a.text, a.max_stop_len ? a.max_stop_len - 1 : 0);
    upto = std::max(upto, a.streamed);
    TokenEvent e;
    e.id = a.request.id;
    e.token = token;
    e.logprob = sampled.logprob;
    e.top_logprobs = std::move(sampled.top);
    e.text = a.text.substr(a.streamed, upto - a.streamed);
    a.streamed = upto;
    a.on_token(std::move(e));
  }
  return stopped;
}

GenerationResult Engine::finish(Active& a, FinishReason reason) {
  GenerationResult r;
  r.id = a.request.id;
  r.prompt_tokens = static_cast<int32_t>(a.request.prompt.size());
  r.token_ids = a.request.output;
  r.logprobs = std::move(a.logprobs);
  r.top_logprobs = std::move(a.top_logprobs);
  // Cut short (not by a stop string): what the decoder and the stop hold-back kept is final.
  if (a.decoder && reason != FinishReason::kStop) a.text += a.decoder->flush();
  if (a.on_token && a.streamed < a.text.size()) {
    TokenEvent e;
    e.id = r.id;
    e.text = a.text.substr(a.streamed);
    a.streamed = a.text.size();
    a.on_token(std::move(e));
  }
  r.text = std::move(a.text);
  r.finish_reason = reason;
  r.num_preemptions = a.request.num_preemptions;
  scheduler_.finish(&a.request, pool_);
  runner_->release_request(r.id);
  return r;
}

std::vector<GenerationResult> Engine::step() {
  if (!removed_.empty()) release_removed_flows();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<GenerationResult> done;
  std::vector<ScheduledWork> work = scheduler_.schedule(pool_);
  stats_.preemptions += static_cast<int64_t>(scheduler_.preempted_last_step().size());
  // Requests whose next token would need more pages than the whole cache end here.
  for (Request* r : scheduler_.out_of_room_last_step()) {
    Active& a = *by_request_.at(r);
    done.push_back(finish(a, FinishReason::kLength));
    by_request_.erase(r);
    active_.erase(done.back().id);
  }
  if (work.empty()) {
    if (!done.empty()) return done;
    if (has_unfinished()) {
      fail("internal error: the scheduler made no progress with ", active_.size(),
           " unfinished requests");
    }
    return done;
  }
  ++stats_.steps;
  last_step_ = StepInfo{};
  for (const ScheduledWork& w : work) {
    bool decode = w.count == 1 && w.first == w.request->seq_len() - 1 && !w.request->output.empty();
    if (decode) {
      ++last_step_.decode_tokens;
      last_step_.decode_kv_tokens += w.first + 1;
    } else {
      last_step_.prefill_tokens += w.count;
    }
  }
  stats_.decode_tokens += last_step_.decode_tokens;
  stats_.prefill_tokens += last_step_.prefill_tokens;
  std::vector<SamplingRow> rows;
  std::vector<Active*> sampling;
  for (const ScheduledWork& w : work) {
    if (!w.samples()) continue;
    Active* a = by_request_.at(w.request);
    sampling.push_back(a);
    const std::vector<int32_t>& forced = a->params.forced_tokens;
    const size_t next = a->request.output.size();
    rows.push_back({&a->params.sampling, &a->rng, a->params.top_logprobs,
                    next < forced.size() ? forced[next] : -1});
  }
  const SparseStats* sparse = runner_->sparse_stats();
  const double recall_before = sparse ? sparse->recall_seconds : 0.0;
  auto f0 = std::chrono::steady_clock::now();
  std::vector<SampledToken> tokens = runner_->step(work, rows);
  // The step's K/V are written: full prompt pages it completed can be shared from now on.
  scheduler_.cache_computed_pages(work, pool_);
  // Measuring recall is a diagnostic pass: keep it out of the serving time.
  last_step_.diagnostic_seconds = sparse ? sparse->recall_seconds - recall_before : 0.0;
  stats_.diagnostic_seconds += last_step_.diagnostic_seconds;
  stats_.forward_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - f0).count() -
      last_step_.diagnostic_seconds;

  for (size_t i = 0; i < sampling.size(); ++i) {
    Active& a = *sampling[i];
    bool stopped = accept_token(a, std::move(tokens[i]));
    std::optional<FinishReason> reason;
    if (stopped) {
      reason = FinishReason::kStop;
    } else if (static_cast<int32_t>(a.request.output.size()) >= a.params.max_tokens) {
      reason = FinishReason::kLength;
    }
    if (reason) {
      done.push_back(finish(a, *reason));
      by_request_.erase(&a.request);
      active_.erase(done.back().id);
    }
  }
  last_step_.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() -
      last_step_.diagnostic_seconds;
  stats_.wall_seconds += last_step_.seconds;
  return done;
}

std::vector<GenerationResult> Engine::run_to_completion() {
  std::vector<GenerationResult> all;
  while (has_unfinished()) {
    for (GenerationResult& r : step()) all.push_back(std::move(r));
  }
  std::sort(all.begin(), all.end(),
            [](const GenerationResult& a, const GenerationResult& b) { return a.id < b.id; });
  return all;
}

}  // namespace vortex
