#include "agent/results_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace vortex::agent {

namespace {

// How long a statement waits for another process's write lock before it fails.
constexpr int kBusyTimeoutMs = 5000;

// The columns of `submissions`, in the order every SELECT and the INSERT use.
constexpr const char* kColumns =
    "id, created_at, name, path, source, source_hash, parameters, stages, accepted, failed_stage, "
    "accuracy, full_accuracy, recall, speedup, speedup_estimated, kv_read_fraction, machine, "
    "card, \"commit\"";

constexpr const char* kCreateSchema = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE submissions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT NOT NULL,
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  source TEXT NOT NULL,
  source_hash TEXT NOT NULL,
  parameters TEXT NOT NULL,
  stages TEXT NOT NULL,
  accepted INTEGER NOT NULL,
  failed_stage TEXT,
  accuracy REAL,
  full_accuracy REAL,
  recall REAL,
  speedup REAL,
  speedup_estimated INTEGER NOT NULL,
  kv_read_fraction REAL,
  machine TEXT NOT NULL,
  card TEXT NOT NULL,
  "commit" TEXT NOT NULL
);
CREATE INDEX submissions_source_hash ON submissions (source_hash);
CREATE TABLE cache (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
)sql";

[[noreturn]] void db_fail(sqlite3* db, const std::string& path, std::string_view doing) {
  const int code = sqlite3_errcode(db);
  std::string hint;
  if ((code & 0xff) == SQLITE_BUSY)
    hint = str_cat(" (another process held the database for over ", kBusyTimeoutMs / 1000, " s)");
  fail(path, ": ", doing, ": ", sqlite3_errmsg(db), hint);
}

// A prepared statement; values are only ever bound, never pasted into the SQL.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& path, std::string_view sql) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
        SQLITE_OK)
      db_fail(db, path, "cannot read the results database");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Text with its explicit length: embedded NULs and any bytes are kept.
  void bind_text(int i, std::string_view v) {
    // A null pointer would bind SQL NULL, not "".
    const char* data = v.data() ? v.data() : "";
    check(sqlite3_bind_text64(stmt_, i, data, v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  void bind_int(int i, int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); }
  // NaN is "not measured": SQL NULL.
  void bind_real(int i, double v) {
    check(v != v ? sqlite3_bind_null(stmt_, i) : sqlite3_bind_double(stmt_, i, v));
  }
  void bind_text_or_null(int i, const std::string& v) {
    if (v.empty())
      check(sqlite3_bind_null(stmt_, i));
    else
      bind_text(i, v);
  }

  // True while there is a row to read; false when done.
  bool step(std::string_view doing) {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    db_fail(db_, path_, doing);
  }

  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const {
    return is_null(col) ? kNotMeasured : sqlite3_column_double(stmt_, col);
  }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    const int n = sqlite3_column_bytes(stmt_, col);  // after column_text: the UTF-8 length
    return p ? std::string(p, static_cast<size_t>(n)) : std::string();
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) db_fail(db_, path_, "cannot bind a value");
  }

  sqlite3* db_;
  const std::string& path_;
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const std::string& path, const char* sql, std::string_view doing) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) db_fail(db, path, doing);
}

// BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so two writers
// never deadlock upgrading a read lock. Rolls back unless committed.
class WriteTransaction {
 public:
  WriteTransaction(sqlite3* db, const std::string& path) : db_(db), path_(path) {
    exec(db, path, "BEGIN IMMEDIATE", "cannot start a write");
  }
  ~WriteTransaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec(db_, path_, "COMMIT", "cannot commit");
    done_ = true;
  }

 private:
  sqlite3* db_;
  const std::string& path_;
  bool done_ = false;
};

