// The bodies and answers of POST/GET/DELETE /v1/flows (server/flow_api.h) as pure functions: a
// bad upload is a 400 naming the field, a flow that does not compile comes back with every
// diagnostic located, a good one compiles for the served model with its budget.
#include "server/flow_api.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "model/presets.h"
#include "server/routes.h"

namespace vortex::server {
namespace {

std::string read_flow(const std::string& name) {
  std::ifstream in(std::string(VORTEX_SOURCE_DIR) + "/flows/" + name + ".py");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

HttpError upload_error(const Json& body) {
  try {
    parse_flow_upload(body);
  } catch (const HttpError& e) {
    return e;
  }
  return HttpError(200, "(no error)");
}

TEST(FlowApi, BadUploadsNameTheField) {
  const std::string src = read_flow("quest");
  struct Case {
    Json body;
    std::string param;
  } cases[] = {
      {Json::array(), ""},
      {{{"source", src}}, "name"},
      {{{"name", 7}, {"source", src}}, "name"},
      {{{"name", "a b"}, {"source", src}}, "name"},
      {{{"name", "dense"}, {"source", src}}, "name"},
      {{{"name", std::string(65, 'x')}, {"source", src}}, "name"},
      {{{"name", "f"}}, "source"},
      {{{"name", "f"}, {"source", ""}}, "source"},
      {{{"name", "f"}, {"source", std::string((1 << 20) + 1, ' ')}}, "source"},
      {{{"name", "f"}, {"source", src}, {"budget", {{"topk_ratio", 2}}}}, "budget.topk_ratio"},
      {{{"name", "f"}, {"source", src}, {"budget", 3}}, "budget"}};
  for (const Case& c : cases) {
    const HttpError e = upload_error(c.body);
    EXPECT_EQ(e.status(), 400) << c.body.dump().substr(0, 120);
    EXPECT_EQ(e.param(), c.param) << e.what();
  }
  const FlowUpload ok = parse_flow_upload(
      {{"name", "my-flow.v2"}, {"source", src}, {"budget", {{"topk_ratio", 0.125}}}});
  EXPECT_EQ(ok.name, "my-flow.v2");
  EXPECT_EQ(ok.budget.ratio, 0.125);
}

TEST(FlowApi, CompileErrorsComeBackLocated) {
  FlowUpload u;
  u.name = "broken";
  u.source =
      "\"\"\"Doc.\"\"\"\nfrom vortex.flow import Flow, Field\n\nclass B(Flow):\n"
      "    x = Field(1, Q)\n";
  const ModelConfig m = *preset_config("qwen3-0.6b");
  try {
    compile_flow_upload(u, m, 16);
    FAIL() << "compiled";
  } catch (const FlowCompileError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "flow_compile_error");
    ASSERT_FALSE(e.diagnostics().empty());
    EXPECT_EQ(e.diagnostics()[0]["line"], 5);
    EXPECT_NE(std::string(e.what()).find("broken.py:5:"), std::string::npos) << e.what();
    const Json j = flow_compile_error_json(e);
    EXPECT_EQ(j["error"]["code"], "flow_compile_error");
    EXPECT_EQ(j["diagnostics"], e.diagnostics());
  }
}

TEST(FlowApi, AGoodFlowCompilesWithItsBudget) {
  FlowUpload u;
  u.name = "bt";
  u.source = read_flow("block_topk");
  u.budget.ratio = 0.25;
  const ModelConfig m = *preset_config("qwen3-0.6b");
  const auto config = compile_flow_upload(u, m, 16);
  EXPECT_EQ(config->flow_path, "bt.py");  // the engine names it "bt"
  EXPECT_DOUBLE_EQ(config->policy.effective_ratio(), 0.25);
  u.budget = {};
  u.budget.dense_layers = std::vector<int64_t>{500};
  try {
    compile_flow_upload(u, m, 16);
    FAIL() << "a dense layer the model lacks was accepted";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.param(), "budget");
  }
}

TEST(FlowApi, FlowListAndRoutes) {
  const Json j = flows_json({"quest", "bt"}, "quest");
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][0]["default"], true);
  EXPECT_EQ(j["data"][1]["id"], "bt");
  EXPECT_EQ(allowed_methods("/v1/flows"), "GET, HEAD, POST");
  EXPECT_EQ(allowed_methods("/v1/flows/bt"), "GET, HEAD, DELETE");
}

}  // namespace
}  // namespace vortex::server
