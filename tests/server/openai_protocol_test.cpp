// OpenAI's chat and completions bodies: what they become (prompts through the chat template,
// defaults, choices) and what is refused (each error names its field), then the answers and the
// streamed chunks in OpenAI's shapes, built from synthetic events.
#include "server/openai_protocol.h"

#include <gtest/gtest.h>

#include <sstream>

#include "server/error_response.h"
#include "server_test_util.h"

namespace vortex::server {
namespace {

using testing::served;

HttpError chat_error(const Json& body, const ServedModel& m = served()) {
  try {
    parse_chat_request(body, m);
  } catch (const HttpError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body.dump();
  return HttpError(0, "");
}

HttpError completion_error(const Json& body, const ServedModel& m = served()) {
  try {
    parse_completion_request(body, m);
  } catch (const HttpError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body.dump();
  return HttpError(0, "");
}

Json user(const std::string& text) {
  return {{"role", "user"}, {"content", text}};
}

TEST(OpenAiRequest, ChatRendersTheMessagesWithTheModelsTemplate) {
  const ServedModel m = served();
  const Json body = {{"model", "tiny"},
                     {"messages", {{{"role", "developer"}, {"content", "Be brief."}}, user("Hi")}},
                     {"max_tokens", 7},
                     {"temperature", 0},
                     {"some_field_clients_send", {{"x", 1}}}};
  ApiRequest req = parse_chat_request(body, m);
  ASSERT_EQ(req.jobs.size(), 1u);
  const std::string text = m.chat_template->apply({{"system", "Be brief."}, {"user", "Hi"}}, true);
  EXPECT_EQ(req.jobs[0].prompt, m.tokenizer->encode(text, /*add_special_tokens=*/false));
  EXPECT_EQ(req.jobs[0].params.max_tokens, 7);
  EXPECT_EQ(req.jobs[0].params.sampling.temperature, 0.0f);
  EXPECT_EQ(req.model, "tiny");
  EXPECT_FALSE(req.stream);

  // Content as a list of text parts reads as their concatenation; enable_thinking is passed on.
  const Json parts = {
      {"messages",
       {{{"role", "user"},
         {"content", {{{"type", "text"}, {"text", "H"}}, {{"type", "text"}, {"text", "i"}}}}}}},
      {"chat_template_kwargs", {{"enable_thinking", false}}}};
  ApiRequest req2 = parse_chat_request(parts, m);
  EXPECT_EQ(req2.jobs[0].prompt,
            m.tokenizer->encode(m.chat_template->apply({{"user", "Hi"}}, true, false), false));
  EXPECT_EQ(req2.model, "tiny");  // no model: the served name
  // Defaults: OpenAI's temperature 1, and the rest of the context for chat.
  EXPECT_EQ(req2.jobs[0].params.sampling.temperature, 1.0f);
  EXPECT_EQ(req2.jobs[0].params.max_tokens, m.context_length);
}

TEST(OpenAiRequest, ChatFieldsAndTheirErrorsNameTheField) {
  ApiRequest req = parse_chat_request({{"messages", {user("x")}},
                                       {"max_completion_tokens", 3},
                                       {"max_tokens", 9},
                                       {"n", 2},
                                       {"seed", 11},
                                       {"logprobs", true},
                                       {"top_logprobs", 4},
                                       {"stream", true},
                                       {"stream_options", {{"include_usage", true}}},
                                       {"stop", {"a", "b"}}},
                                      served());
  ASSERT_EQ(req.jobs.size(), 2u);
  EXPECT_EQ(req.jobs[1].params.max_tokens, 3);  // max_completion_tokens wins
  EXPECT_EQ(req.jobs[0].params.sampling.seed, 11u);
  EXPECT_EQ(req.jobs[1].params.sampling.seed, 12u);
  EXPECT_EQ(req.jobs[0].params.top_logprobs, 4);
  EXPECT_TRUE(req.logprobs && req.stream && req.include_usage);
  EXPECT_EQ(req.jobs[0].params.stop, (std::vector<std::string>{"a", "b"}));

  const Json ok = {{"messages", {user("x")}}};
  auto with = [&](const char* key, const Json& v) {
    Json b = ok;
    b[key] = v;
    return b;
  };
  EXPECT_EQ(chat_error(with("messages", Json::array())).param(), "messages");
  EXPECT_EQ(chat_error(Json::object()).param(), "messages");
  EXPECT_EQ(chat_error(with("messages", {{{"role", "robot"}, {"content", "x"}}})).param(),
            "messages[0].role");
  EXPECT_EQ(chat_error(with("messages", {user("x"), {{"role", "user"}, {"content", 5}}})).param(),
            "messages[1].content");
  HttpError e =
      chat_error(with("messages", {{{"role", "user"},
                                    {"content",
                                     {{{"type", "text"}, {"text", "x"}},
                                      {{"type", "image_url"}, {"image_url", {{"url", "u"}}}}}}}}));
  EXPECT_EQ(e.param(), "messages[0].content[1].type");
  EXPECT_CONTAINS(std::string(e.what()), "only text parts");
  EXPECT_EQ(chat_error(with("max_tokens", 0)).param(), "max_tokens");
  EXPECT_EQ(chat_error(with("max_tokens", "5")).param(), "max_tokens");
  EXPECT_EQ(chat_error(with("n", 17)).param(), "n");
  EXPECT_EQ(chat_error(with("temperature", "hot")).param(), "temperature");
  Json lp = with("logprobs", true);
  lp["top_logprobs"] = 21;
  EXPECT_EQ(chat_error(lp).param(), "top_logprobs");
  e = chat_error(with("top_logprobs", 2));
  EXPECT_EQ(e.param(), "top_logprobs");
  EXPECT_CONTAINS(std::string(e.what()), "logprobs");
  EXPECT_EQ(chat_error(with("stream", "yes")).param(), "stream");
  EXPECT_EQ(chat_error(with("presence_penalty", 1.5)).param(), "presence_penalty");
  EXPECT_EQ(chat_error(with("tools", {{{"type", "function"}}})).param(), "tools");
  parse_chat_request(with("presence_penalty", 0), served());  // the off value passes
  parse_chat_request(with("response_format", {{"type", "text"}}), served());
  std::string long_text;
  for (int i = 0; i < 3000; ++i) long_text += "hello world ";
  EXPECT_EQ(chat_error(with("messages", {user(long_text)})).param(),
            "messages");  // longer than the context
}

TEST(OpenAiRequest, UnknownModelIsA404NamingIt) {
  HttpError e = chat_error({{"model", "gpt-4"}, {"messages", {user("x")}}});
  EXPECT_EQ(e.status(), 404);
  EXPECT_EQ(e.code(), "model_not_found");
  EXPECT_EQ(e.param(), "model");
  EXPECT_CONTAINS(std::string(e.what()), "'gpt-4'");
  EXPECT_CONTAINS(std::string(e.what()), "'tiny'");
  // "NAME:FLOW" picks a loaded flow.
  ApiRequest req = parse_completion_request({{"model", "tiny:block_topk"}, {"prompt", "x"}},
                                            served({"block_topk"}));
  EXPECT_EQ(req.jobs[0].params.flow, "block_topk");
  EXPECT_EQ(req.model, "tiny:block_topk");
  EXPECT_EQ(
      completion_error({{"model", "tiny:quest"}, {"prompt", "x"}}, served({"block_topk"})).status(),
      404);
}

TEST(OpenAiRequest, CompletionPromptsInEveryForm) {
  const ServedModel m = served();
  ApiRequest one = parse_completion_request({{"prompt", "hello"}}, m);
  ASSERT_EQ(one.jobs.size(), 1u);
  EXPECT_EQ(one.jobs[0].prompt, m.tokenizer->encode("hello"));
  EXPECT_EQ(one.jobs[0].params.max_tokens, 16);  // OpenAI's default for completions
  ApiRequest texts = parse_completion_request({{"prompt", {"a", "b"}}, {"n", 2}}, m);
  ASSERT_EQ(texts.jobs.size(), 4u);
  EXPECT_EQ(texts.jobs[2].prompt, m.tokenizer->encode("b"));
  EXPECT_EQ(texts.jobs[2].prompt_index, 1);
  ApiRequest ids = parse_completion_request({{"prompt", {5, 6, 7}}}, m);
  EXPECT_EQ(ids.jobs[0].prompt, (std::vector<int32_t>{5, 6, 7}));
  ApiRequest lists = parse_completion_request({{"prompt", {{5, 6}, {7}}}, {"logprobs", 3}}, m);
  ASSERT_EQ(lists.jobs.size(), 2u);
  EXPECT_EQ(lists.jobs[1].prompt, std::vector<int32_t>{7});
  EXPECT_TRUE(lists.logprobs);
  EXPECT_EQ(lists.jobs[0].params.top_logprobs, 3);

  EXPECT_EQ(completion_error(Json::object()).param(), "prompt");
  EXPECT_EQ(completion_error({{"prompt", Json::array()}}).param(), "prompt");
  EXPECT_EQ(completion_error({{"prompt", 5}}).param(), "prompt");
  EXPECT_EQ(completion_error({{"prompt", {"a", 5}}}).param(), "prompt[1]");
  EXPECT_EQ(completion_error({{"prompt", {{1, 2}, {3, 5000}}}}).param(), "prompt[1][1]");
  EXPECT_EQ(completion_error({{"prompt", "x"}, {"logprobs", 21}}).param(), "logprobs");
  EXPECT_EQ(completion_error({{"prompt", "x"}, {"echo", true}}).param(), "echo");
  EXPECT_EQ(completion_error({{"prompt", "x"}, {"max_tokens", -1}}).param(), "max_tokens");
  EXPECT_EQ(completion_error({{"prompt", std::vector<int>(5000, 1)}}).param(), "prompt");
}

// Synthetic events of one choice: tokens 10, 11 with texts "a", "b", then the end.
std::vector<RequestEvent> events(const char* reason) {
  std::vector<RequestEvent> out;
  for (int i = 0; i < 2; ++i) {
    RequestEvent e;
    e.token = 10 + i;
    e.logprob = -0.5 * (i + 1);
    e.top_logprobs = {{10 + i, e.logprob}, {3, -2.0}};
    e.text = std::string(1, static_cast<char>('a' + i));
    out.push_back(e);
  }
  RequestEvent end;
  end.kind = RequestEvent::Kind::kFinished;
  end.result.prompt_tokens = 3;
  end.result.token_ids = {10, 11};
  end.result.logprobs = {-0.5, -1.0};
  end.result.top_logprobs = {out[0].top_logprobs, out[1].top_logprobs};
  end.result.text = "ab";
  end.result.finish_reason =
      std::string(reason) == "stop" ? FinishReason::kStop : FinishReason::kLength;
  out.push_back(end);
  return out;
}

ChoiceOutput finished(const char* reason) {
  ChoiceOutput c;
  for (const RequestEvent& e : events(reason)) c.add(e);
  return c;
}

// The JSON objects of an SSE text, and whether it ends with [DONE].
std::vector<Json> sse_objects(const std::string& sse, bool& done) {
  std::vector<Json> out;
  done = false;
  std::istringstream in(sse);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    EXPECT_EQ(line.rfind("data: ", 0), 0u) << line;
    if (line == "data: [DONE]") {
      done = true;
      continue;
    }
    EXPECT_FALSE(done) << "data after [DONE]";
    out.push_back(Json::parse(line.substr(6)));
  }
  return out;
}

TEST(OpenAiAnswer, ChatAnswerHasOpenAisShape) {
  const ServedModel m = served();
  ApiRequest req = parse_chat_request(
      {{"messages", {user("x")}}, {"logprobs", true}, {"top_logprobs", 2}, {"n", 2}}, m);
  auto f = make_openai_formatter(req, m, "chatcmpl-1", 1700000000);
  Json j = f->response({finished("stop"), finished("length")});
  EXPECT_EQ(j["id"], "chatcmpl-1");
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "tiny");
  ASSERT_EQ(j["choices"].size(), 2u);
  const Json& c = j["choices"][1];
  EXPECT_EQ(c["index"], 1);
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_EQ(c["message"]["content"], "ab");
  EXPECT_EQ(c["finish_reason"], "length");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  const Json& lp = c["logprobs"]["content"];
  ASSERT_EQ(lp.size(), 2u);
  EXPECT_EQ(lp[0]["token"], m.tokenizer->decode({10}));
  EXPECT_DOUBLE_EQ(lp[1]["logprob"].get<double>(), -1.0);
  EXPECT_TRUE(lp[0]["bytes"].is_array());
  ASSERT_EQ(lp[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(lp[0]["top_logprobs"][1]["token"], m.tokenizer->decode({3}));
  EXPECT_FALSE(c.contains("token_ids"));
  const int prompt = static_cast<int>(req.jobs[0].prompt.size());
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt);  // one prompt, counted once
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);
  EXPECT_EQ(j["usage"]["total_tokens"], prompt + 4);
}

TEST(OpenAiAnswer, CompletionAnswerHasTheLegacyLogprobsAndOptionalTokenIds) {
  const ServedModel m = served();
  ApiRequest req = parse_completion_request(
      {{"prompt", {1, 2, 3}}, {"logprobs", 2}, {"return_token_ids", true}}, m);
  Json j = make_openai_formatter(req, m, "cmpl-1", 5)->response({finished("length")});
  EXPECT_EQ(j["object"], "text_completion");
  const Json& c = j["choices"][0];
  EXPECT_EQ(c["text"], "ab");
  EXPECT_EQ(c["token_ids"], Json({10, 11}));
  EXPECT_EQ(c["prompt_token_ids"], Json({1, 2, 3}));
  const Json& lp = c["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), 2u);
  EXPECT_DOUBLE_EQ(lp["token_logprobs"][0].get<double>(), -0.5);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(lp["text_offset"][0], 0);
  EXPECT_EQ(lp["text_offset"][1], m.tokenizer->decode({10}).size());
  EXPECT_EQ(j["usage"]["prompt_tokens"], 3);
}

TEST(OpenAiAnswer, ChatStreamStartsWithTheRoleAndEndsWithUsageAndDone) {
  const ServedModel m = served();
  ApiRequest req = parse_chat_request(
      {{"messages", {user("x")}}, {"stream", true}, {"stream_options", {{"include_usage", true}}}},
      m);
  auto f = make_openai_formatter(req, m, "chatcmpl-9", 7);
  std::string sse = f->start();
  ChoiceOutput c;
  for (const RequestEvent& e : events("stop")) {
    c.add(e);
    sse += e.kind == RequestEvent::Kind::kToken ? f->token(0, c, e) : f->finish(0, c);
  }
  sse += f->end({c});
  bool done = false;
  std::vector<Json> chunks = sse_objects(sse, done);
  EXPECT_TRUE(done);
  ASSERT_EQ(chunks.size(), 5u);  // role, "a", "b", finish, usage
  for (const Json& ch : chunks) {
    EXPECT_EQ(ch["object"], "chat.completion.chunk");
    EXPECT_EQ(ch["id"], "chatcmpl-9");
  }
  EXPECT_EQ(chunks[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chunks[1]["choices"][0]["delta"]["content"], "a");
  EXPECT_EQ(chunks[2]["choices"][0]["delta"]["content"], "b");
  EXPECT_TRUE(chunks[2]["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(chunks[2]["usage"].is_null());
  EXPECT_EQ(chunks[3]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(chunks[3]["choices"][0]["delta"], Json::object());
  EXPECT_TRUE(chunks[4]["choices"].empty());
  EXPECT_EQ(chunks[4]["usage"]["completion_tokens"], 2);
}

TEST(OpenAiAnswer, CompletionStreamWithoutUsageAndHeldBackText) {
  const ServedModel m = served();
  ApiRequest req =
      parse_completion_request({{"prompt", "x"}, {"stream", true}, {"logprobs", 1}}, m);
  auto f = make_openai_formatter(req, m, "cmpl-2", 7);
  EXPECT_EQ(f->start(), "");
  ChoiceOutput c;
  RequestEvent held;  // a token whose text is held back (a stop string may match)
  held.token = 10;
  c.add(held);
  std::string sse = f->token(0, c, held);
  RequestEvent tail;  // the held text, released at the end
  tail.text = "zz";
  c.add(tail);
  sse += f->token(0, c, tail);
  RequestEvent end;
  end.kind = RequestEvent::Kind::kFinished;
  end.result.token_ids = {10};
  end.result.logprobs = {0};
  end.result.text = "zz";
  c.add(end);
  sse += f->finish(0, c) + f->end({c});
  bool done = false;
  std::vector<Json> chunks = sse_objects(sse, done);
  EXPECT_TRUE(done);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0]["choices"][0]["text"], "");  // logprobs make the token worth a chunk
  EXPECT_EQ(chunks[0]["choices"][0]["logprobs"]["tokens"].size(), 1u);
  EXPECT_EQ(chunks[1]["choices"][0]["text"], "zz");
  EXPECT_TRUE(chunks[1]["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(chunks[2]["choices"][0]["finish_reason"], "length");
  EXPECT_FALSE(chunks[2].contains("usage"));
}

TEST(OpenAiAnswer, AModelWithoutTokenizerSendsTokenIdsAndAChunkPerToken) {
  ServedModel m = served();
  m.tokenizer = nullptr;  // as `vortex serve --random-weights` serves a model
  ApiRequest req = parse_completion_request({{"prompt", {1, 2}}, {"stream", true}}, m);
  auto f = make_openai_formatter(req, m, "cmpl-3", 7);
  ChoiceOutput c;
  std::string sse;
  for (int32_t id : {10, 11}) {
    RequestEvent e;  // no text: nothing to decode it with
    e.token = id;
    c.add(e);
    sse += f->token(0, c, e);
  }
  RequestEvent end;
  end.kind = RequestEvent::Kind::kFinished;
  end.result.token_ids = {10, 11};
  end.result.logprobs = {0, 0};
  c.add(end);
  sse += f->finish(0, c) + f->end({c});
  bool done = false;
  std::vector<Json> chunks = sse_objects(sse, done);
  EXPECT_TRUE(done);
  ASSERT_EQ(chunks.size(), 3u);  // one per token, then the finish
  EXPECT_EQ(chunks[0]["choices"][0]["token_ids"], Json({10}));
  EXPECT_EQ(chunks[1]["choices"][0]["token_ids"], Json({11}));
  EXPECT_EQ(chunks[1]["choices"][0]["text"], "");
  EXPECT_EQ(chunks[2]["choices"][0]["finish_reason"], "length");

  ApiRequest whole = parse_completion_request({{"prompt", {1, 2}}}, m);
  Json j = make_openai_formatter(whole, m, "cmpl-4", 7)->response({c});
  EXPECT_EQ(j["choices"][0]["token_ids"], Json({10, 11}));
  EXPECT_EQ(j["choices"][0]["prompt_token_ids"], Json({1, 2}));
}

}  // namespace
}  // namespace vortex::server