// Serializes a JSON value for a column. Strings that are not valid UTF-8 (a stage's reason
// quoting bytes of a bad file, say) are stored with U+FFFD rather than losing the submission.
std::string dump_json(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::vector<std::string> table_names(sqlite3* db, const std::string& path) {
  Statement st(db, path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  std::vector<std::string> names;
  while (st.step("cannot read the results database")) names.push_back(st.text(0));
  return names;
}

Submission read_row(const Statement& st, const std::string& path) {
  Submission s;
  s.id = st.integer(0);
  s.created_at = st.text(1);
  s.name = st.text(2);
  s.path = st.text(3);
  s.source = st.text(4);
  s.source_hash = st.text(5);
  const std::string where = str_cat(path, ": submission ", s.id);
  s.parameters = parse_json(st.is_null(6) ? "{}" : st.text(6), where + ": parameters");
  const Json stages = parse_json(st.is_null(7) ? "[]" : st.text(7), where + ": stages");
  if (!stages.is_array())
    fail(where, ": stages: expected a JSON array, got ", json_excerpt(stages));
  try {
    for (const Json& j : stages) s.stages.push_back(stage_from_json(j));
  } catch (const Json::exception& e) {
    fail(where, ": stages: ", e.what());
  } catch (const Error& e) {
    fail(where, ": stages: ", e.what());
  }
  s.accepted = st.integer(8) != 0;
  s.failed_stage = st.text(9);
  s.accuracy = st.real(10);
  s.full_accuracy = st.real(11);
  s.recall = st.real(12);
  s.speedup = st.real(13);
  s.speedup_estimated = st.integer(14) != 0;
  s.kv_read_fraction = st.real(15);
  s.machine = st.text(16);
  s.card = st.text(17);
  s.commit = st.text(18);
  return s;
}

}  // namespace

std::string utc_timestamp_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void ResultsStore::DbCloser::operator()(sqlite3* db) const {
  sqlite3_close_v2(db);
}

ResultsStore::ResultsStore(const std::string& path, Mode mode) : path_(path), mode_(mode) {
  namespace fs = std::filesystem;
  if (mode == Mode::kReadOnly && path != ":memory:" && !fs::exists(path))
    fail(path, ": the results database does not exist");
  sqlite3* raw = nullptr;
  const int flags =
      mode == Mode::kReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  db_.reset(raw);
  if (rc != SQLITE_OK) {
    // Say which of the usual reasons it is: a missing or unwritable directory, a directory.
    std::string hint;
    std::error_code ec;
    const fs::path parent = fs::absolute(path, ec).parent_path();
    if (fs::is_directory(path, ec))
      hint = " (it is a directory)";
    else if (!fs::is_directory(parent, ec))
      hint = str_cat(" (directory ", parent.string(), " does not exist)");
    else if (mode == Mode::kReadWrite && access(parent.c_str(), W_OK) != 0)
      hint = str_cat(" (directory ", parent.string(), " is not writable)");
    fail(path, ": cannot open the results database: ", raw ? sqlite3_errmsg(raw) : "out of memory",
         hint);
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  open_schema();
}

ResultsStore::~ResultsStore() = default;
ResultsStore::ResultsStore(ResultsStore&&) noexcept = default;
ResultsStore& ResultsStore::operator=(ResultsStore&&) noexcept = default;

void ResultsStore::open_schema() {
  sqlite3* db = db_.get();
  // The first read is where a file that is not a database shows up ("file is not a database").
  std::vector<std::string> tables = table_names(db, path_);
  if (mode_ == Mode::kReadWrite) {
    // WAL lets readers go on while a writer commits. Not every file system can do it (the
    // pragma then answers the mode it kept); the busy timeout still serializes access.
    Statement wal(db, path_, "PRAGMA journal_mode = WAL");
    while (wal.step("cannot set the journal mode")) {
    }
    WriteTransaction tx(db, path_);
    tables = table_names(db, path_);  // again, under the write lock: another process may have won
    if (tables.empty()) {
      exec(db, path_, kCreateSchema, "cannot create the results tables");
      {
        Statement put(db, path_, "INSERT INTO meta (key, value) VALUES ('schema_version', ?)");
        put.bind_text(1, std::to_string(kResultsSchemaVersion));
        put.step("cannot write the schema version");
      }
      tx.commit();
      return;
    }
    tx.commit();
  } else if (tables.empty()) {
    has_tables_ = false;  // an empty file: no submissions, and nothing is created by reading
    return;
  }

  bool has_meta = false;
  for (const std::string& t : tables) has_meta = has_meta || t == "meta";
  if (!has_meta) {
    std::string list;
    for (const std::string& t : tables) list += (list.empty() ? "" : ", ") + printable(t, 40);
    fail(path_, ": a SQLite database but not a vortex results store (no meta table; it has ", list,
         ")");
  }
  Statement get(db, path_, "SELECT value FROM meta WHERE key = 'schema_version'");
  if (!get.step("cannot read the schema version"))
    fail(path_, ": the results store has no schema_version in its meta table");
  const std::string text = get.text(0);
  char* end = nullptr;
  const long version = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || version < 1)
    fail(path_, ": schema_version '", printable(text, 20), "' is not a positive integer");
  if (version > kResultsSchemaVersion)
    fail(path_, ": schema version ", version, " is newer than this build knows (",
         kResultsSchemaVersion, "); use a newer vortex");
}

std::string ResultsStore::default_path() {
  const char* env = std::getenv("VORTEX_RESULTS_DB");
  return env && *env ? std::string(env) : std::string("vortex-results.db");
}

int64_t ResultsStore::add(Submission& s) {
  if (mode_ == Mode::kReadOnly) fail(path_, ": opened read-only; cannot store a submission");
  Submission row = s;
  row.source_hash = source_hash(row.source);
  if (row.created_at.empty()) row.created_at = utc_timestamp_now();
  Json stages = Json::array();
  for (const StageResult& st : row.stages) stages.push_back(to_json(st));

  sqlite3* db = db_.get();
  WriteTransaction tx(db, path_);
  {
    Statement ins(db, path_,
                  "INSERT INTO submissions (created_at, name, path, source, source_hash, "
                  "parameters, stages, accepted, failed_stage, accuracy, full_accuracy, recall, "
                  "speedup, speedup_estimated, kv_read_fraction, machine, card, \"commit\") "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    ins.bind_text(1, row.created_at);
    ins.bind_text(2, row.name);
    ins.bind_text(3, row.path);
    ins.bind_text(4, row.source);
    ins.bind_text(5, row.source_hash);
    ins.bind_text(6, dump_json(row.parameters));
    ins.bind_text(7, dump_json(stages));
    ins.bind_int(8, row.accepted ? 1 : 0);
    ins.bind_text_or_null(9, row.failed_stage);
    ins.bind_real(10, row.accuracy);
    ins.bind_real(11, row.full_accuracy);
    ins.bind_real(12, row.recall);
    ins.bind_real(13, row.speedup);
    ins.bind_int(14, row.speedup_estimated ? 1 : 0);
    ins.bind_real(15, row.kv_read_fraction);
    ins.bind_text(16, row.machine);
    ins.bind_text(17, row.card);
    ins.bind_text(18, row.commit);
    ins.step("cannot store the submission");
    row.id = sqlite3_last_insert_rowid(db);
  }
  tx.commit();
  s = std::move(row);
  return s.id;
}

std::vector<Submission> ResultsStore::all() const {
  std::vector<Submission> out;
  if (!has_tables_) return out;
  Statement st(db_.get(), path_, str_cat("SELECT ", kColumns, " FROM submissions ORDER BY id"));
  while (st.step("cannot read the submissions")) out.push_back(read_row(st, path_));
  return out;
}

std::vector<Submission> ResultsStore::with_source(const std::string& source) const {
  std::vector<Submission> out;
  if (!has_tables_) return out;
  Statement st(db_.get(), path_,
               str_cat("SELECT ", kColumns, " FROM submissions WHERE source_hash = ? ORDER BY id"));
  st.bind_text(1, source_hash(source));
  while (st.step("cannot read the submissions")) {
    Submission s = read_row(st, path_);
    if (s.source == source) out.push_back(std::move(s));  // a hash collision is not a match
  }
  return out;
}

std::optional<Json> ResultsStore::cached(const std::string& key) const {
  if (!has_tables_) return std::nullopt;
  Statement st(db_.get(), path_, "SELECT value FROM cache WHERE key = ?");
  st.bind_text(1, key);
  if (!st.step("cannot read the cache")) return std::nullopt;
  return parse_json(st.text(0), str_cat(path_, ": cache entry '", printable(key), "'"));
}

void ResultsStore::put_cached(const std::string& key, const Json& value) {
  if (mode_ == Mode::kReadOnly) fail(path_, ": opened read-only; cannot write the cache");
  sqlite3* db = db_.get();
  WriteTransaction tx(db, path_);
  {
    Statement st(db, path_,
                 "INSERT INTO cache (key, value, updated_at) VALUES (?, ?, ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                 "updated_at = excluded.updated_at");
    st.bind_text(1, key);
    st.bind_text(2, dump_json(value));
    st.bind_text(3, utc_timestamp_now());
    st.step("cannot write the cache");
  }
  tx.commit();
}

}  // namespace vortex::agent
