// SGLang's /generate bodies and answers, and /get_model_info.
#include "server/sglang_protocol.h"

#include <gtest/gtest.h>

#include "server/error_response.h"
#include "server_test_util.h"

namespace vortex::server {
namespace {

using testing::served;

HttpError generate_error(const Json& body, const ServedModel& m = served()) {
  try {
    parse_generate_request(body, m);
  } catch (const HttpError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body.dump();
  return HttpError(0, "");
}

TEST(SglangRequest, TextOrIdsSingleOrBatch) {
  const ServedModel m = served();
  ApiRequest one = parse_generate_request(
      {{"text", "hello"}, {"sampling_params", {{"temperature", 0}, {"top_k", -1}, {"stop", "x"}}}},
      m);
  ASSERT_EQ(one.jobs.size(), 1u);
  EXPECT_FALSE(one.batch);
  EXPECT_EQ(one.jobs[0].prompt, m.tokenizer->encode("hello"));
  EXPECT_EQ(one.jobs[0].params.max_tokens, 128);  // SGLang's default max_new_tokens
  EXPECT_EQ(one.jobs[0].params.sampling.temperature, 0.0f);
  EXPECT_EQ(one.jobs[0].params.sampling.top_k, 0);
  EXPECT_EQ(one.jobs[0].params.stop, std::vector<std::string>{"x"});
  ApiRequest defaults = parse_generate_request({{"input_ids", {1, 2}}}, m);
  EXPECT_EQ(defaults.jobs[0].params.sampling.temperature, 1.0f);  // SGLang's default

  ApiRequest batch = parse_generate_request(
      {{"input_ids", {{1, 2}, {3}}},
       {"sampling_params",
        {{{"max_new_tokens", 4}, {"sampling_seed", 7}}, {{"max_new_tokens", 5}, {"seed", 9}}}},
       {"rid", {"r0", "r1"}}},
      m);
  ASSERT_EQ(batch.jobs.size(), 2u);
  EXPECT_TRUE(batch.batch);
  EXPECT_EQ(batch.jobs[1].prompt, std::vector<int32_t>{3});
  EXPECT_EQ(batch.jobs[0].params.max_tokens, 4);
  EXPECT_EQ(batch.jobs[1].params.max_tokens, 5);
  EXPECT_EQ(batch.jobs[0].params.sampling.seed, 7u);
  EXPECT_EQ(batch.jobs[1].params.sampling.seed, 9u);
  EXPECT_EQ(batch.rids, (std::vector<std::string>{"r0", "r1"}));

  ApiRequest n = parse_generate_request({{"text", "a"}, {"sampling_params", {{"n", 3}}}}, m);
  EXPECT_EQ(n.jobs.size(), 3u);
  EXPECT_TRUE(n.batch);  // n > 1 answers with a list

  ApiRequest flow = parse_generate_request(
      {{"text", "a"}, {"sampling_params", {{"vortex", {{"flow", "block_topk"}}}}}},
      served({"block_topk"}));
  EXPECT_EQ(flow.jobs[0].params.flow, "block_topk");
  ApiRequest top_flow = parse_generate_request(
      {{"text", "a"}, {"vortex", {{"flow", "block_topk"}, {"topk_pages", 8}}}},
      served({"block_topk"}));
  EXPECT_EQ(top_flow.jobs[0].params.budget.pages, 8);
  // The same keys straight in sampling_params.
  ApiRequest flat = parse_generate_request(
      {{"text", "a"},
       {"sampling_params", {{"flow", "block_topk"}, {"topk_ratio", 0.25}, {"sink_pages", 0}}}},
      served({"block_topk"}));
  EXPECT_EQ(flat.jobs[0].params.flow, "block_topk");
  EXPECT_EQ(flat.jobs[0].params.budget.ratio, 0.25);
  EXPECT_EQ(flat.jobs[0].params.budget.sink, 0);
}

TEST(SglangRequest, ErrorsNameTheField) {
  EXPECT_EQ(generate_error(Json::object()).param(), "text");
  EXPECT_EQ(generate_error({{"text", "a"}, {"input_ids", {1}}}).param(), "input_ids");
  EXPECT_EQ(generate_error({{"text", 5}}).param(), "text");
  EXPECT_EQ(generate_error({{"text", {"a", 1}}}).param(), "text[1]");
  EXPECT_EQ(generate_error({{"input_ids", {{1}, {9999}}}}).param(), "input_ids[1][0]");
  EXPECT_EQ(generate_error({{"text", "a"}, {"sampling_params", {{"max_new_tokens", 0}}}}).param(),
            "sampling_params.max_new_tokens");
  EXPECT_EQ(generate_error({{"text", {"a", "b"}}, {"sampling_params", {{{"top_p", 1}}}}}).param(),
            "sampling_params");  // one entry for two prompts
  EXPECT_EQ(
      generate_error({{"text", {"a", "b"}}, {"sampling_params", {{{"top_p", 1}}, {{"top_p", 2}}}}})
          .param(),
      "sampling_params[1].top_p");
  EXPECT_EQ(generate_error({{"text", "a"}, {"sampling_params", {{"n", 17}}}}).param(),
            "sampling_params.n");
  EXPECT_EQ(generate_error({{"text", "a"}, {"top_logprobs_num", 21}}).param(), "top_logprobs_num");
  EXPECT_EQ(generate_error({{"text", "a"}, {"image_data", "x"}}).param(), "image_data");
  EXPECT_EQ(
      generate_error({{"text", "a"}, {"sampling_params", {{"repetition_penalty", 1.2}}}}).param(),
      "sampling_params.repetition_penalty");
  EXPECT_EQ(generate_error({{"text", "a"}, {"rid", {"x", "y"}}}).param(), "rid");
  HttpError e =
      generate_error({{"text", "a"}, {"sampling_params", {{"vortex", {{"flow", "quest"}}}}}});
  EXPECT_EQ(e.param(), "sampling_params.vortex.flow");
  e = generate_error({{"text", "a"}, {"sampling_params", {{"flow", "quest"}}}});
  EXPECT_EQ(e.param(), "sampling_params.flow");
  e = generate_error({{"text", "a"}, {"sampling_params", {{"topk_ratio", 2}}}},
                     served({"block_topk"}));
  EXPECT_EQ(e.param(), "sampling_params.topk_ratio");
  e = generate_error(
      {{"text", "a"},
       {"sampling_params", {{"flow", "block_topk"}, {"vortex", {{"flow", "block_topk"}}}}}},
      served({"block_topk"}));
  EXPECT_EQ(e.param(), "sampling_params.vortex");
}

ChoiceOutput output(std::vector<int32_t> ids, std::string text, FinishReason reason,
                    std::string abort_reason = "") {
  RequestEvent end;
  end.kind = RequestEvent::Kind::kFinished;
  end.result.token_ids = std::move(ids);
  end.result.logprobs.assign(end.result.token_ids.size(), -0.25);
  end.result.text = std::move(text);
  end.result.finish_reason = reason;
  end.abort_reason = std::move(abort_reason);
  ChoiceOutput c;
  c.add(end);
  return c;
}

TEST(SglangAnswer, MetaInfoCarriesTheFinishReasonAndCounts) {
  const ServedModel m = served();
  ApiRequest req = parse_generate_request({{"input_ids", {1, 2, 3}}, {"rid", "abc"}}, m);
  auto f = make_sglang_formatter(req, m, "id0");
  Json j = f->response({output({5, 6}, "xy", FinishReason::kLength)});
  EXPECT_EQ(j["text"], "xy");
  EXPECT_EQ(j["output_ids"], Json({5, 6}));
  EXPECT_EQ(j["meta_info"]["id"], "abc");
  EXPECT_EQ(j["meta_info"]["prompt_tokens"], 3);
  EXPECT_EQ(j["meta_info"]["completion_tokens"], 2);
  EXPECT_EQ(j["meta_info"]["finish_reason"], Json({{"type", "length"}, {"length", 2}}));
  EXPECT_FALSE(j["meta_info"].contains("output_token_logprobs"));

  const int32_t eos = m.eos_token_ids.at(0);
  j = f->response({output({5, eos}, "x", FinishReason::kStop)});
  EXPECT_EQ(j["meta_info"]["finish_reason"], Json({{"type", "stop"}, {"matched", eos}}));
  j = f->response({output({5}, "x", FinishReason::kAbort, "deadline")});
  EXPECT_EQ(j["meta_info"]["finish_reason"]["type"], "abort");
  EXPECT_EQ(j["meta_info"]["finish_reason"]["message"], "deadline");

  ApiRequest lp = parse_generate_request(
      {{"text", {"a", "b"}}, {"return_logprob", true}, {"top_logprobs_num", 1}}, m);
  Json list = make_sglang_formatter(lp, m, "id1")
                  ->response({output({5}, "x", FinishReason::kLength),
                              output({6}, "y", FinishReason::kLength)});
  ASSERT_TRUE(list.is_array());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1]["meta_info"]["id"], "id1-1");
  const Json& tok = list[1]["meta_info"]["output_token_logprobs"][0];
  EXPECT_DOUBLE_EQ(tok[0].get<double>(), -0.25);
  EXPECT_EQ(tok[1], 6);
  EXPECT_EQ(tok[2], m.tokenizer->decode({6}));
  EXPECT_EQ(list[1]["meta_info"]["output_top_logprobs"].size(), 1u);
}

TEST(SglangAnswer, StreamSendsCumulativeTextThenDone) {
  const ServedModel m = served();
  ApiRequest req = parse_generate_request({{"text", {"a", "b"}}, {"stream", true}}, m);
  auto f = make_sglang_formatter(req, m, "s");
  EXPECT_EQ(f->start(), "");
  ChoiceOutput c;
  RequestEvent e1;
  e1.token = 5;
  e1.text = "x";
  c.add(e1);
  const std::string first = f->token(1, c, e1);
  RequestEvent e2;
  e2.token = 6;
  e2.text = "y";
  c.add(e2);
  const std::string second = f->token(1, c, e2);
  ASSERT_EQ(first.rfind("data: ", 0), 0u);
  Json j1 = Json::parse(first.substr(6)), j2 = Json::parse(second.substr(6));
  EXPECT_EQ(j1["text"], "x");
  EXPECT_EQ(j2["text"], "xy");  // cumulative, as SGLang streams
  EXPECT_EQ(j2["output_ids"], Json({5, 6}));
  EXPECT_EQ(j2["index"], 1);
  EXPECT_TRUE(j2["meta_info"]["finish_reason"].is_null());
  EXPECT_EQ(f->end({}), "data: [DONE]\n\n");
}

TEST(SglangModelInfo, NamesThePathsAndGeneration) {
  Json j = model_info_json(served());
  EXPECT_EQ(j["is_generation"], true);
  EXPECT_EQ(j["model_path"], testing::tiny_model().source);
  EXPECT_EQ(j["tokenizer_path"], testing::tiny_model().source);
  EXPECT_EQ(j["served_model_name"], "tiny");
  EXPECT_EQ(j["model_type"], "qwen3");
  EXPECT_TRUE(j.contains("preferred_sampling_params"));
}

}  // namespace
}  // namespace vortex::server
