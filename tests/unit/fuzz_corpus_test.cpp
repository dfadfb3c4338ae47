// Every fuzz target's corpus (tests/fuzz/corpus/<target>/: seeds and crash regressions) through
// the target's own entry function, in the normal build: inputs that once broke something keep
// being tried on every run, without clang or libFuzzer. A property a target checks ends the test
// process with the target, the property and the input.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fuzz/fuzz_target.hpp"
#include "fuzz/targets.hpp"

namespace nicsync::fuzz {
namespace {

namespace fs = std::filesystem;

fs::path corpus_root() {
  const char* src = std::getenv("NICSYNC_SOURCE_DIR");
  return fs::path(src != nullptr ? src : ".") / "tests" / "fuzz" / "corpus";
}

std::vector<fs::path> corpus_of(std::string_view target) {
  std::vector<fs::path> files;
  const fs::path dir = corpus_root() / std::string(target);
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FuzzCorpus : public ::testing::TestWithParam<Target> {};

}  // namespace

// gtest prints parameters with this (found by ADL): the target's name, not its bytes.
void PrintTo(const Target& target, std::ostream* os) { *os << target.name; }

namespace {

TEST_P(FuzzCorpus, EveryInputPasses) {
  const Target target = GetParam();
  const auto files = corpus_of(target.name);
  ASSERT_FALSE(files.empty()) << "no corpus in " << (corpus_root() / std::string(target.name))
                              << " (is NICSYNC_SOURCE_DIR set?)";
  for (const auto& file : files) {
    current_input() = file.string();
    const std::string bytes = read_all(file);
    // Own buffer of the exact size, so ASan builds see reads past the end as libFuzzer would.
    std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
    EXPECT_EQ(target.run(data.data(), data.size()), 0) << file;
  }
  current_input().clear();
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzCorpus, ::testing::ValuesIn(kTargets),
                         [](const ::testing::TestParamInfo<Target>& info) { return std::string(info.param.name); });

// A corpus folder without a target (or a target file without its list entry) would be skipped
// silently.
TEST(FuzzCorpusLayout, EveryCorpusFolderHasATarget) {
  std::set<std::string> known;
  for (const auto& t : kTargets) known.emplace(t.name);
  ASSERT_TRUE(fs::is_directory(corpus_root())) << corpus_root();
  for (const auto& entry : fs::directory_iterator(corpus_root())) {
    EXPECT_TRUE(known.count(entry.path().filename().string()))
        << entry.path() << " has no entry in tests/fuzz/targets.hpp";
  }
  for (const auto& entry : fs::directory_iterator(corpus_root().parent_path())) {
    if (entry.path().extension() == ".cpp") {
      EXPECT_TRUE(known.count(entry.path().stem().string()))
          << entry.path() << " is not listed in tests/fuzz/targets.hpp";
    }
  }
}

}  // namespace
}  // namespace nicsync::fuzz
