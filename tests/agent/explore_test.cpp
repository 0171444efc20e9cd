// `vortex explore` (agent/explore.h): the candidate generator is deterministic for a seed, never
// repeats a source, writes budgets and template mutations that compile (and mean what their tag
// says), drops what does not compile for the model; a small search on the tiny checkpoint
// submits, stores, skips what the store has and reports a frontier.
#include "agent/explore.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/results_store.h"
#include "flow/compiler.h"
#include "model/model_config.h"

namespace vortex::agent {
namespace {

namespace fs = std::filesystem;

std::string source_path(const std::string& rel) {
  return std::string(VORTEX_SOURCE_DIR) + "/" + rel;
}

const char* const kPageScoring[] = {"block_topk", "gqa_softmax_max", "h2o",
                                    "quest",      "subpage_quest",   "value_gated"};

std::vector<BaseFlow> shipped_bases() {
  std::vector<BaseFlow> out;
  for (const char* name : kPageScoring)
    out.push_back(read_base_flow(source_path(str_cat("flows/", name, ".py"))));
  return out;
}

// The needle model's geometry: G = num_heads / num_kv_heads, D = head_dim, P = 16.
CompileTarget needle_target() {
  const ModelConfig c = load_model_config(source_path("models/needle"));
  return {{c.num_heads / c.num_kv_heads, c.head_dim, 16}, c.num_layers};
}

flow::CompileResult compile_for(const Candidate& c, const CompileTarget& t) {
  flow::CompileOptions co;
  co.dump_ir = false;
  co.num_layers = t.num_layers;
  return flow::compile_flow(c.source, c.name + ".py", &t.geometry, co);
}

std::vector<std::string> tag_parts(const std::string& tag) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= tag.size() && !tag.empty()) {
    size_t end = tag.find('_', start);
    if (end == std::string::npos) end = tag.size();
    parts.push_back(tag.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

TEST(Explore, OnlyPageScoringFlowsAreBases) {
  for (const BaseFlow& b : shipped_bases()) EXPECT_TRUE(is_page_scoring_flow(b)) << b.name;
  EXPECT_FALSE(is_page_scoring_flow(read_base_flow(source_path("flows/streaming.py"))))
      << "streaming takes no page by score (pages=0) and has no Field";
}

TEST(Explore, ABaseThatDoesNotCompileIsAnErrorNamingIt) {
  const fs::path p = fs::temp_directory_path() / (std::to_string(getpid()) + "_broken.py");
  std::ofstream(p) << "\"\"\"Broken.\"\"\"\nfrom vortex.flow import Flow\nclass X(Flow):\n"
                      "    def score(self, q):\n        return q.nope()\n";
  try {
    read_base_flow(p.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
  }
  fs::remove(p);
}

TEST(Explore, TheGeneratorIsDeterministicForASeed) {
  const std::vector<BaseFlow> bases = shipped_bases();
  const std::vector<Candidate> a = generate_candidates(bases, 7, 300);
  const std::vector<Candidate> b = generate_candidates(bases, 7, 300);
  const std::vector<Candidate> other = generate_candidates(bases, 8, 300);
  ASSERT_EQ(a.size(), 300u);
  ASSERT_EQ(b.size(), a.size());
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name) << i;
    EXPECT_EQ(a[i].source, b[i].source) << i;
    differs = differs || a[i].name != other[i].name;
  }
  EXPECT_TRUE(differs) << "another seed gives another order";
  // The unmodified bases come first, in the order given, then one mutation at a time.
  for (size_t i = 0; i < bases.size(); ++i) {
    EXPECT_TRUE(a[i].is_base());
    EXPECT_EQ(a[i].name, bases[i].name);
    EXPECT_EQ(a[i].source, bases[i].source);
  }
  for (size_t i = 1; i < a.size(); ++i) EXPECT_LE(a[i - 1].mutations, a[i].mutations) << i;
  EXPECT_EQ(a[bases.size()].mutations, 1);
  // The bases take turns within a level.
  std::set<std::string> first_round;
  for (size_t i = bases.size(); i < 2 * bases.size(); ++i) first_round.insert(a[i].base);
  EXPECT_EQ(first_round.size(), bases.size());
}

TEST(Explore, NoSourceIsProducedTwiceAndNamesAreUnique) {
  std::vector<BaseFlow> bases = shipped_bases();
  CandidateGenerator gen(bases, 1);
  std::set<std::string> sources, names;
  size_t n = 0;
  while (std::optional<Candidate> c = gen.next()) {
    ++n;
    EXPECT_TRUE(sources.insert(c->source).second) << c->name;
    EXPECT_TRUE(names.insert(c->name).second) << c->name;
    if (!c->is_base()) {
      EXPECT_EQ(c->name, c->base + "__" + c->tag);
      // The first line says what was mutated from which flow.
      const std::string first = c->source.substr(0, c->source.find('\n'));
      EXPECT_EQ(first.rfind("# vortex explore: " + c->base_path + " with ", 0), 0u) << first;
      EXPECT_NE(first.find(c->description), std::string::npos) << first;
    }
  }
  EXPECT_EQ(n, gen.total()) << "every combination of the shipped flows is a distinct source";
  EXPECT_GT(n, 1000u);
}

TEST(Explore, EveryBudgetLineCompilesAndSaysWhatItsTagSays) {
  const CompileTarget needle = needle_target();
  EXPECT_EQ(needle.geometry.G, 2);
  EXPECT_EQ(needle.geometry.D, 64);
  const std::vector<BaseFlow> bases = {read_base_flow(source_path("flows/quest.py"))};
  std::set<std::string> seen_parts;
  size_t n = 0;
  CandidateGenerator gen(bases, 3);
  while (std::optional<Candidate> c = gen.next()) {
    ++n;
    const flow::CompileResult r = compile_for(*c, needle);
    ASSERT_TRUE(r.ok()) << c->name << "\n"
                        << flow::format_compile_errors(r, c->source, c->name + ".py") << "\n"
                        << c->source;
    const flow::BudgetPolicy& b = r.program->budget;
    // What is not in the tag is the base's: ratio 1/16, sink 1, recent 2, dense [0], bf16.
    double ratio = 1.0 / 16;
    int64_t sink = 1, recent = 2;
    std::vector<int64_t> dense = {0};
    bool int8 = false, mean_over_heads = false;
    for (const std::string& part : tag_parts(c->tag)) {
      seen_parts.insert(part);
      if (part == "i8") {
        int8 = true;
      } else if (part == "hmean") {
        mean_over_heads = true;
      } else if (part == "dn") {
        dense = {};
      } else if (part == "d0") {
        dense = {0};
      } else if (part == "d01") {
        dense = {0, 1};
      } else if (part[0] == 'r') {
        ratio = 1.0 / std::stoi(part.substr(1));
      } else if (part[0] == 's') {
        sink = std::stoi(part.substr(1));
      } else if (part[0] == 'w') {
        recent = std::stoi(part.substr(1));
      } else {
        ADD_FAILURE() << "unknown tag part " << part << " in " << c->name;
      }
    }
    ASSERT_TRUE(b.ratio.has_value()) << c->name;
    EXPECT_DOUBLE_EQ(*b.ratio, ratio) << c->name;
    EXPECT_EQ(b.sink, sink) << c->name;
    EXPECT_EQ(b.recent, recent) << c->name;
    EXPECT_EQ(b.dense_layers, dense) << c->name;
    for (const flow::FieldDecl& f : r.program->fields)
      EXPECT_EQ(f.dtype, int8 ? flow::FieldDtype::kInt8 : flow::FieldDtype::kBf16) << c->name;
    EXPECT_EQ(c->source.find(".mean(axis=-1)") != std::string::npos, mean_over_heads) << c->name;
  }
  // quest: 4 ratios x 3 sinks x 3 recents x 3 dense sets x 2 dtypes x 2 head reductions.
  EXPECT_EQ(n, 4u * 3 * 3 * 3 * 2 * 2);
  for (const char* part : {"r4", "r8", "r32", "s0", "s2", "w1", "w4", "dn", "d01", "i8", "hmean"})
    EXPECT_TRUE(seen_parts.count(part)) << part;
  EXPECT_FALSE(seen_parts.count("r16")) << "the base's own value is not a mutation";
}

TEST(Explore, TemplateMutationsOfEveryShippedFlowCompile) {
  const CompileTarget needle = needle_target();
  std::map<std::string, std::set<std::string>> tags;  // base -> single-mutation tags
  for (const Candidate& c : generate_candidates(shipped_bases(), 1, 100000)) {
    if (c.mutations != 1) continue;
    tags[c.base].insert(c.tag);
    const flow::CompileResult r = compile_for(c, needle);
    EXPECT_TRUE(r.ok()) << c.name << "\n"
                        << flow::format_compile_errors(r, c.source, c.name + ".py");
    if (c.tag == "i8" && r.ok()) {
      for (const flow::FieldDecl& f : r.program->fields) {
        if (f.kind != flow::FieldKind::kField) continue;
        // value_gated's scalar vnorm stays bf16 (int8 would add a 4-byte scale to 1 value).
        EXPECT_EQ(f.dtype, f.dims.empty() ? flow::FieldDtype::kBf16 : flow::FieldDtype::kInt8)
            << c.name << " " << f.name;
      }
    }
  }
  const std::map<std::string, std::vector<std::string>> expected = {
      {"block_topk", {"bf16", "hmax"}},
      {"gqa_softmax_max", {"i8", "hmean"}},
      {"h2o", {"i8", "hmean", "dk0p5", "dk0p99"}},
      {"quest", {"i8", "hmean"}},
      {"subpage_quest", {"i8", "hmean", "g2", "g8"}},
      {"value_gated", {"i8", "hmax"}},
  };
  for (const auto& [base, want] : expected) {
    for (const std::string& t : want) EXPECT_TRUE(tags[base].count(t)) << base << ": " << t;
    for (const char* t : {"r4", "r8", "r32", "s0", "s2", "w1", "w4", "dn", "d01"})
      EXPECT_TRUE(tags[base].count(t)) << base << ": " << t;
  }
}

BaseFlow temp_base(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / (std::to_string(getpid()) + "_" + name + ".py");
  std::ofstream(p) << text;
  BaseFlow b = read_base_flow(p.string());
  fs::remove(p);
  return b;
}

TEST(Explore, ABudgetIsInsertedWhereTheFlowHasNoneAndOtherKeywordsAreKept) {
  const CompileTarget needle = needle_target();
  const BaseFlow none = temp_base("nobudget", R"("""A centroid flow without a budget (test)."""
from vortex.flow import Flow, Field, D


class C(Flow):
    c = Field(1, D)

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        return (q * self.c).sum(axis=-1).max(axis=-1)
)");
  const BaseFlow multi = temp_base("multiline", R"("""A budget over two lines (test)."""
from vortex.flow import Flow, Field, Budget, D


class C(Flow):
    c = Field(1, D)
    budget = Budget(ratio=0.1,
                    floor=2, cap=40)  # kept

    def summarize(self, k, v):
        self.c = k.mean(axis=0, keepdims=True)

    def score(self, q):
        return (q * self.c).sum(axis=-1).max(axis=-1)
)");
  size_t n = 0;
  for (const Candidate& c : generate_candidates({none, multi}, 1, 200)) {
    if (c.is_base()) continue;
    ++n;
    const flow::CompileResult r = compile_for(c, needle);
    ASSERT_TRUE(r.ok()) << c.name << "\n"
                        << flow::format_compile_errors(r, c.source, c.name + ".py") << "\n"
                        << c.source;
    const flow::BudgetPolicy& b = r.program->budget;
    if (c.base == "multiline") {
      EXPECT_EQ(b.floor, 2) << c.source;
      EXPECT_EQ(b.cap, std::optional<int64_t>(40)) << c.source;
      EXPECT_NE(c.source.find(")  # kept"), std::string::npos) << c.source;
      if (c.tag.find('r') == std::string::npos) {
        ASSERT_TRUE(b.ratio.has_value());
        EXPECT_DOUBLE_EQ(*b.ratio, 0.1) << "the base's ratio is kept";
      }
    }
  }
  EXPECT_EQ(n, 200u - 2);
}

TEST(Explore, MutationsThatDoNotCompileForTheModelAreDropped) {
  // Pages of 4 tokens: subpage_quest's GROUP = 8 gives Field(P // 8, D) = Field(0, D).
  const std::vector<BaseFlow> bases = {read_base_flow(source_path("flows/subpage_quest.py"))};
  CandidateGenerator gen(bases, 1, {CompileTarget{{2, 64, 4}, 6}});
  size_t n = 0;
  while (std::optional<Candidate> c = gen.next()) {
    ++n;
    EXPECT_EQ(c->source.find("GROUP = 8"), std::string::npos) << c->name;
  }
  EXPECT_GT(gen.dropped_uncompilable(), 0u);
  EXPECT_EQ(n + gen.dropped_uncompilable(), gen.total());
}

TEST(Explore, SameEvaluationIgnoresOnlyTheBudget) {
  const Json a = {{"context", 512}, {"samples", 2}, {"budget", {{"ratio", 0.25}}}};
  Json b = a;
  b["budget"]["ratio"] = 0.125;
  EXPECT_TRUE(same_evaluation(a, b));
  b.erase("budget");
  EXPECT_TRUE(same_evaluation(a, b)) << "a verdict that stopped at verify has no budget";
  b["samples"] = 3;
  EXPECT_FALSE(same_evaluation(a, b));
}

TEST(Explore, QuickOptionsShortenTheContext) {
  SubmitOptions o;
  const SubmitOptions q = explore_quick_options(o);
  EXPECT_EQ(q.context, kExploreQuickContext);
  EXPECT_LE(q.samples, 5);
  EXPECT_LE(q.recall_samples, 2);
  o.context = 512;
  EXPECT_EQ(explore_quick_options(o).context, 512);
}

Submission fake(int64_t id, const std::string& name, double accuracy, double speedup,
                int context = 512) {
  Submission s;
  s.id = id;
  s.name = name;
  s.source = "source of " + name;
  s.parameters = {{"context", context}, {"budget", {{"ratio", 0.1 * static_cast<double>(id)}}}};
  s.accepted = true;
  s.accuracy = accuracy;
  s.full_accuracy = 0.95;
  s.speedup = speedup;
  s.speedup_estimated = true;
  return s;
}

TEST(Explore, ACandidateBeatsAShippedFlowOnlyByAccuracyOrAClearSpeedGain) {
  ExploreResult r;
  r.parameters = {{"context", 512}};
  r.submitted_ids = {2, 3, 4};
  const std::vector<Submission> stored = {
      fake(1, "quest", 0.90, 3.00),
      fake(2, "quest__w4", 0.90, 3.00 * (1 + kMinSpeedupGain / 2)),  // a hair faster: no win
      fake(3, "quest__s0", 0.91, 3.00),                              // more accurate: a win
      fake(4, "quest__r4", 0.95, 2.00),                              // trades speed for accuracy
      fake(5, "quest__r32", 0.99, 9.00, /*context=*/4096),           // judged otherwise
      fake(6, "block_topk", 0.80, 1.50),                             // shipped, dominated
  };
  rank_explored(r, stored, {"source of quest", "source of block_topk"});
  ASSERT_EQ(r.comparable.size(), 5u) << "the submission judged at another context is left out";
  EXPECT_EQ(r.from_this_run, (std::vector<bool>{false, true, true, true, false}));
  EXPECT_EQ(r.shipped, (std::vector<bool>{true, false, false, false, true}));
  // The frontier, fastest first: quest__w4, quest__s0, quest__r4 (quest and block_topk are
  // dominated).
  std::vector<std::string> frontier;
  for (size_t i : r.frontier) frontier.push_back(r.comparable[i].name);
  EXPECT_EQ(frontier, (std::vector<std::string>{"quest__w4", "quest__s0", "quest__r4"}));
  ASSERT_EQ(r.shipped_frontier.size(), 1u);
  EXPECT_EQ(r.comparable[r.shipped_frontier[0]].name, "quest");
  ASSERT_EQ(r.beats.size(), 1u);
  EXPECT_EQ(r.comparable[r.beats[0].first].name, "quest__s0");
  EXPECT_EQ(r.comparable[r.beats[0].second].name, "quest");
  const std::string text = explore_report_text(r);
  EXPECT_NE(text.find("Beat the shipped flows"), std::string::npos) << text;
  EXPECT_NE(text.find("quest__s0 (#3: 0.910 at ~3.00x) [new] over quest (#1: 0.900 at ~3.00x)"),
            std::string::npos)
      << text;
  EXPECT_EQ(explore_report_json(r)["beats_shipped"], true);

  // Without the more accurate one, nothing beats quest.
  std::vector<Submission> without = stored;
  without.erase(without.begin() + 2);
  rank_explored(r, without, {"source of quest", "source of block_topk"});
  EXPECT_TRUE(r.beats.empty());
  EXPECT_NE(explore_report_text(r).find("Nothing beat the shipped flows"), std::string::npos);
}

// A small search on the tiny checkpoint (random weights: accuracy 0 with any attention, so
// every candidate that compiles is accepted and has a speed-up).
TEST(Explore, ASmallSearchStoresItsVerdictsAndReportsAFrontier) {
  const fs::path dir = fs::temp_directory_path() / (std::to_string(getpid()) + "_explore");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string db = (dir / "results.db").string();
  ExploreOptions eo;
  eo.submit.model = source_path("tests/data/models/tiny-qwen3");
  eo.submit.tasks = {"niah_single"};
  eo.submit.context = 512;
  eo.submit.samples = 2;
  eo.submit.page_size = 4;
  eo.submit.min_recall = 0;
  eo.submit.recall_samples = 1;
  eo.submit.recall_tokens = 4;
  eo.flows = {source_path("flows/quest.py")};
  eo.shipped_flows = {source_path("flows/quest.py"), source_path("flows/streaming.py")};
  eo.out_dir = (dir / "flows").string();
  eo.seed = 5;
  eo.max_submissions = 3;

  std::vector<std::string> started;
  ExploreCallbacks cb;
  cb.started = [&](int index, int total, const Candidate& c) {
    EXPECT_EQ(index, static_cast<int>(started.size()) + 1);
    EXPECT_EQ(total, 3);
    started.push_back(c.name);
  };
  ExploreResult r;
  {
    ResultsStore store(db);
    r = run_explore(eo, store, cb);
    EXPECT_EQ(store.all().size(), 3u);
  }
  ASSERT_EQ(r.submitted_ids.size(), 3u);
  ASSERT_EQ(started.size(), 3u);
  EXPECT_EQ(started[0], "quest") << "the unmodified base goes first";
  EXPECT_TRUE(r.skipped_ids.empty());
  EXPECT_FALSE(r.exhausted);
  // The mutations were written to the output directory under their names.
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_TRUE(fs::is_regular_file(dir / "flows" / (started[i] + ".py"))) << started[i];
    EXPECT_EQ(r.submitted[i].name, started[i]);
  }
  ASSERT_EQ(r.comparable.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(r.from_this_run[i]);
    EXPECT_EQ(r.comparable[i].name, started[i]);
    EXPECT_EQ(r.shipped[i], i == 0) << "only the unmodified quest is a shipped flow";
    Json p = r.comparable[i].parameters;
    p.erase("budget");
    EXPECT_EQ(p, r.parameters) << "the probe's parameters are the pipeline's";
  }
  EXPECT_EQ(r.parameters["context"], 512);
  ASSERT_FALSE(r.frontier.empty());
  for (size_t i : r.frontier) EXPECT_TRUE(r.comparable[i].accepted) << r.comparable[i].name;
  ASSERT_EQ(r.shipped_frontier.size(), 1u);
  EXPECT_EQ(r.comparable[r.shipped_frontier[0]].name, "quest");
  const std::string text = explore_report_text(r);
  EXPECT_NE(text.find("Pareto frontier"), std::string::npos) << text;
  EXPECT_NE(text.find(r.beats.empty() ? "Nothing beat the shipped flows" : "Beat the shipped"),
            std::string::npos)
      << text;
  const Json j = explore_report_json(r);
  EXPECT_EQ(j["submitted"].size(), 3u);
  EXPECT_EQ(j["frontier"].size(), r.frontier.size());
  EXPECT_EQ(j["beats_shipped"].get<bool>(), !r.beats.empty());

  // Again with the same seed: the three are in the store with these parameters, so they are
  // skipped (not counted) and the next candidate is submitted.
  eo.max_submissions = 1;
  std::vector<std::string> skipped;
  cb.started = nullptr;
  cb.skipped = [&](const Candidate& c, const Submission& earlier) {
    skipped.push_back(c.name);
    EXPECT_EQ(earlier.name, c.name);
  };
  ResultsStore store(db);
  const ExploreResult again = run_explore(eo, store, cb);
  EXPECT_EQ(skipped, started);
  ASSERT_EQ(again.submitted_ids.size(), 1u);
  EXPECT_EQ(store.all().size(), 4u);
  EXPECT_EQ(again.comparable.size(), 4u);
  EXPECT_FALSE(again.from_this_run[0]);
  EXPECT_TRUE(again.from_this_run[3]);
  fs::remove_all(dir);
}

TEST(Explore, BadOptionsAreUsageErrorsNamingTheFlag) {
  const fs::path db = fs::temp_directory_path() / (std::to_string(getpid()) + "_bad.db");
  ResultsStore store(db.string());
  ExploreOptions eo;
  eo.flows = {source_path("flows/quest.py")};
  eo.max_submissions = 0;
  try {
    run_explore(eo, store);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find("--max-submissions"), std::string::npos);
  }
  eo.max_submissions = 1;
  eo.flows = {source_path("flows/streaming.py")};
  try {
    run_explore(eo, store);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find("streaming.py"), std::string::npos) << e.what();
  }
  fs::remove(db);
}

}  // namespace
}  // namespace vortex::agent
