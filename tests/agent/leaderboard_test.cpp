#include "agent/leaderboard.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "agent/results_store.h"
#include "support/run_vortex.h"

namespace fs = std::filesystem;
using vortex::Json;
using vortex::agent::CostAxis;
using vortex::agent::kNotMeasured;
using vortex::agent::leaderboard_json;
using vortex::agent::leaderboard_svg;
using vortex::agent::leaderboard_text;
using vortex::agent::pareto_front;
using vortex::agent::ResultsStore;
using vortex::agent::Submission;

namespace {

Submission sub(int64_t id, const std::string& name, double accuracy, double speedup,
               double kv_read = kNotMeasured, bool accepted = true) {
  Submission s;
  s.id = id;
  s.name = name;
  s.created_at = "2026-12-07T15:04:05Z";
  s.accuracy = accuracy;
  s.full_accuracy = 0.9;
  s.speedup = speedup;
  s.kv_read_fraction = kv_read;
  s.accepted = accepted;
  if (!accepted) s.failed_stage = "accuracy";
  return s;
}

std::vector<int64_t> ids_of(const std::vector<Submission>& subs, const std::vector<size_t>& idx) {
  std::vector<int64_t> ids;
  for (size_t i : idx) ids.push_back(subs[i].id);
  return ids;
}

// Eight submissions of every kind: frontier points, dominated ones, a rejected one, estimated
// speed-ups, figures missing.
std::vector<Submission> eight() {
  std::vector<Submission> subs = {
      sub(1, "block_topk", 0.905, 2.10, 0.125),
      sub(2, "quest", 0.915, 1.55, 0.25),
      sub(3, "sink_recent", 0.62, 4.80, 0.0625, false),
      sub(4, "double_sparsity", 0.88, 2.90, 0.09),
      sub(5, "dominated", 0.85, 1.80, 0.3),
      sub(6, "estimated_one", 0.87, 3.40, 0.07),
      sub(7, "verify_failed", kNotMeasured, kNotMeasured, kNotMeasured, false),
      sub(8, "no_throughput_yet", 0.86, kNotMeasured, 0.15),
  };
  subs[5].speedup_estimated = true;
  subs[6].failed_stage = "verify";
  subs[0].recall = 0.97;
  subs[1].recall = 0.99;
  return subs;
}

// A small well-formedness check: tags nest and close, attributes are quoted, and every '&'
// starts an entity. Returns "" or what is wrong.
std::string xml_problem(const std::string& xml) {
  std::vector<std::string> open;
  size_t i = 0;
  while (i < xml.size()) {
    if (xml[i] == '&') {
      const size_t semi = xml.find(';', i);
      if (semi == std::string::npos) return "unterminated entity at " + std::to_string(i);
      const std::string entity = xml.substr(i, semi - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;" &&
          entity != "&apos;" && entity.rfind("&#", 0) != 0)
        return "unknown entity " + entity;
      i = semi + 1;
      continue;
    }
    if (xml[i] == '>') return "stray '>' at " + std::to_string(i);
    if (xml[i] != '<') {
      ++i;
      continue;
    }
    const size_t end = xml.find('>', i);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(i);
    std::string tag = xml.substr(i + 1, end - i - 1);
    if (tag.find('<') != std::string::npos) return "'<' inside a tag at " + std::to_string(i);
    size_t quotes = 0;
    for (char c : tag) quotes += c == '"';
    if (quotes % 2) return "unbalanced quotes in <" + tag + ">";
    i = end + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '?' || tag[0] == '!') continue;
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name) return "</" + name + "> closes nothing open";
      open.pop_back();
      continue;
    }
    if (tag.back() == '/') continue;
    open.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
  }
  if (!open.empty()) return "<" + open.back() + "> never closed";
  return "";
}

