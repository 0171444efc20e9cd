// Question/answer datasets as JSON lines (AIME/AMC style): one object per line with the
// question in "question" or "problem" and the reference in "answer" (string or number); an
// optional "id" names the item. Blank lines are skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vortex::eval {

struct QaItem {
  std::string id;  // "id" if given, else the line number
  std::string question;
  std::string answer;  // numbers as written by JSON (42, 3.5)
  int64_t line = 0;    // 1-based line in the file
};

// Reads the file; errors name the file and line ("data.jsonl:7: no 'question' or 'problem'
// field"). Throws when the file cannot be read or holds no item.
std::vector<QaItem> load_qa_jsonl(const std::string& path);

}  // namespace vortex::eval
