#include "server/flow_api.h"

#include <algorithm>
#include <cctype>

#include "flow/compiler.h"
#include "flow/limits.h"
#include "server/field_reader.h"
#include "server/request_fields.h"

namespace vortex::server {

FlowUpload parse_flow_upload(const Json& body) {
  if (!body.is_object())
    throw HttpError(400, str_cat("the body must be a JSON object, got ", json_type_name(body)));
  const FieldReader r(body, "");
  FlowUpload u;
  std::optional<std::string> name = r.get_string("name");
  if (!name) throw HttpError(400, "name: required (the name requests will use)", "name");
  const bool name_ok =
      !name->empty() && name->size() <= 64 && std::all_of(name->begin(), name->end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
  if (!name_ok) {
    throw HttpError(400,
                    str_cat("name: '", printable(*name, 80),
                            "' must be 1 to 64 characters of letters, digits, '_', '-' and '.'"),
                    "name");
  }
  if (*name == "dense")
    throw HttpError(400, "name: 'dense' names full attention and cannot name a flow", "name");
  std::optional<std::string> source = r.get_string("source");
  if (!source || source->empty())
    throw HttpError(400, "source: required (the flow's text, see docs/flows.md)", "source");
  if (static_cast<int64_t>(source->size()) > flow::kMaxSourceBytes) {
    throw HttpError(400,
                    str_cat("source: ", source->size(), " bytes, over the limit of ",
                            flow::kMaxSourceBytes, " bytes for a flow"),
                    "source");
  }
  u.name = *name;
  u.source = *source;
  if (std::optional<FieldReader> budget = r.get_object("budget"))
    u.budget = read_budget_fields(*budget);
  if (std::optional<bool> recall = r.get_bool("record_recall")) u.record_recall = *recall;
  return u;
}

std::shared_ptr<const SparseAttentionConfig> compile_flow_upload(const FlowUpload& upload,
                                                                 const ModelConfig& model,
                                                                 int32_t page_size) {
  const std::string file = upload.name + ".py";
  const flow::FlowGeometry geometry{model.group_size(), model.head_dim, page_size};
  flow::CompileOptions options;
  options.dump_ir = false;
  options.num_layers = model.num_layers;
  flow::CompileResult result = flow::compile_flow(upload.source, file, &geometry, options);
  if (!result.ok()) {
    Json diagnostics = Json::array();
    for (const flow::Diagnostic& d : result.diagnostics)
      diagnostics.push_back({{"line", d.loc.line}, {"col", d.loc.col}, {"message", d.message}});
    const std::string all =
        flow::format_compile_errors(result, upload.source, file, /*with_source=*/false);
    throw FlowCompileError(
        str_cat("source: flow '", upload.name,
                "' does not compile for this model: ", all.substr(0, all.find('\n')),
                result.diagnostics.size() > 1
                    ? str_cat(" (and ", result.diagnostics.size() - 1, " more in diagnostics)")
                    : ""),
        std::move(diagnostics));
  }
  try {
    return std::make_shared<const SparseAttentionConfig>(make_sparse_attention(
        file, std::move(*result.program), upload.budget, model, upload.record_recall));
  } catch (const Error& e) {
    throw HttpError(400, str_cat("budget: ", e.what()), "budget");
  }
}

Json flow_compile_error_json(const FlowCompileError& e) {
  Json j = error_json(e);
  j["diagnostics"] = e.diagnostics();
  return j;
}

Json flows_json(const std::vector<std::string>& names, const std::string& default_flow) {
  Json data = Json::array();
  for (const std::string& n : names)
    data.push_back({{"id", n}, {"object", "flow"}, {"default", n == default_flow}});
  return {{"object", "list"}, {"data", data}};
}

}  // namespace vortex::server
