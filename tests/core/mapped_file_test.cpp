// MappedFile maps regular files only: a directory, FIFO or device is refused by name before it
// is opened, so a FIFO where a checkpoint should be cannot block the process.
#include "core/mapped_file.h"

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

std::string error_of_open(const std::string& path) {
  try {
    MappedFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

class MappedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vortex_mapped_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(MappedFileTest, MapsARegularFileAndAnEmptyOne) {
  std::ofstream(file("a.bin"), std::ios::binary) << "hello";
  auto f = MappedFile::open(file("a.bin"));
  ASSERT_EQ(f->size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->data()), 5), "hello");
  std::ofstream(file("empty.bin"), std::ios::binary);
  EXPECT_EQ(MappedFile::open(file("empty.bin"))->size(), 0u);
}

TEST_F(MappedFileTest, MissingFileDirectoryFifoAndDeviceAreNamed) {
  EXPECT_EQ(error_of_open(file("absent")),
            file("absent") + ": cannot open: No such file or directory");
  fs::create_directory(file("dir"));
  EXPECT_EQ(error_of_open(file("dir")), file("dir") + ": is a directory, expected a file");
  ASSERT_EQ(::mkfifo(file("fifo").c_str(), 0600), 0);
  EXPECT_EQ(error_of_open(file("fifo")), file("fifo") + ": is a FIFO, expected a file");
  EXPECT_EQ(error_of_open("/dev/zero"), "/dev/zero: is a device, expected a file");
}

TEST_F(MappedFileTest, SymlinksToRegularFilesAreFollowed) {
  std::ofstream(file("target.bin"), std::ios::binary) << "xy";
  fs::create_symlink(file("target.bin"), file("link.bin"));
  EXPECT_EQ(MappedFile::open(file("link.bin"))->size(), 2u);
  fs::create_symlink(file("nowhere"), file("dangling.bin"));
  EXPECT_EQ(error_of_open(file("dangling.bin")),
            file("dangling.bin") + ": cannot open: No such file or directory");
}

}  // namespace
}  // namespace vortex
