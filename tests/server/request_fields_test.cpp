// The fields every endpoint shares: typed reads that name the field's path, prompts checked
// against the vocabulary and the context, sampling fields, the "vortex" extension and the
// expansion of prompts x n into engine requests.
#include "server/request_fields.h"

#include <gtest/gtest.h>

#include "server/error_response.h"
#include "server/field_reader.h"
#include "server_test_util.h"

namespace vortex::server {
namespace {

using testing::served;

// The HttpError `fn` throws (a failure when it throws none).
template <class Fn>
HttpError error_of(Fn fn) {
  try {
    fn();
  } catch (const HttpError& e) {
    return e;
  }
  ADD_FAILURE() << "no HttpError thrown";
  return HttpError(0, "");
}

TEST(FieldReader, AbsentAndNullReadAsUnsetAndTypesAreChecked) {
  const Json body = {{"a", nullptr}, {"n", 16.0}, {"x", 16.5}, {"b", "yes"}, {"o", {{"k", 1}}}};
  FieldReader r(body, "");
  EXPECT_FALSE(r.get_int("a", 0, 10).has_value());
  EXPECT_FALSE(r.get_int("missing", 0, 10).has_value());
  EXPECT_EQ(r.get_int("n", 0, 100), 16);  // an integral float is an integer
  HttpError e = error_of([&] { r.get_int("x", 0, 100); });
  EXPECT_EQ(e.status(), 400);
  EXPECT_EQ(e.param(), "x");
  e = error_of([&] { r.get_bool("b"); });
  EXPECT_EQ(e.param(), "b");
  EXPECT_CONTAINS(std::string(e.what()), "expected true or false, got a string");
  e = error_of([&] { r.get_int("n", 0, 10); });
  EXPECT_CONTAINS(std::string(e.what()), "n: must be in [0, 10], got 16");
  std::optional<FieldReader> o = r.get_object("o");
  ASSERT_TRUE(o);
  e = error_of([&] { o->get_string("k"); });
  EXPECT_EQ(e.param(), "o.k");
  e = error_of([] { FieldReader(Json::array(), ""); });
  EXPECT_CONTAINS(std::string(e.what()), "must be a JSON object");
}

TEST(FieldReader, UnsupportedFieldsPassOnlyWithTheirOffValue) {
  const Json body = {
      {"presence_penalty", 0.0}, {"frequency_penalty", 0.5}, {"tools", Json::array()}};
  FieldReader r(body, "");
  r.reject_unless("presence_penalty", 0);
  r.reject_unless("tools", Json::array());
  r.reject_unless("absent", 0);
  HttpError e = error_of([&] { r.reject_unless("frequency_penalty", 0); });
  EXPECT_EQ(e.param(), "frequency_penalty");
  EXPECT_CONTAINS(std::string(e.what()), "not supported");
}

TEST(RequestFields, PromptsAreCheckedAgainstTheVocabularyAndTheContext) {
  const ServedModel m = served();
  EXPECT_EQ(read_token_ids(Json::array({1, 2, 3}), m, "prompt"), (std::vector<int32_t>{1, 2, 3}));
  HttpError e = error_of([&] { read_token_ids(Json::array({1, 99999}), m, "prompt"); });
  EXPECT_EQ(e.param(), "prompt[1]");
  EXPECT_CONTAINS(std::string(e.what()), "outside the vocabulary [0, 1024)");
  e = error_of([&] { read_token_ids(Json::array({1, "a"}), m, "input_ids"); });
  EXPECT_EQ(e.param(), "input_ids[1]");
  e = error_of([&] { read_token_ids(Json::array(), m, "prompt"); });
  EXPECT_CONTAINS(std::string(e.what()), "empty");
  e = error_of([&] { read_token_ids(Json(std::vector<int>(4096, 5)), m, "prompt"); });
  EXPECT_EQ(e.param(), "prompt");
  EXPECT_CONTAINS(std::string(e.what()), "4096 tokens but the model's context is 4096");
  EXPECT_EQ(tokenize_prompt("hello", m, "prompt", true), m.tokenizer->encode("hello"));
  ServedModel no_tokenizer = m;
  no_tokenizer.tokenizer = nullptr;
  e = error_of([&] { tokenize_prompt("hello", no_tokenizer, "text", true); });
  EXPECT_EQ(e.param(), "text");
  EXPECT_CONTAINS(std::string(e.what()), "token ids");
}

TEST(RequestFields, SamplingFieldsAreReadAndRangeChecked) {
  const ServedModel m = served();
  GenerationParams p;
  std::optional<int64_t> seed;
  const Json body = {{"temperature", 0.5}, {"top_p", 0.9}, {"top_k", -1},       {"min_p", 0.1},
                     {"seed", -3},         {"stop", "\n"}, {"ignore_eos", true}};
  read_sampling_fields(FieldReader(body, ""), m, p, seed);
  EXPECT_FLOAT_EQ(p.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(p.sampling.top_p, 0.9f);
  EXPECT_EQ(p.sampling.top_k, 0);  // -1: off
  EXPECT_FLOAT_EQ(p.sampling.min_p, 0.1f);
  EXPECT_EQ(seed, -3);
  EXPECT_EQ(p.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(p.ignore_eos);
  for (const auto& [bad, param] : std::vector<std::pair<Json, std::string>>{
           {{{"temperature", "hot"}}, "temperature"},
           {{{"temperature", -1}}, "temperature"},
           {{{"top_p", 0}}, "top_p"},
           {{{"top_k", -2}}, "top_k"},
           {{{"min_p", 2}}, "min_p"},
           {{{"stop", 5}}, "stop"},
           {{{"stop", {"a", 1}}}, "stop[1]"},
           {{{"stop", ""}}, "stop"},
           {{{"stop", std::vector<std::string>(17, "x")}}, "stop"},
           {{{"seed", "1"}}, "seed"}}) {
    HttpError e = error_of([&] { read_sampling_fields(FieldReader(bad, ""), m, p, seed); });
    EXPECT_EQ(e.param(), param) << bad.dump();
    EXPECT_EQ(e.status(), 400);
  }
}

TEST(RequestFields, VortexExtensionPicksALoadedFlowAndItsBudget) {
  const ServedModel dense = served();
  const ServedModel sparse = served({"block_topk"});
  GenerationParams p;
  read_vortex_fields(FieldReader(Json::object(), ""), sparse, "", p);
  EXPECT_EQ(p.flow, "");
  const Json body = {{"vortex",
                      {{"flow", "block_topk"},
                       {"topk_ratio", 0.0625},
                       {"sink_pages", 1},
                       {"recent_pages", 2},
                       {"topk_cap", 64}}}};
  read_vortex_fields(FieldReader(body, ""), sparse, "", p);
  EXPECT_EQ(p.flow, "block_topk");
  EXPECT_DOUBLE_EQ(p.budget.ratio.value(), 0.0625);
  EXPECT_EQ(p.budget.sink, 1);
  EXPECT_EQ(p.budget.recent, 2);
  EXPECT_EQ(p.budget.cap, 64);
  EXPECT_FALSE(p.budget.pages.has_value());

  HttpError e = error_of([&] {
    GenerationParams q;
    read_vortex_fields(FieldReader(Json{{"vortex", {{"flow", "quest"}}}}, ""), sparse, "", q);
  });
  EXPECT_EQ(e.param(), "vortex.flow");
  EXPECT_EQ(e.code(), "flow_not_found");
  EXPECT_CONTAINS(std::string(e.what()), "'quest'");
  e = error_of([&] {
    GenerationParams q;
    read_vortex_fields(FieldReader(Json{{"vortex", {{"topk_ratio", 0.5}}}}, ""), dense, "", q);
  });
  EXPECT_EQ(e.param(), "vortex");
  EXPECT_CONTAINS(std::string(e.what()), "--flow");
  e = error_of([&] {
    GenerationParams q;
    read_vortex_fields(FieldReader(Json{{"vortex", {{"topk_ratio", 2}}}}, ""), sparse, "", q);
  });
  EXPECT_EQ(e.param(), "vortex.topk_ratio");
  e = error_of([&] {
    GenerationParams q;
    read_vortex_fields(FieldReader(Json{{"vortex", {{"topk_pages", -1}}}}, ""), sparse, "", q);
  });
  EXPECT_EQ(e.param(), "vortex.topk_pages");
  e = error_of([&] {
    GenerationParams q;
    read_vortex_fields(FieldReader(Json{{"vortex", {{"flow", "dense"}}}}, ""), sparse, "block_topk",
                       q);
  });
  EXPECT_EQ(e.param(), "vortex.flow");  // disagrees with the model name's flow
}

TEST(RequestFields, ChoicesArePromptMajorWithOneSeedEach) {
  GenerationParams p;
  std::vector<ChoiceJob> jobs = expand_choices({{1, 2}, {3}}, {p}, 3, int64_t{5}, "n");
  ASSERT_EQ(jobs.size(), 6u);
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(jobs[i].index, static_cast<int32_t>(i));
    EXPECT_EQ(jobs[i].prompt_index, static_cast<int32_t>(i / 3));
    EXPECT_EQ(jobs[i].params.sampling.seed, 5 + i);
  }
  EXPECT_EQ(jobs[4].prompt, std::vector<int32_t>{3});
  EXPECT_EQ(expand_choices({{1}}, {p}, 2, std::nullopt, "n")[1].params.sampling.seed, 0u);
  // Seed 0 is a seed like any other: never the engine's "random".
  EXPECT_NE(engine_seed(0, 0), 0u);
  EXPECT_EQ(engine_seed(0, 0), engine_seed(0, 0));
  EXPECT_EQ(engine_seed(-1, 1), engine_seed(0, 0));
  HttpError e = error_of([&] {
    expand_choices(std::vector<std::vector<int32_t>>(5, {1}), {p}, 16, std::nullopt, "n");
  });
  EXPECT_EQ(e.param(), "n");
  EXPECT_CONTAINS(std::string(e.what()), "80 completions, over the limit of 64");
}

}  // namespace
}  // namespace vortex::server
