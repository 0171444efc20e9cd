// OpenAI's error shape and what unmatched routes answer.
#include "server/error_response.h"

#include <gtest/gtest.h>

#include "server/routes.h"
#include "server_test_util.h"

namespace vortex::server {
namespace {

TEST(ErrorResponse, HasOpenAisShape) {
  Json j = error_json(HttpError(400, "max_tokens: must be at least 1", "max_tokens"));
  EXPECT_EQ(j, Json({{"error",
                      {{"message", "max_tokens: must be at least 1"},
                       {"type", "invalid_request_error"},
                       {"param", "max_tokens"},
                       {"code", nullptr}}}}));
  j = error_json(HttpError(404, "no such model", "model", "model_not_found"));
  EXPECT_EQ(j["error"]["code"], "model_not_found");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_TRUE(error_json(HttpError(500, "boom"))["error"]["param"].is_null());
  EXPECT_EQ(error_type_for_status(503), "server_error");
  EXPECT_EQ(error_type_for_status(429), "rate_limit_error");
  EXPECT_EQ(error_type_for_status(413), "invalid_request_error");
}

TEST(Routes, UnknownPathIs404AndWrongMethodIs405) {
  HttpError e = unmatched_route_error("POST", "/v1/embeddings");
  EXPECT_EQ(e.status(), 404);
  EXPECT_EQ(std::string(e.what()), "Invalid URL (POST /v1/embeddings)");
  e = unmatched_route_error("GET", "/v1/chat/completions");
  EXPECT_EQ(e.status(), 405);
  EXPECT_CONTAINS(std::string(e.what()), "use POST");
  EXPECT_EQ(allowed_methods("/v1/chat/completions"), "POST");
  EXPECT_EQ(allowed_methods("/metrics"), "GET, HEAD");
  EXPECT_EQ(allowed_methods("/v1/models/tiny"), "GET, HEAD");
  EXPECT_EQ(allowed_methods("/v1/models/"), "");
  EXPECT_EQ(unmatched_route_error("DELETE", "/health").status(), 405);
}

TEST(ServedModel, NamesAndFlows) {
  EXPECT_EQ(default_served_model_name("models/needle/"), "needle");
  EXPECT_EQ(default_served_model_name("/a/b/Qwen3-0.6B"), "Qwen3-0.6B");
  EXPECT_EQ(default_served_model_name("qwen3-1.7b"), "qwen3-1.7b");
  ServedModel m = testing::served({"block_topk"});
  EXPECT_EQ(flow_of_model("", m), "");
  EXPECT_EQ(flow_of_model("tiny", m), "");
  EXPECT_EQ(flow_of_model("tiny:block_topk", m), "block_topk");
  EXPECT_THROW(flow_of_model("tiny:quest", m), HttpError);
  Json models = models_json(m);
  EXPECT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 2u);
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(models["data"][0]["max_model_len"], 4096);
  EXPECT_EQ(models["data"][1]["id"], "tiny:block_topk");
  EXPECT_EQ(models["data"][1]["parent"], "tiny");
  EXPECT_EQ(models["data"][1]["flow"], "block_topk");
}

}  // namespace
}  // namespace vortex::server
