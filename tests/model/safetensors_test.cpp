#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "model/test_files.h"

namespace vortex {
namespace {

using testing::contains;
using testing::error_of;

Tensor f32_tensor(Shape shape, float start) {
  Tensor t = Tensor::empty(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = start + 0.5f * i;
  return t;
}

Tensor half_tensor(DType dtype, Shape shape, float start) {
  Tensor t = Tensor::empty(dtype, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) {
    float v = start - 0.25f * i;
    t.data_as<uint16_t>()[i] = dtype == DType::kBF16 ? f32_to_bf16(v) : f32_to_f16(v);
  }
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

// Writes a file with a hand-made header and `data_bytes` bytes of data.
void write_raw(const std::string& path, const std::string& header, size_t data_bytes) {
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (8 * i));
  bytes += header;
  bytes.append(data_bytes, '\x01');
  testing::write_text(path, bytes);
}

std::string open_error(const std::string& path) {
  return error_of([&] { SafetensorsArchive::open_file(path); });
}

TEST(Safetensors, RoundTripsEveryDtypeWithMetadata) {
  testing::TempDir dir;
  Tensor i32 = Tensor::empty(DType::kI32, {3});
  for (int i = 0; i < 3; ++i) i32.data_as<int32_t>()[i] = -i;
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"b.bf16", half_tensor(DType::kBF16, {3, 5}, 1.0f)},
      {"a.f32", f32_tensor({2, 3, 4}, -2.0f)},
      {"c.f16", half_tensor(DType::kF16, {7}, 3.0f)},
      {"d.i32", i32},
  };
  write_safetensors(dir.file("x.safetensors"), tensors, Json{{"format", "pt"}});

  SafetensorsArchive archive = SafetensorsArchive::open_file(dir.file("x.safetensors"));
  EXPECT_EQ(archive.names(), (std::vector<std::string>{"a.f32", "b.bf16", "c.f16", "d.i32"}));
  EXPECT_EQ(archive.metadata().at("format"), "pt");
  for (const auto& [name, t] : tensors) {
    const TensorEntry* e = archive.find(name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->name, name);
    EXPECT_EQ(e->file, dir.file("x.safetensors"));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(e->data) % dtype_size(e->dtype), 0u) << name;
    Tensor back = archive.tensor(name);
    EXPECT_TRUE(same_bytes(back, t)) << name;
    EXPECT_EQ(back.data(), e->data) << "a view into the map, not a copy";
  }
  EXPECT_EQ(archive.find("absent"), nullptr);
}

TEST(Safetensors, ScalarsAndEmptyTensorsRoundTrip) {
  testing::TempDir dir;
  write_safetensors(dir.file("x.safetensors"),
                    {{"scalar", f32_tensor({}, 7.0f)}, {"empty", f32_tensor({0, 4}, 0.0f)}});
  SafetensorsArchive archive = SafetensorsArchive::open_file(dir.file("x.safetensors"));
  EXPECT_EQ(archive.tensor("scalar").shape(), Shape{});
  EXPECT_EQ(archive.tensor("scalar").data_as<float>()[0], 7.0f);
  EXPECT_EQ(archive.tensor("empty").shape(), (Shape{0, 4}));
  EXPECT_TRUE(archive.metadata().empty());
}

TEST(Safetensors, TensorViewOutlivesTheArchive) {
  testing::TempDir dir;
  Tensor t = f32_tensor({4, 4}, 1.0f);
  write_safetensors(dir.file("x.safetensors"), {{"w", t}});
  Tensor view;
  {
    SafetensorsArchive archive = SafetensorsArchive::open_file(dir.file("x.safetensors"));
    view = archive.tensor("w");
  }
  EXPECT_TRUE(same_bytes(view, t));
}

TEST(Safetensors, AbsentTensorIsAnErrorNamingIt) {
  testing::TempDir dir;
  write_safetensors(dir.file("x.safetensors"), {{"w", f32_tensor({1}, 0.0f)}});
  SafetensorsArchive archive = SafetensorsArchive::open_file(dir.file("x.safetensors"));
  EXPECT_TRUE(contains(error_of([&] { archive.tensor("v"); }),
                       dir.file("x.safetensors") + ": no tensor named 'v'"));
}

TEST(Safetensors, OpenDirReadsASingleFile) {
  testing::TempDir dir;
  write_safetensors(dir.file("model.safetensors"), {{"w", f32_tensor({2}, 1.0f)}});
  SafetensorsArchive archive = SafetensorsArchive::open_dir(dir.path());
  EXPECT_EQ(archive.names(), std::vector<std::string>{"w"});
  EXPECT_EQ(archive.source(), dir.file("model.safetensors"));
}

