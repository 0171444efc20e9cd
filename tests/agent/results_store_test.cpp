#include "agent/results_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "core/error.h"

namespace fs = std::filesystem;
using vortex::Json;
using vortex::agent::kNotMeasured;
using vortex::agent::ResultsStore;
using vortex::agent::StageResult;
using vortex::agent::StageStatus;
using vortex::agent::Submission;

namespace {

class ResultsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("vortex_results_store_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string db() const { return (dir_ / "results.db").string(); }

  fs::path dir_;
};

Submission make(const std::string& name, const std::string& source, double accuracy,
                double speedup) {
  Submission s;
  s.name = name;
  s.path = "flows/" + name + ".py";
  s.source = source;
  s.accuracy = accuracy;
  s.speedup = speedup;
  return s;
}

// A submission with every field set, including the awkward ones.
Submission full_submission() {
  Submission s;
  s.created_at = "2026-12-07T15:04:05Z";
  s.name = "bl\u00f6ck_topk \u6ce8\u610f \U0001F680";
  s.path = "flows/block topk's \"best\".py";
  s.source = std::string("class F(Flow):\n  s = \"it's\"  # quotes ' \" `\n\0after the NUL\n", 58);
  s.parameters = {{"model", "qwen3-0.6b"}, {"context", 8192}, {"budget", {{"ratio", 0.125}}}};
  StageResult verify{"verify", StageStatus::kPassed, 0.25, "", Json::object()};
  StageResult recall{"recall", StageStatus::kPassed, 12.5, "", {{"recall", 0.97}, {"layers", 28}}};
  StageResult accuracy{"accuracy",
                       StageStatus::kFailed,
                       300.0,
                       "accuracy 0.80 is under 0.85 (full attention 0.90 - 0.05)",
                       {{"accuracy", 0.8}, {"tasks", {{"niah", 0.75}, {"vt", 0.85}}}}};
  StageResult throughput{"throughput", StageStatus::kSkipped, 0, "an earlier stage failed",
                         Json::object()};
  s.stages = {verify, recall, accuracy, throughput};
  s.accepted = false;
  s.failed_stage = "accuracy";
  s.accuracy = 0.8;
  s.full_accuracy = 0.9;
  s.recall = 0.97;
  s.speedup = kNotMeasured;
  s.speedup_estimated = true;
  s.kv_read_fraction = 0.1234567890123;
  s.machine = "AMD EPYC 9654 (2 cores)";
  s.card = "";
  s.commit = "vortex 0.9.0 (abc1234)";
  return s;
}

// NaN == NaN for figures that were not measured.
void expect_same_figure(double a, double b, const char* what) {
  if (std::isnan(a))
    EXPECT_TRUE(std::isnan(b)) << what << ": expected NaN, got " << b;
  else
    EXPECT_EQ(a, b) << what;
}

void expect_same(const Submission& a, const Submission& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.source_hash, b.source_hash);
  EXPECT_EQ(a.parameters, b.parameters);
  ASSERT_EQ(a.stages.size(), b.stages.size());
  for (size_t i = 0; i < a.stages.size(); ++i)
    EXPECT_EQ(to_json(a.stages[i]), to_json(b.stages[i])) << "stage " << i;
  EXPECT_EQ(a.accepted, b.accepted);
  EXPECT_EQ(a.failed_stage, b.failed_stage);
  expect_same_figure(a.accuracy, b.accuracy, "accuracy");
  expect_same_figure(a.full_accuracy, b.full_accuracy, "full_accuracy");
  expect_same_figure(a.recall, b.recall, "recall");
  expect_same_figure(a.speedup, b.speedup, "speedup");
  EXPECT_EQ(a.speedup_estimated, b.speedup_estimated);
  expect_same_figure(a.kv_read_fraction, b.kv_read_fraction, "kv_read_fraction");
  EXPECT_EQ(a.machine, b.machine);
  EXPECT_EQ(a.card, b.card);
  EXPECT_EQ(a.commit, b.commit);
}

