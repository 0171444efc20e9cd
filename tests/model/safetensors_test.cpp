#include "model/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

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

// `header` padded with spaces so that the data section starts `residue` bytes past a multiple of 8.
std::string padded(std::string header, size_t residue) {
  while ((8 + header.size()) % 8 != residue) header += ' ';
  return header;
}

void write_prefix_only(const std::string& path, uint64_t header_len, size_t file_bytes) {
  std::string bytes(file_bytes, ' ');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(header_len >> (8 * i));
  testing::write_text(path, bytes);
}

TEST(SafetensorsHostile, HeaderLengthOverTheLimitIsRefusedBeforeReading) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_prefix_only(path, 200'000'000, 16);
  EXPECT_EQ(open_error(path), path +
                                  ": header length 200000000 is over the limit of 100000000 "
                                  "bytes: not a safetensors file, or corrupt");
  write_prefix_only(path, ~uint64_t{0}, 16);
  EXPECT_TRUE(contains(open_error(path), "header length 18446744073709551615 is over the limit"));
}

TEST(SafetensorsHostile, EmptyFileIsNamed) {
  testing::TempDir dir;
  testing::write_text(dir.file("x.safetensors"), "");
  EXPECT_EQ(
      open_error(dir.file("x.safetensors")),
      dir.file("x.safetensors") +
          ": not a safetensors file: 0 bytes is shorter than the 8-byte header length prefix");
}

TEST(SafetensorsHostile, DeeplyNestedHeaderIsAnErrorNotAStackOverflow) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, "{\"w\": " + std::string(200000, '['), 0);
  EXPECT_EQ(open_error(path), path +
                                  ": safetensors header: JSON nested deeper than 128 levels "
                                  "(the limit) at byte 133");
}

TEST(SafetensorsHostile, DuplicateTensorNamesAreRefused) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path,
            padded(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                   R"( "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                   0),
            8);
  EXPECT_EQ(open_error(path), path +
                                  ": safetensors header: the key \"w\" appears twice in the "
                                  "top-level object");
}

TEST(SafetensorsHostile, MisalignedDataIsRefused) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  // The data section starts one byte past a multiple of 8: an F32 at offset 0 is misaligned.
  std::string header =
      padded(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 1);
  write_raw(path, header, 4);
  const uint64_t start = 8 + header.size();
  EXPECT_EQ(open_error(path),
            path + ": tensor 'w' starts at byte " + std::to_string(start) +
                " of the file, which is not a multiple of the 4-byte size of F32: misaligned "
                "data cannot be used in place (rewrite the file with the safetensors library)");
  // An aligned section with an odd offset inside it.
  write_raw(path, padded(R"({"w": {"dtype": "BF16", "shape": [1], "data_offsets": [1, 3]}})", 0),
            4);
  EXPECT_TRUE(contains(open_error(path), "not a multiple of the 2-byte size of BF16"));
  // Bytes have no alignment to keep.
  write_raw(path, padded(R"({"w": {"dtype": "U8", "shape": [3], "data_offsets": [1, 4]}})", 3), 4);
  EXPECT_EQ(SafetensorsArchive::open_file(path).size(), 1u);
}

TEST(SafetensorsHostile, OverlappingTensorsAreRefused) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path,
            padded(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                   R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                   0),
            12);
  EXPECT_EQ(open_error(path), path +
                                  ": tensors 'a' (bytes 0..8) and 'b' (bytes 4..12) overlap in "
                                  "the data section");
  // Empty tensors occupy no bytes, wherever they point.
  write_raw(path,
            padded(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                   R"( "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}})",
                   0),
            8);
  EXPECT_EQ(SafetensorsArchive::open_file(path).size(), 2u);
}

TEST(SafetensorsHostile, HugeOrTooManyDimensionsAreRefused) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path,
            R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})",
            0);
  EXPECT_EQ(open_error(path),
            path + ": tensor 'w' has a shape [4294967296,4294967296] too large to address");
  write_raw(path,
            R"({"w": {"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 0]}})",
            0);
  EXPECT_TRUE(contains(open_error(path), "has a 'shape' that is not a list of non-negative"));
  write_raw(path, R"({"w": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}})", 8);
  EXPECT_TRUE(contains(open_error(path), "has a 'shape' that is not a list of non-negative"));
  write_raw(path,
            "{\"w\": {\"dtype\": \"F32\", \"shape\": [" + std::string(40, '1') +
                "], \"data_offsets\": [0, 4]}}",
            4);
  EXPECT_TRUE(contains(open_error(path), "tensor 'w' has a 'shape' that is not a list"));
  std::string dims = "1";
  for (int i = 0; i < 16; ++i) dims += ",1";
  write_raw(
      path,
      padded("{\"w\": {\"dtype\": \"F32\", \"shape\": [" + dims + "], \"data_offsets\": [0, 4]}}",
             0),
      4);
  EXPECT_EQ(open_error(path), path +
                                  ": tensor 'w' has a shape of 17 dimensions; at most 16 are "
                                  "supported");
  // A zero makes any other dimension harmless: the tensor is empty.
  write_raw(path,
            R"({"w": {"dtype": "F32", "shape": [0, 4611686018427387904], "data_offsets": [0, 0]}})",
            0);
  EXPECT_EQ(SafetensorsArchive::open_file(path).find("w")->shape, (Shape{0, 4611686018427387904}));
  // The end offset cannot wrap around.
  write_raw(path,
            R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 18446744073709551615]}})",
            4);
  EXPECT_TRUE(contains(open_error(path), "bytes, but shape [1] of F32 needs 4 bytes"));
}

