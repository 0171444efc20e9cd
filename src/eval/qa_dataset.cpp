#include "eval/qa_dataset.h"

#include "core/error.h"
#include "core/json_file.h"
#include "eval/jsonl.h"

namespace vortex::eval {

namespace {

std::string json_scalar_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  // A float like 12.0 reads back as "12.0"; normalisation makes it equal to "12".
  return v.dump();
}

}  // namespace

std::vector<QaItem> load_qa_jsonl(const std::string& path) {
  std::vector<QaItem> items;
  read_jsonl(path, [&](const Json& j, const std::string& where) {
    if (!j.is_object()) fail(where, ": expected a JSON object per line");
    QaItem item;
    item.line = std::stoll(where.substr(where.rfind(':') + 1));
    const char* question_key = j.contains("question") ? "question" : "problem";
    if (!j.contains(question_key)) fail(where, ": no 'question' or 'problem' field");
    if (!j[question_key].is_string()) fail(where, ": field '", question_key, "' must be a string");
    item.question = j[question_key].get<std::string>();
    if (!j.contains("answer")) fail(where, ": no 'answer' field");
    const Json& answer = j["answer"];
    if (!answer.is_string() && !answer.is_number()) {
      fail(where, ": field 'answer' must be a string or a number");
    }
    item.answer = json_scalar_text(answer);
    if (j.contains("id") && (j["id"].is_string() || j["id"].is_number())) {
      item.id = json_scalar_text(j["id"]);
    } else {
      item.id = std::to_string(item.line);
    }
    items.push_back(std::move(item));
  });
  if (items.empty()) fail(path, ": the dataset holds no question (one JSON object per line)");
  return items;
}

}  // namespace vortex::eval