TEST(Safetensors, OpenDirReadsShardsThroughTheIndex) {
  testing::TempDir dir;
  Tensor a = f32_tensor({2, 2}, 1.0f), b = half_tensor(DType::kBF16, {3}, 2.0f),
         c = half_tensor(DType::kF16, {5}, 0.0f);
  write_safetensors(dir.file("model-00001-of-00002.safetensors"), {{"a", a}, {"b", b}});
  write_safetensors(dir.file("model-00002-of-00002.safetensors"), {{"c", c}});
  testing::write_text(dir.file("model.safetensors.index.json"), R"({
    "metadata": {"total_size": 42},
    "weight_map": {"a": "model-00001-of-00002.safetensors",
                   "b": "model-00001-of-00002.safetensors",
                   "c": "model-00002-of-00002.safetensors"}})");
  // A stray single file must not be used when there is an index.
  write_safetensors(dir.file("model.safetensors"), {{"stray", a}});

  SafetensorsArchive archive = SafetensorsArchive::open_dir(dir.path());
  EXPECT_EQ(archive.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(same_bytes(archive.tensor("a"), a));
  EXPECT_TRUE(same_bytes(archive.tensor("b"), b));
  EXPECT_TRUE(same_bytes(archive.tensor("c"), c));
  EXPECT_EQ(archive.find("c")->file, dir.file("model-00002-of-00002.safetensors"));
}

TEST(SafetensorsErrors, DirectoryWithoutCheckpoint) {
  testing::TempDir dir;
  EXPECT_TRUE(contains(error_of([&] { SafetensorsArchive::open_dir(dir.path()); }),
                       dir.path() + ": has neither model.safetensors nor"));
  EXPECT_TRUE(contains(error_of([&] { SafetensorsArchive::open_dir(dir.file("nope")); }),
                       dir.file("nope") + ": not a directory"));
}

TEST(SafetensorsErrors, MissingFile) {
  testing::TempDir dir;
  EXPECT_TRUE(contains(open_error(dir.file("absent.safetensors")),
                       dir.file("absent.safetensors") + ": cannot open"));
}

TEST(SafetensorsErrors, FileShorterThanTheLengthPrefix) {
  testing::TempDir dir;
  testing::write_text(dir.file("x.safetensors"), "abcde");
  EXPECT_TRUE(contains(open_error(dir.file("x.safetensors")),
                       dir.file("x.safetensors") + ": not a safetensors file: 5 bytes"));
}

TEST(SafetensorsErrors, HeaderLengthBeyondTheFile) {
  testing::TempDir dir;
  std::string bytes(10, '\0');
  bytes[0] = '\xff';  // a header of 255 bytes in a file of 10
  testing::write_text(dir.file("x.safetensors"), bytes);
  EXPECT_TRUE(contains(open_error(dir.file("x.safetensors")),
                       dir.file("x.safetensors") + ": header length 255 runs past the end"));
}

TEST(SafetensorsErrors, HeaderNotJsonOrNotAnObject) {
  testing::TempDir dir;
  write_raw(dir.file("x.safetensors"), "{\"w\": {", 0);
  EXPECT_TRUE(contains(open_error(dir.file("x.safetensors")),
                       dir.file("x.safetensors") + ": safetensors header: invalid JSON"));
  write_raw(dir.file("x.safetensors"), "[1, 2]", 0);
  EXPECT_TRUE(contains(open_error(dir.file("x.safetensors")),
                       dir.file("x.safetensors") + ": safetensors header must be a JSON object"));
}

TEST(SafetensorsErrors, EntryMissingDtypeShapeOrOffsets) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", 8);
  EXPECT_TRUE(contains(open_error(path), path + ": tensor 'w' has no 'dtype'"));
  write_raw(path, R"({"w": {"dtype": "F32", "data_offsets": [0, 8]}})", 8);
  EXPECT_TRUE(contains(open_error(path), path + ": tensor 'w' has no 'shape'"));
  write_raw(path, R"({"w": {"dtype": "F32", "shape": [2]}})", 8);
  EXPECT_TRUE(contains(open_error(path), path + ": tensor 'w' has no 'data_offsets'"));
  write_raw(path, R"({"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 8]}})", 8);
  EXPECT_TRUE(contains(open_error(path), "tensor 'w' has a 'shape' that is not a list of non-neg"));
  write_raw(path, R"({"w": [1]})", 0);
  EXPECT_TRUE(contains(open_error(path), "tensor 'w' has a header entry that is not an object"));
  write_raw(path, R"({"__metadata__": {"n": 1}})", 0);
  EXPECT_TRUE(contains(open_error(path), "'__metadata__' entry 'n' is not a string"));
}

TEST(SafetensorsErrors, UnsupportedDtypeIsNamed) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, R"({"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})", 8);
  std::string e = open_error(path);
  EXPECT_TRUE(contains(e, path + ": tensor 'w' has unsupported dtype 'F64'"));
  EXPECT_TRUE(contains(e, "supported: F32, F16, BF16, I32, I64, U8"));
}

