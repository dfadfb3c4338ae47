#pragma once
// What the chaos suite checks a run's record against: the secrets that must never show up, and
// each push as a destination received it.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace nicsync::chaos {

/// What must never appear where it does not belong. Nonces ("zq" + 14 hex) are the random part
/// of every planted password, so they are found even when the rest is escaped differently.
struct Needles {
  std::unordered_set<std::string> nonces;
  std::unordered_set<std::string> vault_tokens;  // "hvs." + 24 base62
  std::vector<std::string> plain;                // client secret, secret ids, ...

  [[nodiscard]] std::vector<std::string> find_in(std::string_view text) const {
    std::vector<std::string> hits;
    for (std::size_t p = text.find("zq"); p != std::string_view::npos; p = text.find("zq", p + 1)) {
      if (p + 16 <= text.size() && nonces.count(std::string(text.substr(p, 16))) != 0) {
        hits.push_back("planted password " + std::string(text.substr(p, 6)) + "…");
      }
    }
    for (std::size_t p = text.find("hvs."); p != std::string_view::npos; p = text.find("hvs.", p + 1)) {
      if (p + 28 <= text.size() && vault_tokens.count(std::string(text.substr(p, 28))) != 0) {
        hits.push_back("Vault token " + std::string(text.substr(p, 7)) + "…");
      }
    }
    for (const auto& s : plain) {
      if (!s.empty() && text.find(s) != std::string_view::npos) hits.push_back("secret " + s.substr(0, 4) + "…");
    }
    return hits;
  }
};

struct Received {
  std::uint64_t seq = 0;
  std::string dest;  // "cleartax" or "hook"
  int gstin = -1;
  std::int64_t version = 0;
  bool effective = false;  // the destination applied it
  bool ambiguous = false;  // applied, but the answer was lost (drop, hang, truncated)
  std::string outcome;
  std::string idempotency_key;
};

/// Exactly once in effect where the provider dedupes: every push of a version carries the same
/// Idempotency-Key, and no two versions share one. What is wrong, at most ten lines.
std::vector<std::string> idempotency_problems(const std::vector<Received>& all, const std::vector<std::string>& gstins);

/// Planted secrets found where they do not belong.
struct LeakScan {
  std::vector<std::string> leaks;
  int core_files = 0;
};
/// Every file under `dir` but what the daemon was given (credentials/, api-token); ClearTax
/// access tokens are allowed in their cache (*.token) only.
LeakScan scan_directory(const std::filesystem::path& dir, const Needles& needles,
                        const std::vector<std::string>& access_tokens);
/// One output (`what`: "/metrics", …) into `scan`.
void scan_text(LeakScan& scan, const std::string& what, std::string_view text, const Needles& needles,
               const std::vector<std::string>& access_tokens);

}  // namespace nicsync::chaos