TEST(SafetensorsHostile, MetadataMustBeNullOrAnObjectOfStrings) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, R"({"__metadata__": null})", 0);
  EXPECT_TRUE(SafetensorsArchive::open_file(path).metadata().empty());
  write_raw(path, R"({"__metadata__": [1, 2]})", 0);
  EXPECT_EQ(open_error(path), path + ": '__metadata__' must be an object of strings, got [1,2]");
  write_raw(path, R"({"__metadata__": {"format": {"deep": 1}}})", 0);
  EXPECT_EQ(open_error(path),
            path + ": '__metadata__' entry 'format' is not a string: {\"deep\":1}");
}

TEST(SafetensorsHostile, MessagesQuoteHostileNamesAndValuesOnOneBoundedLine) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  std::string big = "[";
  for (int i = 0; i < 50000; ++i) big += "1,";
  big += "1]";
  write_raw(path, "{\"line\\nbreak\": " + big + "}", 0);
  std::string e = open_error(path);
  EXPECT_TRUE(contains(e, path + ": tensor 'line\\nbreak' has a header entry that is not an "
                                 "object: [1,1,1,"));
  EXPECT_EQ(e.find('\n'), std::string::npos);
  EXPECT_LT(e.size(), path.size() + 200);
  write_raw(path, "{\"" + std::string(5000, 'n') + "\": {}}", 0);
  e = open_error(path);
  EXPECT_TRUE(contains(e, "nnn...' has no 'dtype'"));
  EXPECT_LT(e.size(), path.size() + 200);
}

TEST(SafetensorsHostile, DirectoriesAndFifosAreRefusedWithoutBlocking) {
  testing::TempDir dir;
  std::filesystem::create_directory(dir.file("model.safetensors"));
  EXPECT_EQ(error_of([&] { SafetensorsArchive::open_dir(dir.path()); }),
            dir.file("model.safetensors") + ": is a directory, expected a file");
  std::filesystem::remove(dir.file("model.safetensors"));
  ASSERT_EQ(::mkfifo(dir.file("model.safetensors").c_str(), 0600), 0);
  EXPECT_EQ(error_of([&] { SafetensorsArchive::open_dir(dir.path()); }),
            dir.file("model.safetensors") + ": is a FIFO, expected a file");
}

TEST(SafetensorsHostile, ShardNamesMustStayInsideTheModelDirectory) {
  testing::TempDir dir;
  write_safetensors(dir.file("shard.safetensors"), {{"a", f32_tensor({1}, 0.0f)}});
  const std::string index = dir.file("model.safetensors.index.json");
  auto index_error = [&](const std::string& shard_json) {
    testing::write_text(index, "{\"weight_map\": {\"a\": " + shard_json + "}}");
    return error_of([&] { SafetensorsArchive::open_dir(dir.path()); });
  };
  const std::string prefix = index + ": field 'weight_map' gives tensor 'a' the shard ";
  EXPECT_EQ(index_error("\"/etc/passwd\""),
            prefix +
                "'/etc/passwd', which is an absolute path; shards must be inside the model "
                "directory");
  EXPECT_EQ(index_error("\"../shard.safetensors\""),
            prefix + "'../shard.safetensors', which climbs out of the model directory with '..'");
  EXPECT_EQ(index_error("\"sub/../../x.safetensors\""),
            prefix +
                "'sub/../../x.safetensors', which climbs out of the model directory with "
                "'..'");
  EXPECT_EQ(index_error("\"\""), prefix + "'', which is empty");
  EXPECT_EQ(index_error("\"a\\u0000b\""), prefix + "'a\\x00b', which holds a control character");
  EXPECT_EQ(index_error("[\"shard.safetensors\"]"),
            index +
                ": field 'weight_map' gives tensor 'a' a shard that is not a string: "
                "[\"shard.safetensors\"]");
  // A relative path that stays inside, spelled with "./", is the same shard.
  testing::write_text(index, R"({"weight_map": {"a": "./shard.safetensors"}})");
  EXPECT_EQ(SafetensorsArchive::open_dir(dir.path()).names(), std::vector<std::string>{"a"});
  // A shard that is a directory is named.
  std::filesystem::create_directory(dir.file("sub"));
  EXPECT_EQ(index_error("\"sub\""), dir.file("sub") + ": is a directory, expected a file");
}

TEST(SafetensorsHostile, IndexMustBeABoundedObject) {
  testing::TempDir dir;
  const std::string index = dir.file("model.safetensors.index.json");
  testing::write_text(index, R"({"weight_map": [1, 2, 3]})");
  EXPECT_EQ(error_of([&] { SafetensorsArchive::open_dir(dir.path()); }),
            index + ": field 'weight_map' must be an object of name: shard, got [1,2,3]");
  testing::write_text(index, "{\"weight_map\": " + std::string(100000, '['));
  EXPECT_TRUE(contains(error_of([&] { SafetensorsArchive::open_dir(dir.path()); }),
                       index + ": JSON nested deeper than 128 levels"));
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
