// `vortex submit --server URL`: the client side of a running `vortex serve` that the verdict's
// stages run on, with its engine warm. It reads the served checkpoint (GET /get_model_info),
// adds the submitted flow under a name of its own (POST /v1/flows, recording recall), runs
// prompts greedily through POST /generate (with the flow, or "dense" for full attention), reads
// the flow's statistics (GET /v1/flows/NAME) and removes the flow again (DELETE).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "flow/budget_planner.h"

namespace vortex::agent {

// One prompt for the server: token ids, a generation budget, whether EOS may stop it.
struct ServerPrompt {
  std::vector<int32_t> ids;
  int32_t max_tokens = 1;
  bool ignore_eos = false;
};

class FlowServer {
 public:
  // Connects and reads what the server serves. Throws vortex::Error "cannot reach URL: ..." when
  // nothing answers, and naming the field when /get_model_info is not a vortex or SGLang answer.
  explicit FlowServer(const std::string& url);
  ~FlowServer();
  FlowServer(const FlowServer&) = delete;
  FlowServer& operator=(const FlowServer&) = delete;

  const std::string& url() const { return url_; }
  // The served checkpoint's directory (model_path) and the name requests use.
  const std::string& model_path() const { return model_path_; }
  const std::string& model_name() const { return model_name_; }

  // Adds the flow as `name` (recording recall). Returns nullopt when the server took it, or the
  // flow's fault as one line ("path:line:col: error: message (and N more)" for a compile
  // error, "path: budget: ..." for a bad budget). Throws vortex::Error for anything else (the
  // server cannot add flows, the name is taken, the connection failed).
  std::optional<std::string> add_flow(const std::string& name, const std::string& source,
                                      const std::string& display_path,
                                      const flow::BudgetOverrides& budget);
  // GET /v1/flows/NAME's "stats"; throws vortex::Error.
  Json flow_stats(const std::string& name);
  // DELETE /v1/flows/NAME; errors are ignored (the flow may be gone with the server).
  void remove_flow(const std::string& name) noexcept;

  // Runs the prompts greedily through POST /generate, `concurrency` at a time, with `flow` (a
  // loaded flow's name, or "dense"); returns each prompt's text in order. Calls
  // progress(done, total) after each. Throws vortex::Error naming the prompt for a failed
  // request.
  std::vector<std::string> generate(const std::vector<ServerPrompt>& prompts,
                                    const std::string& flow, int concurrency,
                                    const std::function<void(size_t, size_t)>& progress = {});

 private:
  struct Impl;
  std::string url_, model_path_, model_name_;
  std::unique_ptr<Impl> impl_;
};

// A name for a submitted flow on a server: "submit-<file stem>-<pid>-<n>", within the server's
// rules ([A-Za-z0-9_.-], at most 64 characters).
std::string server_flow_name(const std::string& path);

}  // namespace vortex::agent