// Runs SQL on the file behind the store's back (a newer build, another tool).
void raw_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  const std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const vortex::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_F(ResultsStoreTest, EveryFieldRoundTripsIncludingNulsQuotesUnicodeAndNaN) {
  Submission s = full_submission();
  ASSERT_EQ(s.source.size(), 58u);
  ASSERT_NE(s.source.find('\0'), std::string::npos);
  ResultsStore store(db());
  const int64_t id = store.add(s);
  EXPECT_EQ(id, 1);
  EXPECT_EQ(s.id, 1);
  EXPECT_EQ(s.source_hash, vortex::agent::source_hash(s.source));
  const std::vector<Submission> back = store.all();
  ASSERT_EQ(back.size(), 1u);
  expect_same(s, back[0]);
  EXPECT_EQ(back[0].source.size(), 58u);  // nothing cut at the NUL
}

TEST_F(ResultsStoreTest, FiguresNotMeasuredStayNaNAndEmptyFieldsStayEmpty) {
  Submission s;
  s.name = "empty";
  ResultsStore store(db());
  store.add(s);
  const Submission back = store.all().at(0);
  EXPECT_TRUE(std::isnan(back.accuracy));
  EXPECT_TRUE(std::isnan(back.full_accuracy));
  EXPECT_TRUE(std::isnan(back.recall));
  EXPECT_TRUE(std::isnan(back.speedup));
  EXPECT_TRUE(std::isnan(back.kv_read_fraction));
  EXPECT_TRUE(back.stages.empty());
  EXPECT_EQ(back.failed_stage, "");
  EXPECT_EQ(back.source, "");
  EXPECT_EQ(back.parameters, Json::object());
  expect_same(s, back);
}

TEST_F(ResultsStoreTest, IdsIncreaseAndCreatedAtIsFilledInUtc) {
  ResultsStore store(db());
  Submission a = make("a", "A", 0.9, 2.0);
  Submission b = make("b", "B", 0.8, 3.0);
  Submission c = make("c", "C", 0.7, 4.0);
  c.created_at = "2020-01-02T03:04:05Z";
  const int64_t ia = store.add(a), ib = store.add(b), ic = store.add(c);
  EXPECT_LT(ia, ib);
  EXPECT_LT(ib, ic);
  EXPECT_TRUE(std::regex_match(a.created_at, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << a.created_at;
  EXPECT_EQ(c.created_at, "2020-01-02T03:04:05Z");  // a given time is kept
  const std::vector<Submission> all = store.all();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].name, "a");
  EXPECT_EQ(all[1].name, "b");
  EXPECT_EQ(all[2].name, "c");
  EXPECT_EQ(all[2].id, ic);
}

TEST_F(ResultsStoreTest, WithSourceFindsIdenticalTextOnly) {
  ResultsStore store(db());
  const std::string flow_a = std::string("flow A\0tail one", 15);
  const std::string flow_a_other_tail = std::string("flow A\0tail two", 15);
  Submission a1 = make("a1", flow_a, 0.9, 2.0);
  Submission b = make("b", "flow B", 0.8, 3.0);
  Submission a2 = make("a2", flow_a, 0.85, 2.5);
  Submission a3 = make("a3", flow_a_other_tail, 0.85, 2.5);
  store.add(a1);
  store.add(b);
  store.add(a2);
  store.add(a3);
  const std::vector<Submission> found = store.with_source(flow_a);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].id, a1.id);
  EXPECT_EQ(found[1].id, a2.id);
  ASSERT_EQ(store.with_source("flow B").size(), 1u);
  EXPECT_EQ(store.with_source("flow B")[0].name, "b");
  EXPECT_TRUE(store.with_source("flow C").empty());
  EXPECT_TRUE(store.with_source("flow A").empty());  // the text before the NUL is not a match
  EXPECT_EQ(store.with_source(flow_a_other_tail).size(), 1u);
}

TEST_F(ResultsStoreTest, WithSourceComparesTextNotJustTheHash) {
  ResultsStore store(db());
  Submission a = make("a", "flow A", 0.9, 2.0);
  Submission b = make("b", "flow B", 0.8, 3.0);
  store.add(a);
  store.add(b);
  // Simulate a hash collision: b's row now carries a's hash.
  raw_sql(db(), "UPDATE submissions SET source_hash = '" + a.source_hash + "' WHERE id = 2");
  const std::vector<Submission> found = store.with_source("flow A");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].name, "a");
}

