// The agent loop's results store: every submission (`vortex submit`) in one SQLite file, read back
// by the leaderboard (`vortex leaderboard`), plus a small cache of results that do not depend on
// the flow (full attention's accuracy on a suite, say) so a verdict does not recompute them.
//
// The file is in WAL mode with a busy timeout, so an agent can submit while another process reads
// the leaderboard; every write is one transaction.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/submission.h"
#include "core/json_file.h"

struct sqlite3;

namespace vortex::agent {

// The schema this build writes and reads; a file with a newer one is refused, not misread.
inline constexpr int kResultsSchemaVersion = 1;

class ResultsStore {
 public:
  enum class Mode {
    kReadWrite,  // creates the file and its tables if needed
    kReadOnly,   // never writes: the file must exist (a file without tables reads as empty)
  };

  // Opens the database at `path`. Throws vortex::Error naming the path when it cannot: a file
  // that is not a SQLite database (or not a results store), a directory it cannot create the
  // file in, a schema version newer than this build knows.
  explicit ResultsStore(const std::string& path, Mode mode = Mode::kReadWrite);
  ~ResultsStore();
  ResultsStore(const ResultsStore&) = delete;
  ResultsStore& operator=(const ResultsStore&) = delete;
  ResultsStore(ResultsStore&&) noexcept;
  ResultsStore& operator=(ResultsStore&&) noexcept;

  // $VORTEX_RESULTS_DB if set and not empty, else "vortex-results.db" in the current directory.
  static std::string default_path();

  const std::string& path() const { return path_; }

  // Stores `s`: assigns s.id, s.source_hash (source_hash(s.source)) and, if empty, s.created_at
  // (now, UTC ISO 8601 "2026-12-07T15:04:05Z"). Returns the id; ids only grow.
  int64_t add(Submission& s);

  // Every submission in id order; every field round-trips (NaN figures stay NaN).
  std::vector<Submission> all() const;

  // Earlier submissions of exactly this source text (same hash and same bytes), in id order.
  std::vector<Submission> with_source(const std::string& source) const;

  // The cache: JSON values by key. put_cached overwrites.
  std::optional<Json> cached(const std::string& key) const;
  void put_cached(const std::string& key, const Json& value);

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };

  void open_schema();

  std::string path_;
  Mode mode_ = Mode::kReadWrite;
  bool has_tables_ = true;  // false only for a read-only file that was never written
  std::unique_ptr<sqlite3, DbCloser> db_;
};

// UTC now as ISO 8601 with seconds ("2026-12-07T15:04:05Z").
std::string utc_timestamp_now();

}  // namespace vortex::agent
