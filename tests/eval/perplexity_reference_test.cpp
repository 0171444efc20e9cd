// Perplexity under sparse decode against an independent implementation: the per-token NLL that
// `vortex eval --perplexity` computes on the CPU, under full attention and under flows, equals
// tests/data/perplexity/reference.json, which scripts/make_perplexity_reference.py computes from
// the model files and the selection rules of docs/flows.md without any vortex code (the file
// names the implementation that made it).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "core/json_file.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"
#include "engine/sparse_decode.h"
#include "eval/perplexity.h"

namespace vortex::eval {
namespace {

std::string source(const std::string& rel) {
  return std::string(VORTEX_SOURCE_DIR) + "/" + rel;
}

std::shared_ptr<const SparseAttentionConfig> flow_of(const Json& c, const LoadedModel& m,
                                                     int32_t page_size) {
  if (!c.contains("flow")) return nullptr;
  flow::BudgetOverrides o;
  if (c.contains("pages")) o.pages = c["pages"].get<int64_t>();
  if (c.contains("ratio")) o.ratio = c["ratio"].get<double>();
  o.sink = c["sink"].get<int64_t>();
  o.recent = c["recent"].get<int64_t>();
  o.dense_layers = c["dense_layers"].get<std::vector<int64_t>>();
  return std::make_shared<const SparseAttentionConfig>(
      load_sparse_attention(source(c["flow"].get<std::string>()), o, m.config, page_size, false));
}

TEST(PerplexityReference, CpuEqualsTheIndependentImplementation) {
  const Json ref = read_json_file(source("tests/data/perplexity/reference.json"));
  const LoadedModel m = load_model(source(ref["model"].get<std::string>()), {});
  const auto L = ref["context"].get<int32_t>(), S = ref["score_tokens"].get<int32_t>();
  const auto P = ref["page_size"].get<int32_t>();
  std::vector<std::string> files;
  for (const Json& f : ref["text"]) files.push_back(source(f.get<std::string>()));
  const auto docs =
      perplexity_documents(files, m.require_tokenizer(), L, ref["documents"].get<int32_t>());
  ASSERT_EQ(Json(docs), ref["document_ids"]) << "the documents' tokens differ";
  std::printf("reference: %s, tokens by %s\n", ref["implementation"].get<std::string>().c_str(),
              ref["tokenizer"].get<std::string>().c_str());
  for (const Json& c : ref["configs"]) {
    const std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(name);
    EngineOptions eo;
    eo.page_size = P;
    eo.sparse = flow_of(c, m, P);
    Engine engine(m, eo);
    const TokenNll got = token_nll(run_eval_requests(engine, perplexity_requests(docs, S)));
    const auto want = c["nll"].get<std::vector<std::vector<double>>>();
    ASSERT_EQ(got.per_document.size(), want.size());
    double worst = 0, sum_got = 0, sum_want = 0;
    for (size_t d = 0; d < want.size(); ++d) {
      ASSERT_EQ(got.per_document[d].size(), want[d].size());
      for (size_t t = 0; t < want[d].size(); ++t) {
        // float32 on both sides, summed in different orders: agreement to about 1e-5 per token.
        EXPECT_NEAR(got.per_document[d][t], want[d][t], 1e-3) << "document " << d << " token " << t;
        worst = std::max(worst, std::abs(got.per_document[d][t] - want[d][t]));
        sum_got += got.per_document[d][t];
        sum_want += want[d][t];
      }
    }
    const double n = static_cast<double>(got.tokens());
    std::printf("  %-10s mean NLL %.6f (reference %.6f), largest token difference %.2e\n",
                name.c_str(), sum_got / n, sum_want / n, worst);
    EXPECT_NEAR(sum_got / n, sum_want / n, 1e-4);
  }
  // The flows read fewer pages, so their NLL must differ from full attention's somewhere:
  // otherwise the reference would not test sparse decode at all.
  for (const Json& c : ref["configs"]) {
    if (!c.contains("flow")) continue;
    double diff = 0;
    const auto flow = c["nll"].get<std::vector<std::vector<double>>>();
    const auto full = ref["configs"][0]["nll"].get<std::vector<std::vector<double>>>();
    for (size_t d = 0; d < flow.size(); ++d)
      for (size_t t = 0; t < flow[d].size(); ++t)
        diff = std::max(diff, std::abs(flow[d][t] - full[d][t]));
    EXPECT_GT(diff, 1e-4) << c["name"].get<std::string>() << " equals full attention";
  }
}

}  // namespace
}  // namespace vortex::eval