TEST_F(ResultsStoreTest, CacheReturnsWhatWasPutAndPutOverwrites) {
  ResultsStore store(db());
  EXPECT_FALSE(store.cached("full/qwen3/ruler").has_value());
  store.put_cached("full/qwen3/ruler", {{"accuracy", 0.91}, {"samples", 64}});
  ASSERT_TRUE(store.cached("full/qwen3/ruler").has_value());
  EXPECT_EQ(*store.cached("full/qwen3/ruler"), (Json{{"accuracy", 0.91}, {"samples", 64}}));
  store.put_cached("full/qwen3/ruler", Json::array({1, "two", nullptr}));
  EXPECT_EQ(*store.cached("full/qwen3/ruler"), Json::array({1, "two", nullptr}));
  store.put_cached("other key with 'quotes' and \u00fcnicode", 3.5);
  EXPECT_EQ(*store.cached("other key with 'quotes' and \u00fcnicode"), Json(3.5));
  EXPECT_EQ(*store.cached("full/qwen3/ruler"), Json::array({1, "two", nullptr}));
}

TEST_F(ResultsStoreTest, ReopeningKeepsSubmissionsAndCache) {
  Submission s = full_submission();
  {
    ResultsStore store(db());
    store.add(s);
    store.put_cached("k", {{"v", 1}});
  }
  ResultsStore again(db());
  const std::vector<Submission> back = again.all();
  ASSERT_EQ(back.size(), 1u);
  expect_same(s, back[0]);
  EXPECT_EQ(*again.cached("k"), (Json{{"v", 1}}));
  Submission next = make("next", "x", 0.5, 1.5);
  EXPECT_EQ(again.add(next), 2);
}

TEST_F(ResultsStoreTest, FileThatIsNotADatabaseIsAnErrorNamingThePath) {
  {
    std::ofstream out(db());
    for (int i = 0; i < 100; ++i) out << "this is a text file, not a database\n";
  }
  const std::string message = error_of([&] { ResultsStore store(db()); });
  EXPECT_NE(message.find(db()), std::string::npos) << message;
  EXPECT_NE(message.find("not a database"), std::string::npos) << message;
}

TEST_F(ResultsStoreTest, MissingDirectoryIsAnErrorNamingThePath) {
  const std::string path = (dir_ / "no" / "such" / "dir" / "results.db").string();
  const std::string message = error_of([&] { ResultsStore store(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(ResultsStoreTest, UnwritableDirectoryIsAnErrorNamingThePath) {
  if (geteuid() == 0) {
    // Root writes into any directory it may list, but not into /proc.
    const std::string path = "/proc/vortex_results_test.db";
    const std::string message = error_of([&] { ResultsStore store(path); });
    EXPECT_NE(message.find(path + ": cannot open the results database"), std::string::npos)
        << message;
    return;
  }
  const fs::path locked = dir_ / "locked";
  fs::create_directories(locked);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string path = (locked / "results.db").string();
  const std::string message = error_of([&] { ResultsStore store(path); });
  fs::permissions(locked, fs::perms::owner_all);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("not writable"), std::string::npos) << message;
}

TEST_F(ResultsStoreTest, NewerSchemaVersionIsRefused) {
  { ResultsStore store(db()); }
  raw_sql(db(), "UPDATE meta SET value = '2' WHERE key = 'schema_version'");
  const std::string message = error_of([&] { ResultsStore store(db()); });
  EXPECT_NE(message.find(db()), std::string::npos) << message;
  EXPECT_NE(message.find("schema version 2 is newer"), std::string::npos) << message;
}

TEST_F(ResultsStoreTest, SomeOtherSQLiteDatabaseIsRefused) {
  raw_sql(db(), "CREATE TABLE photos (id INTEGER PRIMARY KEY, file TEXT)");
  const std::string message = error_of([&] { ResultsStore store(db()); });
  EXPECT_NE(message.find(db()), std::string::npos) << message;
  EXPECT_NE(message.find("not a vortex results store"), std::string::npos) << message;
  EXPECT_NE(message.find("photos"), std::string::npos) << message;
}

TEST_F(ResultsStoreTest, TwoStoresOnOneFileSeeEachOthersWrites) {
  ResultsStore first(db());
  ResultsStore second(db());
  Submission a = make("a", "A", 0.9, 2.0);
  Submission b = make("b", "B", 0.8, 3.0);
  first.add(a);
  ASSERT_EQ(second.all().size(), 1u);
  second.add(b);
  EXPECT_NE(a.id, b.id);
  const std::vector<Submission> all = first.all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].name, "b");
  second.put_cached("k", 1);
  EXPECT_EQ(*first.cached("k"), Json(1));
}

TEST_F(ResultsStoreTest, ConcurrentWritersAndAReaderAllSucceed) {
  { ResultsStore create(db()); }
  constexpr int kEach = 40;
  auto writer = [&](const std::string& prefix) {
    ResultsStore store(db());
    for (int i = 0; i < kEach; ++i) {
      Submission s = make(prefix + std::to_string(i), prefix, 0.5, 1.0 + i);
      store.add(s);
    }
  };
  std::string failure;
  auto guarded = [&](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      failure = e.what();
    }
  };
  std::thread w1([&] { guarded([&] { writer("x"); }); });
  std::thread w2([&] { guarded([&] { writer("y"); }); });
  std::thread reader([&] {
    guarded([&] {
      ResultsStore store(db(), ResultsStore::Mode::kReadOnly);
      for (int i = 0; i < 40; ++i) store.all();
    });
  });
  w1.join();
  w2.join();
  reader.join();
  EXPECT_EQ(failure, "");
  ResultsStore store(db());
  const std::vector<Submission> all = store.all();
  ASSERT_EQ(all.size(), 2u * kEach);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].id, all[i].id);
  EXPECT_EQ(store.with_source("x").size(), static_cast<size_t>(kEach));
}

