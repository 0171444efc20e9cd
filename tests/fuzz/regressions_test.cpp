// Every input the fuzzers found (tests/data/fuzz_regressions/<target>/) and every seed
// (fuzz/corpus/<target>/) through the fuzz targets' bodies, without libFuzzer: each must be
// handled or refused with vortex::Error, never crash or throw anything else.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_targets.h"

namespace vortex::fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs_under(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// "accepted", "refused: <message>", or a failure naming what escaped.
::testing::AssertionResult runs_cleanly(const FuzzTarget& target, const fs::path& input) {
  const std::string data = read_bytes(input);
  try {
    target.body(data);
  } catch (const Error&) {
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << input << " threw a non-vortex::Error: " << e.what();
  } catch (...) {
    return ::testing::AssertionFailure() << input << " threw something that is not an exception";
  }
  return ::testing::AssertionSuccess();
}

class FuzzInputs : public ::testing::TestWithParam<FuzzTarget> {};

TEST_P(FuzzInputs, RegressionInputsAreHandledOrRefusedWithAnError) {
  const fs::path dir = fs::path(VORTEX_SOURCE_DIR) / "tests/data/fuzz_regressions" /
                       GetParam().name;
  for (const fs::path& input : inputs_under(dir)) EXPECT_TRUE(runs_cleanly(GetParam(), input));
}

TEST_P(FuzzInputs, SeedCorpusIsHandledOrRefusedWithAnError) {
  const fs::path dir = fs::path(VORTEX_SOURCE_DIR) / "fuzz/corpus" / GetParam().name;
  const std::vector<fs::path> seeds = inputs_under(dir);
  EXPECT_FALSE(seeds.empty()) << "no seeds in " << dir;
  for (const fs::path& input : seeds) EXPECT_TRUE(runs_cleanly(GetParam(), input));
}

INSTANTIATE_TEST_SUITE_P(AllTargets, FuzzInputs, ::testing::ValuesIn(kFuzzTargets),
                         [](const ::testing::TestParamInfo<FuzzTarget>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace vortex::fuzz
