// What the benchmarks that run the real programs share: order statistics of their samples, and a
// process environment that finds the build tree and never sends loopback traffic to a proxy.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <vector>

namespace nicsync::testing {

/// The nearest-rank value at `q` (0–1) of `v`; 0 for no samples.
inline double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

inline double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

/// Run by hand (no NICSYNC_BINARY_DIR from ctest): a benchmark is <build>/tests/nicsync_bench_…,
/// so the build tree that `built_program` searches is the parent of its directory.
inline void default_binary_dir_to_this_build() {
  if (std::getenv("NICSYNC_BINARY_DIR") != nullptr) return;
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  ::setenv("NICSYNC_BINARY_DIR", self.parent_path().parent_path().c_str(), 1);
}

/// libcurl honours these; a benchmark talks to loopback only.
inline void unset_proxy_env() {
  for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    ::unsetenv(v);
  }
}

}  // namespace nicsync::testing