TEST_F(ResultsStoreTest, ReadOnlyNeverCreatesOrWrites) {
  const std::string message =
      error_of([&] { ResultsStore store(db(), ResultsStore::Mode::kReadOnly); });
  EXPECT_NE(message.find(db()), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(db()));

  { std::ofstream touch(db()); }  // an empty file is an empty database
  {
    ResultsStore empty(db(), ResultsStore::Mode::kReadOnly);
    EXPECT_TRUE(empty.all().empty());
    EXPECT_TRUE(empty.with_source("x").empty());
    EXPECT_FALSE(empty.cached("k").has_value());
  }
  EXPECT_EQ(fs::file_size(db()), 0u);

  {
    ResultsStore writer(db());
    Submission s = make("a", "A", 0.9, 2.0);
    writer.add(s);
  }
  ResultsStore reader(db(), ResultsStore::Mode::kReadOnly);
  EXPECT_EQ(reader.all().size(), 1u);
  Submission s = make("b", "B", 0.9, 2.0);
  EXPECT_NE(error_of([&] { reader.add(s); }).find("read-only"), std::string::npos);
  EXPECT_NE(error_of([&] { reader.put_cached("k", 1); }).find("read-only"), std::string::npos);
}

TEST_F(ResultsStoreTest, DefaultPathComesFromTheEnvironment) {
  const char* old = std::getenv("VORTEX_RESULTS_DB");
  const std::string saved = old ? old : "";
  unsetenv("VORTEX_RESULTS_DB");
  EXPECT_EQ(ResultsStore::default_path(), "vortex-results.db");
  setenv("VORTEX_RESULTS_DB", "/somewhere/else.db", 1);
  EXPECT_EQ(ResultsStore::default_path(), "/somewhere/else.db");
  setenv("VORTEX_RESULTS_DB", "", 1);
  EXPECT_EQ(ResultsStore::default_path(), "vortex-results.db");
  if (old)
    setenv("VORTEX_RESULTS_DB", saved.c_str(), 1);
  else
    unsetenv("VORTEX_RESULTS_DB");
}

TEST_F(ResultsStoreTest, AMovedStoreKeepsWorking) {
  ResultsStore first(db());
  ResultsStore moved = std::move(first);
  Submission s = make("a", "A", 0.9, 2.0);
  EXPECT_EQ(moved.add(s), 1);
  EXPECT_EQ(moved.all().size(), 1u);
}

}  // namespace
