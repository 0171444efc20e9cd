// Flows added to and removed from a running server: the bodies and answers of
//   POST   /v1/flows        {"name": "f", "source": "<the flow's text>", "budget": {...}}
//   GET    /v1/flows        the loaded flows
//   GET    /v1/flows/NAME   one flow's statistics (pages read, and recall when recorded)
//   DELETE /v1/flows/NAME
// as pure functions (the HTTP server calls the engine loop in between). A flow is verified and
// compiled for the served model before the engine sees it; compile errors come back as a 400
// with "diagnostics": [{"line", "col", "message"}].
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "engine/sparse_decode.h"
#include "model/model_config.h"
#include "server/error_response.h"

namespace vortex::server {

struct FlowUpload {
  std::string name;              // [A-Za-z0-9_.-]{1,64}, not "dense"
  std::string source;            // at most flow::kMaxSourceBytes
  flow::BudgetOverrides budget;  // "budget": the keys of a request's "vortex" object
  // "record_recall": measure each decode row's attention recall against full attention (an
  // extra dense pass per row; CPU engines only), reported by GET /v1/flows/NAME.
  bool record_recall = false;
};

// The body of POST /v1/flows; a 400 naming the field for anything missing or wrong.
FlowUpload parse_flow_upload(const Json& body);

// A flow that does not compile: the 400 and its located diagnostics.
class FlowCompileError : public HttpError {
 public:
  FlowCompileError(const std::string& message, Json diagnostics)
      : HttpError(400, message, "source", "flow_compile_error"),
        diagnostics_(std::move(diagnostics)) {}
  const Json& diagnostics() const { return diagnostics_; }

 private:
  Json diagnostics_;
};

// Compiles the upload for the model's geometry (every target's rules, the limits) and applies
// its budget: throws FlowCompileError with every diagnostic, or a 400 for a bad budget.
std::shared_ptr<const SparseAttentionConfig> compile_flow_upload(const FlowUpload& upload,
                                                                 const ModelConfig& model,
                                                                 int32_t page_size);

// The answer's body for a FlowCompileError: OpenAI's error object plus "diagnostics".
Json flow_compile_error_json(const FlowCompileError& e);

// GET /v1/flows: {"object": "list", "data": [{"id": NAME, "object": "flow", "default": bool}]}.
Json flows_json(const std::vector<std::string>& names, const std::string& default_flow);

}  // namespace vortex::server
