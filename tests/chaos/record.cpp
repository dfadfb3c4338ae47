#include "chaos/record.hpp"

#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "testing/world.hpp"

namespace nicsync::chaos {

std::vector<std::string> idempotency_problems(const std::vector<Received>& all,
                                              const std::vector<std::string>& gstins) {
  std::map<std::tuple<std::string, int, std::int64_t>, std::set<std::string>> keys_of;
  std::map<std::string, std::set<std::tuple<std::string, int, std::int64_t>>> versions_of;
  for (const auto& r : all) {
    if (r.gstin < 0) continue;
    keys_of[{r.dest, r.gstin, r.version}].insert(r.idempotency_key);
    versions_of[r.idempotency_key].insert({r.dest, r.gstin, r.version});
  }
  std::vector<std::string> problems;
  for (const auto& [key, ks] : keys_of) {
    if ((ks.size() != 1 || ks.begin()->empty()) && problems.size() < 10) {
      problems.push_back(fmt::format("{} {} v{}: {} different Idempotency-Keys", std::get<0>(key),
                                     gstins[static_cast<std::size_t>(std::get<1>(key))], std::get<2>(key), ks.size()));
    }
  }
  for (const auto& [k, vs] : versions_of) {
    if (vs.size() != 1 && problems.size() < 10) problems.push_back("one Idempotency-Key for several versions: " + k);
  }
  return problems;
}

LeakScan scan_directory(const std::filesystem::path& dir, const Needles& needles,
                        const std::vector<std::string>& access_tokens) {
  LeakScan scan;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const auto rel = std::filesystem::relative(entry.path(), dir).string();
    if (rel.starts_with("credentials/") || rel == "api-token") continue;  // given to the daemon, not kept by it
    if (entry.path().filename().string().starts_with("core")) ++scan.core_files;
    const std::string content = testing::read_all(entry.path());
    for (auto& hit : needles.find_in(content)) scan.leaks.push_back(rel + ": " + hit);
    if (!rel.ends_with(".token")) {  // ClearTax access tokens belong in their 0600 cache only
      for (const auto& t : access_tokens) {
        if (content.find(t) != std::string::npos) scan.leaks.push_back(rel + ": a ClearTax access token");
      }
    }
  }
  return scan;
}

void scan_text(LeakScan& scan, const std::string& what, std::string_view text, const Needles& needles,
               const std::vector<std::string>& access_tokens) {
  for (auto& hit : needles.find_in(text)) scan.leaks.push_back(what + ": " + hit);
  for (const auto& t : access_tokens) {
    if (text.find(t) != std::string_view::npos) scan.leaks.push_back(what + ": a ClearTax access token");
  }
}

}  // namespace nicsync::chaos
