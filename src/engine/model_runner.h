// The device boundary of the engine: a ModelRunner owns the KV storage of one device and turns
// one scheduled step into sampled tokens. The Engine (scheduling, stop handling, streaming) is
// the same for every device; the CPU runner is the reference the CUDA runner is tested against.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/device.h"
#include "engine/loaded_model.h"
#include "engine/runner_options.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "engine/sparse_decode.h"
#include "kv/kv_cache.h"

namespace vortex {

// How to sample for one work item that samples(): its request's parameters and RNG, and how
// many of the most likely tokens to report with the sampled one (SampledToken::top).
struct SamplingRow {
  const SamplingParams* params;
  Rng* rng;
  int32_t top_logprobs = 0;
  // >= 0: teacher forcing: this token instead of a draw, with its logprob (token_logprob).
  int32_t forced_token = -1;
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  // Computes the step's tokens (writing their K/V into pages already reserved in each request's
  // block table) and samples one token for each work item whose samples() is true, in order.
  // `rows` has one entry per such item.
  virtual std::vector<SampledToken> step(const std::vector<ScheduledWork>& work,
                                         const std::vector<SamplingRow>& rows) = 0;
  virtual Device device() const = 0;
  // Whether step() honours SamplingRow::forced_token (teacher forcing).
  virtual bool supports_forced_tokens() const { return false; }
  // Measured memory bandwidth of the device in bytes/s, for the benchmark's bandwidth floor
  // (CPU: reading a large buffer; CUDA: read + write of a device-to-device copy). May take a
  // fraction of a second.
  virtual double measure_bandwidth() = 0;
  // Bytes of weights the device reads per forward pass (all layers, embeddings row excluded).
  virtual size_t weight_bytes() const = 0;

  // Prepares, before the first step, what the first steps would otherwise stop to set up (the
  // GPU runner captures its decode CUDA graphs). The Engine calls it once, after
  // set_flows, with its batch and step-size limits.
  virtual void warm_up(int32_t max_batch, int32_t max_step_tokens) {}
  // Makes decode attention sparse as the flows say (call before the first step): a request's
  // decode rows follow flows[Request::flow], or read every page (kDenseFlow). Throws
  // vortex::Error when the device cannot run these flows (none at all, or more than one, or
  // per-request budgets: see supports_request_budgets).
  virtual void set_flows(std::vector<std::shared_ptr<const SparseAttentionConfig>> flows);
  // Whether requests may carry their own budget (Request::budget) here.
  virtual bool supports_request_budgets() const { return false; }
  // Flows added and removed while serving (between steps): add_flow makes `flow` the flow of
  // Request::flow == index (index = one past the highest so far; its Fields are computed for
  // every page already in the cache, so pages shared through the prefix cache serve it too);
  // remove_flow drops flows[index] once no request uses it. Runners that cannot throw
  // vortex::Error from add_flow.
  virtual bool supports_flow_changes() const { return false; }
  virtual void add_flow(std::shared_ptr<const SparseAttentionConfig> flow, size_t index);
  virtual void remove_flow(size_t index) {}
  // Counters of the sparse run so far, of flows[flow] (0: the first); null when attention is
  // dense or there is no such flow.
  virtual const SparseStats* sparse_stats(size_t flow = 0) const { return nullptr; }
  // Per-part device time of profiled sparse decode steps; null where the runner does not profile.
  virtual const SparseStepProfile* sparse_profile() const { return nullptr; }
  // The request finished: drop what the runner keeps for it (flow State).
  virtual void release_request(int64_t request_id) {}
};

// Bytes of K+V per page (all layers) the runner of `device` stores.
size_t kv_bytes_per_page(Device device, const KvGeometry& geometry);

// Throws vortex::Error if the device is unavailable (no GPU, driver, or CUDA in this build).
std::unique_ptr<ModelRunner> make_model_runner(Device device, const LoadedModel& model,
                                               const KvGeometry& geometry, int32_t num_pages,
                                               const RunnerOptions& options = {});

}  // namespace vortex
