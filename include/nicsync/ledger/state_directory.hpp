#pragma once
/// \file
/// The state directory: where the ledger, the fingerprint key and cached tokens live, owned by
/// exactly one daemon at a time.

#include <filesystem>
#include <string>
#include <string_view>

#include "nicsync/core/result.hpp"

namespace nicsync::ledger {

/// An open, exclusively locked state directory (mode `0700`).
///
/// The lock is a `flock` on the file `lock` inside the directory, which holds the PID of the
/// owner for operators (and for the error a second instance reports). The kernel drops the lock
/// when the descriptor closes: on destruction, on exit, and on SIGKILL. The descriptor is
/// close-on-exec, so programs the daemon starts never inherit the lock.
class StateDirectory {
 public:
  /// Creates the directory if it is missing (parents with the default mode, the directory itself
  /// `0700`), tightens an existing one to `0700`, and takes the lock. Errors: `state_dir_locked`
  /// (the message names the PID that holds it), `io_error`.
  static Result<StateDirectory> open(const std::filesystem::path& path);

  StateDirectory(StateDirectory&& other) noexcept;
  StateDirectory& operator=(StateDirectory&& other) noexcept;
  StateDirectory(const StateDirectory&) = delete;
  StateDirectory& operator=(const StateDirectory&) = delete;
  ~StateDirectory();

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// The path of a file inside the directory.
  [[nodiscard]] std::filesystem::path file(std::string_view name) const { return path_ / name; }

  /// Whether a file can be created in the directory right now (for /readyz): creates and
  /// removes an unnamed file and writes one byte, without fsync, so it costs a few system calls
  /// on a healthy disk. Errors: `io_error` saying what is wrong (read-only, full, permissions).
  [[nodiscard]] Result<void> check_writable() const;

 private:
  StateDirectory(std::filesystem::path path, int dir_fd, int lock_fd) noexcept
      : path_(std::move(path)), dir_fd_(dir_fd), lock_fd_(lock_fd) {}
  void close() noexcept;

  std::filesystem::path path_;
  int dir_fd_ = -1;
  int lock_fd_ = -1;
};

}  // namespace nicsync::ledger
