// Every error code says what happened and what to do, from one table (src/core/error.cpp), and
// the README's troubleshooting table is that table: the rows are rendered here from it and
// must equal the README's rows between its "error hints" markers. After changing a hint, run
// this test with NICSYNC_UPDATE_README=1 to write the rendered rows into README.md.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "nicsync/core/error_hint.hpp"

namespace nicsync {
namespace {

constexpr std::string_view kBegin = "<!-- error hints: begin (generated from src/core/error.cpp";
constexpr std::string_view kEnd = "<!-- error hints: end -->";

std::filesystem::path readme_path() {
  const char* dir = std::getenv("NICSYNC_SOURCE_DIR");
  return std::filesystem::path(dir != nullptr ? dir : ".") / "README.md";
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The rows for the README: codes with the same class, hint and action share a row, placed
// where the first of them is in the table.
std::string render_rows() {
  struct Row {
    std::vector<std::string_view> names;
    ErrorClass cls;
    ErrorHint hint;
  };
  std::vector<Row> rows;
  for (Errc e : all_error_codes()) {
    if (e == Errc::ok) continue;
    const ErrorHint h = error_hint(e);
    const ErrorClass cls = classify(e);
    auto same = std::find_if(rows.begin(), rows.end(), [&](const Row& r) {
      return r.cls == cls && r.hint.hint == h.hint && r.hint.next_action == h.next_action;
    });
    if (same != rows.end()) {
      same->names.push_back(errc_name(e));
    } else {
      rows.push_back({{errc_name(e)}, cls, h});
    }
  }
  std::string out = "| code | class | meaning | what to do |\n|---|---|---|---|\n";
  for (const auto& r : rows) {
    std::string names;
    for (auto n : r.names) names += fmt::format("{}`{}`", names.empty() ? "" : ", ", n);
    out += fmt::format("| {} | {} | {} | {} |\n", names, r.cls == ErrorClass::none ? "—" : to_string(r.cls),
                       r.hint.hint, r.hint.next_action);
  }
  return out;
}

TEST(ErrorHints, EveryCodeHasAHintAndANextAction) {
  std::set<std::string_view> names;
  for (Errc e : all_error_codes()) {
    const auto name = errc_name(e);
    EXPECT_NE(name, "unknown") << static_cast<int>(e);
    EXPECT_TRUE(names.insert(name).second) << name << " twice";
    const ErrorHint h = error_hint(e);
    EXPECT_FALSE(h.hint.empty()) << name << " has no hint";
    EXPECT_FALSE(h.next_action.empty()) << name << " has no next action";
    // They stand in a Markdown table and on one line of `nicsyncd status`.
    for (auto text : {h.hint, h.next_action}) {
      EXPECT_EQ(text.find_first_of("|\n"), std::string_view::npos) << name << ": " << text;
      EXPECT_EQ(std::count(text.begin(), text.end(), '`') % 2, 0) << name << ": unbalanced backquotes: " << text;
    }
    // The name finds the same hint (the ledger and /v1/status keep names, not numbers).
    auto by_name = error_hint(name);
    ASSERT_TRUE(by_name) << name;
    EXPECT_EQ(by_name->hint, h.hint);
  }
  EXPECT_FALSE(error_hint("system:111")) << "a foreign code has no hint of ours";
  EXPECT_FALSE(error_hint_or_general("system:111").next_action.empty()) << "but every code shown has one";
  EXPECT_EQ(error_hint_or_general("vault_sealed").hint, error_hint(Errc::vault_sealed).hint);
}

TEST(ErrorHints, EveryEnumeratorIsInTheTable) {
  // The enum's values are grouped by module in blocks of 100; any value in a block that the
  // category names must be in the table (a code added to the enum but not the table would
  // have neither a name nor a hint).
  const auto& cat = nicsync_category();
  const std::set<Errc> listed(all_error_codes().begin(), all_error_codes().end());
  for (int v = 0; v < 1000; ++v) {
    if (cat.message(v).starts_with("unknown nicsync error")) continue;
    EXPECT_TRUE(listed.count(static_cast<Errc>(v))) << v;
  }
}

TEST(ErrorHints, CredentialRejectedTellsWhatToDoAtTheDestination) {
  const ErrorHint h = error_hint(Errc::dest_credential_rejected);
  EXPECT_NE(h.next_action.find("e-invoice portal"), std::string_view::npos);
  EXPECT_NE(h.next_action.find("new version"), std::string_view::npos);
}

TEST(ErrorHints, ReadmeTroubleshootingTableIsTheCodeTable) {
  const auto path = readme_path();
  std::string readme = read(path);
  ASSERT_FALSE(readme.empty()) << path;
  const auto begin = readme.find(kBegin);
  ASSERT_NE(begin, std::string::npos) << path << " has no \"" << kBegin << "\" marker";
  const auto rows_at = readme.find('\n', begin) + 1;
  const auto end = readme.find(kEnd, rows_at);
  ASSERT_NE(end, std::string::npos) << path << " has no \"" << kEnd << "\" marker";
  const std::string expected = render_rows();
  if (const char* update = std::getenv("NICSYNC_UPDATE_README"); update != nullptr && std::string(update) == "1") {
    readme.replace(rows_at, end - rows_at, expected);
    std::ofstream(path, std::ios::binary) << readme;
    GTEST_SKIP() << "wrote the troubleshooting rows into " << path;
  }
  EXPECT_EQ(readme.substr(rows_at, end - rows_at), expected)
      << "README.md's troubleshooting table differs from the hint table in src/core/error.cpp; run this test "
         "with NICSYNC_UPDATE_README=1 to rewrite it";
}

}  // namespace
}  // namespace nicsync
