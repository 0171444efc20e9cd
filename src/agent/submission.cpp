#include "agent/submission.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace vortex::agent {

const char* stage_status_name(StageStatus s) {
  switch (s) {
    case StageStatus::kPassed:
      return "passed";
    case StageStatus::kFailed:
      return "failed";
    case StageStatus::kSkipped:
      return "skipped";
  }
  return "?";
}

StageStatus parse_stage_status(const std::string& name) {
  if (name == "passed") return StageStatus::kPassed;
  if (name == "failed") return StageStatus::kFailed;
  if (name == "skipped") return StageStatus::kSkipped;
  fail("unknown stage status '", name, "' (passed, failed or skipped)");
}

double Submission::accuracy_delta() const {
  return accuracy - full_accuracy;  // NaN propagates
}

std::string source_hash(const std::string& source) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char c : source) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {

Json number_or_null(double v) {
  return std::isfinite(v) ? Json(v) : Json(nullptr);
}

double number_or_nan(const Json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return kNotMeasured;
  return j.at(key).get<double>();
}

}  // namespace

Json to_json(const StageResult& s) {
  return {{"stage", s.stage},
          {"status", stage_status_name(s.status)},
          {"seconds", s.seconds},
          {"reason", s.reason},
          {"figures", s.figures}};
}

StageResult stage_from_json(const Json& j) {
  StageResult s;
  s.stage = j.at("stage").get<std::string>();
  s.status = parse_stage_status(j.at("status").get<std::string>());
  s.seconds = j.value("seconds", 0.0);
  s.reason = j.value("reason", std::string());
  s.figures = j.value("figures", Json::object());
  return s;
}

Json to_json(const Submission& s) {
  Json stages = Json::array();
  for (const StageResult& st : s.stages) stages.push_back(to_json(st));
  return {{"id", s.id},
          {"created_at", s.created_at},
          {"name", s.name},
          {"path", s.path},
          {"source_hash", s.source_hash},
          {"parameters", s.parameters},
          {"stages", stages},
          {"accepted", s.accepted},
          {"failed_stage", s.failed_stage.empty() ? Json(nullptr) : Json(s.failed_stage)},
          {"accuracy", number_or_null(s.accuracy)},
          {"full_accuracy", number_or_null(s.full_accuracy)},
          {"accuracy_delta", number_or_null(s.accuracy_delta())},
          {"recall", number_or_null(s.recall)},
          {"speedup", number_or_null(s.speedup)},
          {"speedup_estimated", s.speedup_estimated},
          {"kv_read_fraction", number_or_null(s.kv_read_fraction)},
          {"machine", s.machine},
          {"card", s.card},
          {"commit", s.commit},
          {"source", s.source}};
}

Submission submission_from_json(const Json& j) {
  Submission s;
  s.id = j.value("id", int64_t{0});
  s.created_at = j.value("created_at", std::string());
  s.name = j.at("name").get<std::string>();
  s.path = j.value("path", std::string());
  s.source = j.value("source", std::string());
  s.source_hash = j.value("source_hash", source_hash(s.source));
  s.parameters = j.value("parameters", Json::object());
  if (j.contains("stages"))
    for (const Json& st : j.at("stages")) s.stages.push_back(stage_from_json(st));
  s.accepted = j.value("accepted", false);
  if (j.contains("failed_stage") && !j.at("failed_stage").is_null())
    s.failed_stage = j.at("failed_stage").get<std::string>();
  s.accuracy = number_or_nan(j, "accuracy");
  s.full_accuracy = number_or_nan(j, "full_accuracy");
  s.recall = number_or_nan(j, "recall");
  s.speedup = number_or_nan(j, "speedup");
  s.speedup_estimated = j.value("speedup_estimated", false);
  s.kv_read_fraction = number_or_nan(j, "kv_read_fraction");
  s.machine = j.value("machine", std::string());
  s.card = j.value("card", std::string());
  s.commit = j.value("commit", std::string());
  return s;
}

}  // namespace vortex::agent