void expect_valid_svg(const std::string& svg) {
  EXPECT_EQ(svg.rfind("<svg ", 0), 0u) << svg.substr(0, 80);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

bool on_path(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

fs::path temp_dir(const std::string& tag) {
  const fs::path dir =
      fs::temp_directory_path() / ("vortex_leaderboard_" + std::to_string(getpid()) + "_" + tag);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// ---- Pareto frontier ----------------------------------------------------------------------

TEST(ParetoFront, DropsDominatedPointsAndSortsByBestSpeedupFirst) {
  const std::vector<Submission> subs = {
      sub(1, "a", 0.90, 2.0), sub(2, "b", 0.80, 3.0), sub(3, "c", 0.85, 1.5),  // c < a on both
      sub(4, "d", 0.95, 1.2), sub(5, "e", 0.80, 2.5),                          // e < b on speed
  };
  EXPECT_EQ(ids_of(subs, pareto_front(subs, CostAxis::kSpeedup)), (std::vector<int64_t>{2, 1, 4}));
}

TEST(ParetoFront, EqualOnOneFigureAndWorseOnTheOtherIsDominated) {
  const std::vector<Submission> subs = {sub(1, "a", 0.9, 2.0), sub(2, "b", 0.9, 1.9),
                                        sub(3, "c", 0.8, 2.0)};
  EXPECT_EQ(ids_of(subs, pareto_front(subs, CostAxis::kSpeedup)), (std::vector<int64_t>{1}));
}

TEST(ParetoFront, IdenticalPointsAreAllKept) {
  const std::vector<Submission> subs = {sub(1, "a", 0.9, 2.0), sub(2, "b", 0.9, 2.0),
                                        sub(3, "c", 0.7, 1.0)};
  EXPECT_EQ(ids_of(subs, pareto_front(subs, CostAxis::kSpeedup)), (std::vector<int64_t>{1, 2}));
}

TEST(ParetoFront, SubmissionsMissingAFigureAreLeftOut) {
  const std::vector<Submission> subs = {
      sub(1, "no accuracy", kNotMeasured, 9.0, 0.01),
      sub(2, "no speed-up", 0.99, kNotMeasured, 0.5),
      sub(3, "both", 0.5, 1.0, kNotMeasured),
  };
  // Without them, a weak point is the whole speed-up frontier; the KV one has only #2.
  EXPECT_EQ(ids_of(subs, pareto_front(subs, CostAxis::kSpeedup)), (std::vector<int64_t>{3}));
  EXPECT_EQ(ids_of(subs, pareto_front(subs, CostAxis::kKvRead)), (std::vector<int64_t>{2}));
  EXPECT_TRUE(pareto_front({}, CostAxis::kSpeedup).empty());
  EXPECT_TRUE(
      pareto_front({sub(1, "none", kNotMeasured, kNotMeasured)}, CostAxis::kKvRead).empty());
}

TEST(ParetoFront, KvReadIsBetterLowerAndSortsLowestFirst) {
  const std::vector<Submission> subs = {
      sub(1, "reads little", 0.80, 1.0, 0.05),
      sub(2, "reads more", 0.90, 1.0, 0.20),
      sub(3, "reads most, no better", 0.90, 1.0, 0.40),  // dominated by #2
      sub(4, "middle", 0.85, 1.0, 0.10),
  };
  EXPECT_EQ(ids_of(subs, pareto_front(subs, CostAxis::kKvRead)), (std::vector<int64_t>{1, 4, 2}));
  // On speed-up they all tie at 1.0x: only the most accurate (two identical points) remain.
  EXPECT_EQ(ids_of(subs, pareto_front(subs, CostAxis::kSpeedup)), (std::vector<int64_t>{2, 3}));
}

TEST(ParetoFront, TheTwoAxesGiveDifferentFrontiers) {
  const std::vector<Submission> subs = eight();
  EXPECT_EQ(ids_of(subs, pareto_front(subs, CostAxis::kSpeedup)),
            (std::vector<int64_t>{3, 6, 4, 1, 2}));
  // #8 (no speed-up yet) competes on KV read: 0.86 at 15% loses to #1 (0.905 at 12.5%).
  EXPECT_EQ(ids_of(subs, pareto_front(subs, CostAxis::kKvRead)),
            (std::vector<int64_t>{3, 6, 4, 1, 2}));
  std::vector<Submission> changed = subs;
  changed[7].kv_read_fraction = 0.08;  // #8 now reads less than #4, and beats #6 on accuracy
  changed[7].accuracy = 0.875;
  EXPECT_EQ(ids_of(changed, pareto_front(changed, CostAxis::kKvRead)),
            (std::vector<int64_t>{3, 6, 8, 4, 1, 2}));
  changed[7].accuracy = 0.89;  // and now it dominates #4 there
  EXPECT_EQ(ids_of(changed, pareto_front(changed, CostAxis::kKvRead)),
            (std::vector<int64_t>{3, 6, 8, 1, 2}));
  // Without a speed-up, #8 changes nothing on the other axis.
  EXPECT_EQ(ids_of(changed, pareto_front(changed, CostAxis::kSpeedup)),
            (std::vector<int64_t>{3, 6, 4, 1, 2}));
}

// ---- text and JSON ------------------------------------------------------------------------

TEST(LeaderboardText, ListsEveryVerdictFigureAndBothFrontiers) {
  const std::string text = leaderboard_text(eight());
  for (const char* want :
       {"block_topk", "accepted", "failed at accuracy", "failed at verify", "0.905", "+0.005",
        "-0.280", "~3.40x", "2.10x", "12.5%", "6.2%", "2026-12-07T15:04:05Z", "0.970",
        "Pareto frontier (accuracy vs speed-up): #3 sink_recent (0.620, 4.80x), #6",
        "Pareto frontier (accuracy vs KV read): #3 sink_recent (0.620, 6.2%)",
        "~ speed-up estimated"})
    EXPECT_NE(text.find(want), std::string::npos) << want << " in\n" << text;
  // Frontier rows carry '*'; a dominated one does not.
  std::istringstream lines(text);
  std::string line;
  int marked = 0;
  while (std::getline(lines, line)) {
    if (line.find("dominated") != std::string::npos) {
      EXPECT_EQ(line.rfind("  ", 0), 0u) << line;
    }
    if (line.find(" block_topk ") != std::string::npos && line.rfind("* ", 0) == 0) ++marked;
  }
  EXPECT_EQ(marked, 1);
}

TEST(LeaderboardText, SaysSoWhenThereIsNothingToRank) {
  EXPECT_EQ(leaderboard_text({}), "no submissions yet\n");
  const std::string text = leaderboard_text({sub(1, "only", kNotMeasured, kNotMeasured)});
  EXPECT_NE(text.find("Pareto frontier (accuracy vs speed-up): none"), std::string::npos) << text;
  EXPECT_EQ(text.find("* "), std::string::npos) << text;
}

TEST(LeaderboardText, ControlCharactersInNamesAreEscaped) {
  const std::string text = leaderboard_text({sub(1, "evil\nname\x1b[31m", 0.5, 1.0)});
  EXPECT_NE(text.find("evil\\nname\\x1b[31m"), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
}

TEST(LeaderboardJson, CarriesFrontierFlagsAndIdsButNoSource) {
  std::vector<Submission> subs = eight();
  subs[0].source = "class Secret(Flow): ...";
  const Json j = leaderboard_json(subs);
  ASSERT_EQ(j.at("submissions").size(), 8u);
  EXPECT_EQ(j.at("frontier_speedup"), Json::array({3, 6, 4, 1, 2}));
  EXPECT_EQ(j.at("frontier_kv_read"), Json::array({3, 6, 4, 1, 2}));
  const Json& first = j.at("submissions").at(0);
  EXPECT_FALSE(first.contains("source"));
  EXPECT_EQ(first.at("name"), "block_topk");
  EXPECT_EQ(first.at("on_frontier_speedup"), true);
  EXPECT_EQ(first.at("on_frontier_kv_read"), true);
  EXPECT_EQ(j.at("submissions").at(4).at("on_frontier_speedup"), false);
  EXPECT_TRUE(j.at("submissions").at(6).at("accuracy").is_null());
  EXPECT_TRUE(leaderboard_json({}).at("frontier_speedup").empty());
}

// ---- SVG ----------------------------------------------------------------------------------

TEST(LeaderboardSvg, IsWellFormedAndEscapesNames) {
  std::vector<Submission> subs = eight();
  subs[0].name = "a<b&\"c";
  for (CostAxis axis : {CostAxis::kSpeedup, CostAxis::kKvRead}) {
    const std::string svg = leaderboard_svg(subs, axis);
    expect_valid_svg(svg);
    EXPECT_NE(svg.find("a&lt;b&amp;&quot;c (#1)"), std::string::npos);
    EXPECT_EQ(svg.find("a<b"), std::string::npos);
    EXPECT_NE(svg.find("full attention 0.900"), std::string::npos);  // the reference line
    EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
    // #7 has no figures; #8 has a KV read but no speed-up.
    const char* note = axis == CostAxis::kSpeedup
                           ? "2 submissions without both accuracy and speed-up"
                           : "1 submission without both accuracy and KV read";
    EXPECT_NE(svg.find(note), std::string::npos) << note;
  }
  EXPECT_NE(leaderboard_svg(subs, CostAxis::kSpeedup).find("<polygon"), std::string::npos)
      << "the estimated speed-up is a diamond";
  EXPECT_NE(leaderboard_svg(subs, CostAxis::kKvRead).find("lower is better"), std::string::npos);
}

TEST(LeaderboardSvg, HandlesNoneOneAndUnplottableSubmissions) {
  for (CostAxis axis : {CostAxis::kSpeedup, CostAxis::kKvRead}) {
    const std::string none = leaderboard_svg({}, axis);
    expect_valid_svg(none);
    EXPECT_NE(none.find("no submissions yet"), std::string::npos);

    const std::string one = leaderboard_svg({sub(1, "solo", 0.9, 2.0, 0.1)}, axis);
    expect_valid_svg(one);
    EXPECT_NE(one.find("solo (#1)"), std::string::npos);

    const std::string missing = leaderboard_svg(
        {sub(1, "x", kNotMeasured, kNotMeasured), sub(2, "y", 0.5, kNotMeasured)}, axis);
    expect_valid_svg(missing);
    EXPECT_NE(missing.find("2 submissions without both"), std::string::npos);
    EXPECT_NE(missing.find("no submission has both figures yet"), std::string::npos);
  }
}

TEST(LeaderboardSvg, HostileNamesStayValidXml) {
  std::vector<Submission> subs = eight();
  subs[0].name = "ctrl\x01\x02\n\tname \xff\xfe bad utf8 \xc0\xaf ]]> <!-- -->";
  subs[1].name = std::string(300, 'w');
  const std::string svg = leaderboard_svg(subs, CostAxis::kSpeedup);
  expect_valid_svg(svg);
  for (char c : svg) {
    if (static_cast<unsigned char>(c) < 0x20) {
      EXPECT_EQ(c, '\n') << "control character " << int(c) << " in the SVG";
    }
  }
  EXPECT_EQ(svg.find("<!--"), std::string::npos);
  EXPECT_EQ(svg.find(std::string(300, 'w')), std::string::npos) << "long names are cut";
  // A real XML parser agrees, where one is installed.
  if (on_path("xmllint")) {
    const fs::path dir = temp_dir("xmllint");
    write(dir / "hostile.svg", svg);
    const std::string cmd =
        "xmllint --noout " + vortex::testing::shell_quote((dir / "hostile.svg").string());
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    fs::remove_all(dir);
  }
}

TEST(LeaderboardSvg, AbsurdFiguresStillGiveValidSvg) {
  // What a hand-edited store could hold: huge, negative and infinite figures.
  const std::vector<Submission> subs = {
      sub(1, "huge", 1e308, 1e308, 1e308), sub(2, "negative", -1e308, -5, -1),
      sub(3, "unbounded", 0.5, std::numeric_limits<double>::infinity(), 0.5),
      sub(4, "tiny spread", 0.5, 1.0 + 1e-15, 1e-300)};
  for (CostAxis axis : {CostAxis::kSpeedup, CostAxis::kKvRead}) {
    const std::string svg = leaderboard_svg(subs, axis);
    expect_valid_svg(svg);
    EXPECT_LT(svg.size(), 200000u);
  }
  EXPECT_FALSE(leaderboard_text(subs).empty());
}

TEST(LeaderboardSvg, RendersWithRsvgConvert) {
  if (!on_path("rsvg-convert")) GTEST_SKIP() << "rsvg-convert is not installed";
  const fs::path dir = temp_dir("render");
  std::vector<Submission> subs = eight();
  subs[4].name = "hostile \x01 a<b&\"c \xff";
  for (CostAxis axis : {CostAxis::kSpeedup, CostAxis::kKvRead}) {
    const std::string stem = axis == CostAxis::kSpeedup ? "speedup" : "kv";
    const fs::path svg = dir / (stem + ".svg"), png = dir / (stem + ".png");
    write(svg, leaderboard_svg(subs, axis));
    const std::string cmd = "rsvg-convert -o " + vortex::testing::shell_quote(png.string()) + " " +
                            vortex::testing::shell_quote(svg.string());
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    ASSERT_TRUE(fs::exists(png));
    EXPECT_GT(fs::file_size(png), 1000u);
  }
  fs::remove_all(dir);
}

// ---- `vortex leaderboard` -----------------------------------------------------------------

class LeaderboardCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(VORTEX_BINARY)) GTEST_SKIP() << "the vortex binary is not built";
    dir_ = temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string filled_db() {
    const std::string path = (dir_ / "results.db").string();
    ResultsStore store(path);
    for (Submission s : eight()) store.add(s);
    return path;
  }
  fs::path dir_;
};

TEST_F(LeaderboardCommand, PrintsTheTableAndWritesTheSvg) {
  const std::string db = filled_db();
  const std::string svg = (dir_ / "board.svg").string();
  const vortex::testing::CmdResult r =
      vortex::testing::run_vortex({"leaderboard", "--db", db, "--svg", svg, "--x", "kv-read"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("block_topk"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Pareto frontier (accuracy vs KV read)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote " + svg), std::string::npos) << r.out;
  std::ifstream in(svg);
  std::stringstream text;
  text << in.rdbuf();
  expect_valid_svg(text.str());
  EXPECT_NE(text.str().find("lower is better"), std::string::npos);
}

TEST_F(LeaderboardCommand, JsonIsOneObjectOnStdout) {
  const std::string db = filled_db();
  const vortex::testing::CmdResult r = vortex::testing::run_vortex(
      {"leaderboard", "--db", db, "--json", "--svg", (dir_ / "b.svg").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j.at("submissions").size(), 8u);
  EXPECT_EQ(j.at("frontier_speedup"), Json::array({3, 6, 4, 1, 2}));
  EXPECT_NE(r.err.find("wrote"), std::string::npos);
}

TEST_F(LeaderboardCommand, MissingDatabaseSaysSoAndCreatesNothing) {
  const std::string db = (dir_ / "nothing-here.db").string();
  const vortex::testing::CmdResult r = vortex::testing::run_vortex({"leaderboard", "--db", db});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no submissions yet: " + db + " does not exist; run vortex submit FLOW.py"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(db));
}

TEST_F(LeaderboardCommand, UnwritableSvgIsAnErrorNamingTheFile) {
  const std::string db = filled_db();
  const std::string svg = (dir_ / "no-such-dir" / "board.svg").string();
  const vortex::testing::CmdResult r =
      vortex::testing::run_vortex({"leaderboard", "--db", db, "--svg", svg});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(svg + ": cannot write the SVG"), std::string::npos) << r.err;
}

TEST_F(LeaderboardCommand, DatabaseFromTheEnvironmentAndBadAxis) {
  const std::string db = filled_db();
  setenv("VORTEX_RESULTS_DB", db.c_str(), 1);
  const vortex::testing::CmdResult r = vortex::testing::run_vortex({"leaderboard"});
  unsetenv("VORTEX_RESULTS_DB");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("quest"), std::string::npos) << r.out;
  const vortex::testing::CmdResult bad =
      vortex::testing::run_vortex({"leaderboard", "--db", db, "--x", "latency"});
  EXPECT_EQ(bad.code, 2);
}

TEST_F(LeaderboardCommand, HelpExplainsEveryFlag) {
  const vortex::testing::CmdResult r = vortex::testing::run_vortex({"leaderboard", "--help"});
  EXPECT_EQ(r.code, 0);
  for (const char* flag : {"--db", "--json", "--svg", "--x", "VORTEX_RESULTS_DB", "kv-read"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag << " in\n" << r.out;
}

}  // namespace