TEST(SafetensorsErrors, OffsetsThatDoNotMatchTheShape) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, R"({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 8]}})", 16);
  EXPECT_TRUE(contains(open_error(path), path + ": tensor 'w' has data_offsets [0,8] spanning 8 "
                                                "bytes, but shape [2, 3] of BF16 needs 12 bytes"));
  write_raw(path, R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 16);
  EXPECT_TRUE(contains(open_error(path), "tensor 'w' has 'data_offsets' [8,4], expected"));
  write_raw(path, R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 16);
  EXPECT_TRUE(contains(open_error(path), "tensor 'w' has 'data_offsets' [0], expected"));
}

TEST(SafetensorsErrors, OffsetsBeyondTheData) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})", 16);
  EXPECT_TRUE(contains(open_error(path), path + ": tensor 'w' has data_offsets [8,24] beyond the "
                                                "end of the data section (16 bytes)"));
}

TEST(SafetensorsErrors, TruncatedFileNamesFileAndTensor) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_safetensors(path, {{"first", f32_tensor({64}, 0.0f)}, {"second", f32_tensor({64}, 0.0f)}});
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);
  std::string e = open_error(path);
  EXPECT_TRUE(contains(e, path + ": tensor 'second'"));
  EXPECT_TRUE(contains(e, "truncated"));
}

TEST(SafetensorsErrors, IndexNamingAMissingShard) {
  testing::TempDir dir;
  write_safetensors(dir.file("shard-1.safetensors"), {{"a", f32_tensor({1}, 0.0f)}});
  testing::write_text(
      dir.file("model.safetensors.index.json"),
      R"({"weight_map": {"a": "shard-1.safetensors", "b": "shard-2.safetensors"}})");
  std::string e = error_of([&] { SafetensorsArchive::open_dir(dir.path()); });
  EXPECT_TRUE(contains(e, dir.file("model.safetensors.index.json") +
                              ": shard 'shard-2.safetensors' (holding tensor 'b') is missing"));
}

TEST(SafetensorsErrors, IndexListingATensorItsShardLacks) {
  testing::TempDir dir;
  write_safetensors(dir.file("shard-1.safetensors"), {{"a", f32_tensor({1}, 0.0f)}});
  testing::write_text(
      dir.file("model.safetensors.index.json"),
      R"({"weight_map": {"a": "shard-1.safetensors", "b": "shard-1.safetensors"}})");
  std::string e = error_of([&] { SafetensorsArchive::open_dir(dir.path()); });
  EXPECT_TRUE(contains(e, dir.file("model.safetensors.index.json") +
                              ": lists tensor 'b' in shard 'shard-1.safetensors', but that shard "
                              "has no such tensor"));
}

TEST(SafetensorsErrors, IndexWithoutWeightMap) {
  testing::TempDir dir;
  testing::write_text(dir.file("model.safetensors.index.json"), R"({"metadata": {}})");
  EXPECT_TRUE(contains(error_of([&] { SafetensorsArchive::open_dir(dir.path()); }),
                       "model.safetensors.index.json: missing field 'weight_map'"));
  testing::write_text(dir.file("model.safetensors.index.json"), R"({"weight_map": {"a": 3}})");
  EXPECT_TRUE(contains(error_of([&] { SafetensorsArchive::open_dir(dir.path()); }),
                       "gives tensor 'a' a shard that is not a string"));
}

TEST(SafetensorsErrors, CorruptShardIsNamed) {
  testing::TempDir dir;
  testing::write_text(dir.file("shard-1.safetensors"), "xyz");
  testing::write_text(dir.file("model.safetensors.index.json"),
                      R"({"weight_map": {"a": "shard-1.safetensors"}})");
  EXPECT_TRUE(contains(error_of([&] { SafetensorsArchive::open_dir(dir.path()); }),
                       dir.file("shard-1.safetensors") + ": not a safetensors file"));
}

TEST(SafetensorsWriter, RejectsDuplicateNamesAndBadMetadata) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  Tensor t = f32_tensor({1}, 0.0f);
  EXPECT_TRUE(contains(error_of([&] {
                         write_safetensors(path, {{"w", t}, {"w", t}});
                       }),
                       path + ": tensor 'w' is given twice"));
  EXPECT_TRUE(contains(error_of([&] {
                         write_safetensors(path, {{"w", Tensor()}});
                       }),
                       "tensor 'w' is undefined"));
  EXPECT_TRUE(contains(error_of([&] {
                         write_safetensors(path, {{"w", t}}, Json{{"n", 1}});
                       }),
                       "metadata 'n' must be a string"));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SafetensorsWriter, UnwritablePathIsAnError) {
  testing::TempDir dir;
  std::string path = dir.file("no/such/dir/x.safetensors");
  EXPECT_TRUE(contains(error_of([&] {
                         write_safetensors(path, {{"w", f32_tensor({1}, 0.0f)}});
                       }),
                       path + ": cannot create"));
}

}  // namespace
}  // namespace vortex
