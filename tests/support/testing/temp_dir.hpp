#pragma once
// A fresh directory under $TMPDIR, removed with everything in it when the object goes.

#include <filesystem>
#include <string>

namespace nicsync::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "nicsync-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }
  /// Keep the directory (e.g. to look at it after a failure).
  void keep() noexcept { keep_ = true; }

 private:
  std::filesystem::path path_;
  bool keep_ = false;
};

/// Writes `content` to `path` (mode 0600), replacing it.
void write_file(const std::string& path, std::string_view content);
std::string read_file(const std::string& path);

}  // namespace nicsync::testing
