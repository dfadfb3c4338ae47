#include "nicsync/ledger/state_directory.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

namespace nicsync::ledger {
namespace {

constexpr std::string_view kLockFileName = "lock";
// Below this much free space /readyz reports the directory as not writable: SQLite needs room
// for the WAL and a checkpoint, and failing readiness early beats failing a commit.
constexpr unsigned long long kMinFreeBytes = 1ull << 20;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

Error io_error(std::string message) { return Error(Errc::io_error, std::move(message)); }

int retry_eintr(auto&& call) {
  int rc;
  do {
    rc = call();
  } while (rc < 0 && errno == EINTR);
  return rc;
}

// The PID recorded in the lock file by its holder, or 0 if not (yet) recorded.
long read_holder_pid(int lock_fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(lock_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  long pid = 0;
  const auto [ptr, ec] = std::from_chars(buf, buf + n, pid);
  (void)ptr;
  return ec == std::errc() && pid > 0 ? pid : 0;
}

}  // namespace

Result<StateDirectory> StateDirectory::open(const std::filesystem::path& path) {
  if (path.empty()) return io_error("state directory path is empty; set state_dir in the configuration");
  std::error_code ec;
  if (path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return io_error(
          fmt::format("cannot create the parent of state directory {}: {}; create it or choose another "
                      "state_dir",
                      path.string(), ec.message()));
    }
  }
  if (::mkdir(path.c_str(), 0700) == 0) {
    // A new directory's name must survive a power cut along with the ledger inside it.
    const auto parent = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    if (const int pfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); pfd >= 0) {
      ::fsync(pfd);
      ::close(pfd);
    }
  } else if (errno != EEXIST) {
    return io_error(
        fmt::format("cannot create state directory {}: {}; create it (mode 0700) or choose another "
                    "state_dir",
                    path.string(), errno_text(errno)));
  }
  const int dir_fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    return io_error(fmt::format("cannot open state directory {}: {}", path.string(), errno_text(errno)));
  }
  StateDirectory dir(path, dir_fd, -1);

  struct stat st {};
  if (::fstat(dir_fd, &st) != 0) {
    return io_error(fmt::format("cannot stat state directory {}: {}", path.string(), errno_text(errno)));
  }
  if (st.st_uid != ::geteuid()) {
    return io_error(
        fmt::format("state directory {} belongs to uid {}, not to uid {} running nicsyncd; chown it or "
                    "run as its owner",
                    path.string(), st.st_uid, ::geteuid()));
  }
  // Only the daemon's user may look inside: the fingerprint key and cached access tokens live here.
  if ((st.st_mode & 07777) != 0700 && ::fchmod(dir_fd, 0700) != 0) {
    return io_error(fmt::format("cannot set mode 0700 on state directory {}: {}", path.string(), errno_text(errno)));
  }

  const int lock_fd = ::openat(dir_fd, kLockFileName.data(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock_fd < 0) {
    const int err = errno;
    return io_error(fmt::format("cannot open lock file {}: {}{}", dir.file(kLockFileName).string(), errno_text(err),
                                err == EACCES || err == EPERM
                                    ? fmt::format("; the files in the state directory must belong to uid {} running "
                                                  "nicsyncd (chown -R it)",
                                                  ::geteuid())
                                    : std::string()));
  }
  dir.lock_fd_ = lock_fd;
  if (retry_eintr([&] { return ::flock(lock_fd, LOCK_EX | LOCK_NB); }) != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK) {
      return io_error(fmt::format("cannot lock {}: {}", dir.file(kLockFileName).string(), errno_text(err)));
    }
    const long pid = read_holder_pid(lock_fd);
    const std::string holder = pid > 0 ? fmt::format("another nicsyncd (PID {})", pid)
                                       : std::string("another process (its PID is not recorded yet)");
    return Error(Errc::state_dir_locked,
                 fmt::format("state directory {} is in use by {}; stop that process first, or give this one "
                             "another state_dir",
                             path.string(), holder));
  }
  const std::string pid_line = fmt::format("{}\n", ::getpid());
  if (::ftruncate(lock_fd, 0) != 0 ||
      ::pwrite(lock_fd, pid_line.data(), pid_line.size(), 0) != static_cast<ssize_t>(pid_line.size())) {
    return io_error(fmt::format("cannot write the PID to {}: {}", dir.file(kLockFileName).string(), errno_text(errno)));
  }
  return dir;
}

StateDirectory::StateDirectory(StateDirectory&& other) noexcept
    : path_(std::move(other.path_)),
      dir_fd_(std::exchange(other.dir_fd_, -1)),
      lock_fd_(std::exchange(other.lock_fd_, -1)) {}

StateDirectory& StateDirectory::operator=(StateDirectory&& other) noexcept {
  if (this != &other) {
    close();
    path_ = std::move(other.path_);
    dir_fd_ = std::exchange(other.dir_fd_, -1);
    lock_fd_ = std::exchange(other.lock_fd_, -1);
  }
  return *this;
}

StateDirectory::~StateDirectory() { close(); }

void StateDirectory::close() noexcept {
  // Closing the descriptor releases the flock; the PID stays in the file (harmless: a stale
  // PID is only ever shown while someone holds the lock).
  if (lock_fd_ >= 0) ::close(std::exchange(lock_fd_, -1));
  if (dir_fd_ >= 0) ::close(std::exchange(dir_fd_, -1));
}

Result<void> StateDirectory::check_writable() const {
  if (dir_fd_ < 0) return io_error("state directory is not open");
  struct statvfs vfs {};
  if (::fstatvfs(dir_fd_, &vfs) == 0) {
    if ((vfs.f_flag & ST_RDONLY) != 0) {
      return io_error(fmt::format("state directory {} is on a read-only file system", path_.string()));
    }
    const unsigned long long free_bytes =
        static_cast<unsigned long long>(vfs.f_bavail) * static_cast<unsigned long long>(vfs.f_frsize);
    if (free_bytes < kMinFreeBytes) {
      return io_error(fmt::format("the disk holding state directory {} is full ({} bytes free); free some space",
                                  path_.string(), free_bytes));
    }
  }
  // An unnamed file never shows up in the directory and vanishes on close, even if we crash.
  bool named = false;
  int fd = retry_eintr([&] { return ::openat(dir_fd_, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600); });
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
    named = true;
    fd = retry_eintr([&] {
      return ::openat(dir_fd_, ".writable-probe", O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    });
  }
  if (fd < 0) {
    return io_error(fmt::format("cannot create a file in state directory {}: {}", path_.string(), errno_text(errno)));
  }
  const char byte = 0;
  const ssize_t n = ::write(fd, &byte, 1);
  const int write_errno = errno;
  ::close(fd);
  if (named) ::unlinkat(dir_fd_, ".writable-probe", 0);
  if (n != 1) {
    return io_error(
        fmt::format("cannot write a file in state directory {}: {}", path_.string(), errno_text(write_errno)));
  }
  return {};
}

}  // namespace nicsync::ledger
