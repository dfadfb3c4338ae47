#include "testing/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char** environ;

namespace nicsync::testing {

namespace {
int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
}  // namespace

Process::Process(ProcessOptions options) : log_file_(std::move(options.log_file)) {
  if (options.argv.empty()) throw std::invalid_argument("Process: empty argv");
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");

  // Build argv/envp before fork: the child only calls async-signal-safe functions.
  std::vector<char*> argv;
  for (auto& a : options.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    const std::string key = entry.substr(0, entry.find('='));
    bool drop = false;
    for (const auto& u : options.unset_env) drop = drop || u == key;
    for (const auto& o : options.env) drop = drop || o.substr(0, o.find('=')) == key;
    if (!drop) env_strings.push_back(std::move(entry));
  }
  for (const auto& o : options.env) env_strings.push_back(o);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "exec failed\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  pidfd_ = pidfd_open(pid_);
  reader_ = std::thread([this, o = out[0], e = err[0]] { reader(o, e); });
}

Process::~Process() {
  if (!status_) kill();
  if (reader_.joinable()) reader_.join();
  if (pidfd_ >= 0) ::close(pidfd_);
}

void Process::reader(int out_fd, int err_fd) {
  std::ofstream log;
  if (!log_file_.empty()) log.open(log_file_, std::ios::app | std::ios::binary);
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_fds = 2;
  char buf[8192];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (auto& p : fds) {
      if (p.fd < 0 || p.revents == 0) continue;
      const ssize_t n = ::read(p.fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(p.fd);
        p.fd = -1;
        --open_fds;
        continue;
      }
      if (log.is_open()) log.write(buf, n).flush();
      std::lock_guard lock(mu_);
      output_.append(buf, static_cast<std::size_t>(n));
      cv_.notify_all();
    }
  }
  std::lock_guard lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

void Process::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

void Process::kill() {
  if (status_ || pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);  // the whole process group
  ::kill(pid_, SIGKILL);
  wait(std::chrono::seconds(10));
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  pollfd p{pidfd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready <= 0) return std::nullopt;
  int st = 0;
  if (::waitpid(pid_, &st, 0) != pid_) return std::nullopt;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  // The child is gone; let the reader take what is still in the pipes (bounded: a grandchild
  // may hold them open).
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::seconds(5), [&] { return eof_; });
  return status_;
}

bool Process::running() { return !wait(std::chrono::milliseconds(0)).has_value(); }

std::optional<std::size_t> Process::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout,
                                                    std::size_t from) {
  std::unique_lock lock(mu_);
  std::optional<std::size_t> found;
  cv_.wait_for(lock, timeout, [&] {
    if (from <= output_.size()) {
      auto pos = output_.find(needle, from);
      if (pos != std::string::npos) {
        found = pos + needle.size();
        return true;
      }
    }
    return eof_;
  });
  return found;
}

std::string Process::output() const {
  std::lock_guard lock(mu_);
  return output_;
}

std::string built_program(const std::string& relative) {
  const char* dir = std::getenv("NICSYNC_BINARY_DIR");
  if (dir == nullptr) throw std::runtime_error("NICSYNC_BINARY_DIR is not set (run the tests through ctest)");
  return std::string(dir) + "/" + relative;
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("free_port: bind failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace nicsync::testing
