#pragma once
// Child processes for e2e tests: output captured through pipes by a reader thread, waits are
// event-driven (condition variable on output, pidfd for exit), and a process still running
// when the object goes is killed.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace nicsync::testing {

struct ProcessOptions {
  std::vector<std::string> argv;       ///< argv[0] is the program path
  std::vector<std::string> env;        ///< extra or overriding KEY=VALUE entries
  std::vector<std::string> unset_env;  ///< variables removed from the inherited environment
  std::string cwd;
  /// Copy everything the child writes to this file too (for post-mortem and secret scans).
  std::string log_file;
};

class Process {
 public:
  explicit Process(ProcessOptions options);  ///< starts the child; throws if it cannot
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  void signal(int sig) const;
  /// SIGKILL and reap.
  void kill();
  /// Waits for the exit; returns the exit code, or 128+signal if it was killed; nothing on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] bool running();
  /// Waits until combined stdout+stderr contains `needle` (searching from `from`); returns the
  /// offset just past the match, or nothing on timeout or if the child exited first.
  std::optional<std::size_t> wait_for_output(const std::string& needle, std::chrono::milliseconds timeout,
                                             std::size_t from = 0);
  /// Everything the child wrote so far (stdout and stderr interleaved as read).
  [[nodiscard]] std::string output() const;

 private:
  void reader(int out_fd, int err_fd);

  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<int> status_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string output_;
  bool eof_ = false;
  std::string log_file_;
  std::thread reader_;
};

/// Path of a program built by this project (from NICSYNC_BINARY_DIR set by ctest).
std::string built_program(const std::string& relative);
/// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

}  // namespace nicsync::testing
