// Hostile JSON files end in an error that names the file and what is wrong: never a stack
// overflow (deep nesting), a hang (a FIFO), or an unbounded allocation (a huge file).
#include "core/json_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"

namespace vortex {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("vortex_json_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(file(name), std::ios::binary | std::ios::trunc) << text;
    return file(name);
  }

 private:
  fs::path path_;
};

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "in: " << (haystack)

std::string nested_arrays(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

TEST(ParseJson, ReadsOrdinaryDocuments) {
  Json j = parse_json(R"({"a": [1, -2, 3.5, "x", true, null], "b": {"c": {}}})", "doc");
  EXPECT_EQ(j["a"].size(), 6u);
  EXPECT_EQ(j["a"][1], -2);
  EXPECT_EQ(j["b"]["c"], Json::object());
  EXPECT_EQ(parse_json("7", "doc"), 7);
}

TEST(ParseJson, NestingAtTheLimitIsAccepted) {
  Json j = parse_json(nested_arrays(kMaxJsonDepth), "doc");
  EXPECT_TRUE(j.is_array());
}

TEST(ParseJson, DeepNestingIsAnErrorNotAStackOverflow) {
  EXPECT_EQ(error_of([] { parse_json(nested_arrays(kMaxJsonDepth + 1), "doc"); }),
            "doc: JSON nested deeper than 128 levels (the limit) at byte 128");
  // Far deeper than any stack could recurse.
  std::string objects;
  for (int i = 0; i < 1000000; ++i) objects += "{\"a\":";
  EXPECT_EQ(error_of([&] { parse_json(objects, "doc"); }),
            "doc: JSON nested deeper than 128 levels (the limit) at byte 640");
}

TEST(ParseJson, BracketsInsideStringsDoNotCountAsNesting) {
  std::string text = "[\"" + std::string(10000, '[') + "\\\"{\"]";
  EXPECT_EQ(parse_json(text, "doc")[0].get<std::string>().size(), 10002u);
}

TEST(ParseJson, RepeatedKeysAreRefusedWithTheirObject) {
  EXPECT_EQ(error_of([] { parse_json(R"({"a": 1, "a": 2})", "doc"); }),
            "doc: the key \"a\" appears twice in the top-level object");
  EXPECT_EQ(error_of([] { parse_json(R"({"model": {"vocab": {"x": 1, "x": 1}}})", "doc"); }),
            "doc: the key \"x\" appears twice in the object at 'model.vocab'");
  EXPECT_EQ(error_of([] { parse_json(R"({"m": [0, {"k\n": 1, "k\n": 2}]})", "doc"); }),
            "doc: the key \"k\\n\" appears twice in the object at 'm[1]'");
}

TEST(ParseJson, TooManyValuesIsAnError) {
  std::string text = "[";
  text.reserve(2 * kMaxJsonValues + 8);
  for (uint64_t i = 0; i < kMaxJsonValues; ++i) text += "0,";
  text += "0]";
  EXPECT_EQ(error_of([&] { parse_json(text, "doc"); }),
            "doc: more than 4194304 JSON values (the limit)");
}

TEST(ParseJson, SyntaxErrorsGiveTheByteAndABoundedMessage) {
  std::string message = error_of([] { parse_json("{\"a\": [1, 2,", "doc"); });
  EXPECT_CONTAINS(message, "doc: invalid JSON at byte 13: ");
  // The parser quotes the token it stopped in; a 1 MB string must not come back whole.
  message = error_of([] { parse_json("[\"" + std::string(1 << 20, 'x') + "\x01\"]", "doc"); });
  EXPECT_CONTAINS(message, "doc: invalid JSON at byte ");
  EXPECT_LT(message.size(), 300u);
  EXPECT_EQ(message.find('\n'), std::string::npos);
  // Invalid UTF-8 inside a string is a syntax error too.
  EXPECT_CONTAINS(error_of([] { parse_json("[\"\xff\"]", "doc"); }), "doc: invalid JSON at byte");
  EXPECT_CONTAINS(error_of([] { parse_json("", "doc"); }), "doc: invalid JSON at byte");
  EXPECT_CONTAINS(error_of([] { parse_json("[1] [2]", "doc"); }), "doc: invalid JSON at byte");
  // A number too large for a double is an error, never inf.
  EXPECT_CONTAINS(error_of([] { parse_json("[1e999]", "doc"); }), "doc: invalid JSON at byte");
}

TEST(ReadJsonFile, ReadsAFile) {
  TempDir dir;
  EXPECT_EQ(read_json_file(dir.write("a.json", "{\"x\": 1}\n"))["x"], 1);
}

TEST(ReadJsonFile, MissingEmptyOrTruncatedFilesAreNamed) {
  TempDir dir;
  EXPECT_EQ(error_of([&] { read_json_file(dir.file("absent.json")); }),
            dir.file("absent.json") + ": cannot open (does it exist?)");
  EXPECT_EQ(error_of([&] { read_json_file(dir.write("empty.json", "")); }),
            dir.file("empty.json") + ": is empty, expected JSON");
  EXPECT_EQ(error_of([&] { read_json_file(dir.write("blank.json", " \n")); }),
            dir.file("blank.json") + ": is empty, expected JSON");
  EXPECT_CONTAINS(error_of([&] { read_json_file(dir.write("cut.json", "{\"x\": [1, 2")); }),
                  dir.file("cut.json") + ": invalid JSON at byte 12");
}

TEST(ReadJsonFile, DirectoriesAndFifosAreRefusedWithoutBlocking) {
  TempDir dir;
  fs::create_directory(dir.file("sub"));
  EXPECT_EQ(error_of([&] { read_json_file(dir.file("sub")); }),
            dir.file("sub") + ": is a directory, expected a JSON file");
  // Opening a FIFO for reading would wait for a writer forever.
  ASSERT_EQ(::mkfifo(dir.file("fifo.json").c_str(), 0600), 0);
  EXPECT_EQ(error_of([&] { read_json_file(dir.file("fifo.json")); }),
            dir.file("fifo.json") + ": is not a regular file, expected a JSON file");
  EXPECT_EQ(error_of([&] { read_json_file("/dev/zero"); }),
            "/dev/zero: is not a regular file, expected a JSON file");
}

TEST(ReadJsonFile, AFileOverTheSizeLimitIsRefusedBeforeReading) {
  TempDir dir;
  const std::string path = dir.write("huge.json", "{");
  fs::resize_file(path, uint64_t{2} << 30);  // sparse: 2 GiB that take no disk
  EXPECT_EQ(error_of([&] { read_json_file(path); }),
            path + ": is 2147483648 bytes, over the limit of 67108864 bytes for a JSON file");
}

TEST(JsonExcerpt, IsBoundedWhateverTheValue) {
  EXPECT_EQ(json_excerpt(Json::parse(R"([0,8])")), "[0,8]");
  EXPECT_EQ(json_excerpt(Json::parse(R"({"a":"b\n"})")), R"({"a":"b\n"})");
  Json big = Json::array();
  for (int i = 0; i < 100000; ++i) big.push_back(i);
  std::string e = json_excerpt(big, 20);
  EXPECT_EQ(e, "[0,1,2,3,4,5,6,7,8,9...");
  Json text = std::string(1 << 20, 'y');
  EXPECT_EQ(json_excerpt(text, 10), "\"yyyyyyyyy...");
  Json deep = parse_json(nested_arrays(kMaxJsonDepth), "doc");
  EXPECT_EQ(json_excerpt(deep, 8), "[[[[[[[[...");
}

TEST(Printable, EscapesControlCharactersAndCutsOnACharacterBoundary) {
  EXPECT_EQ(printable("a\nb\tc\x01"), "a\\nb\\tc\\x01");
  EXPECT_EQ(printable("abcdef", 3), "abc...");
  // "é" is two bytes: a cut in its middle moves back before it.
  EXPECT_EQ(printable("ab\xc3\xa9z", 3), "ab...");
  EXPECT_EQ(printable("ab\xc3\xa9z", 4), "ab\xc3\xa9...");
}

}  // namespace
}  // namespace vortex
