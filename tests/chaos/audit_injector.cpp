#include "chaos/audit_injector.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <fmt/format.h>

#include "nicsync/core/text.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace nicsync::chaos {

namespace {

std::string now_rfc3339_nano() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::floor<std::chrono::seconds>(now);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - secs).count();
  const std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ns);
}

}  // namespace

AuditInjector::AuditInjector(std::uint16_t port, std::uint64_t seed) : port_(port), rng_(seed) {}

AuditInjector::~AuditInjector() { close(); }

std::string AuditInjector::entry(const std::string& path, const std::string& operation, const std::string& type,
                                 const std::string& data_value, std::int64_t version, const std::string& error) {
  const std::string id = fmt::format("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", rng_() & 0xffffffff, rng_() & 0xffff,
                                     rng_() & 0xfff, rng_() & 0xfff, rng_() & 0xffffffffffffULL);
  const auto slash = path.find('/');
  const std::string mount = path.substr(0, slash) + "/";
  std::string value;
  append_json_string(value, data_value);
  const std::string request =
      fmt::format(R"("request":{{"id":"{}","operation":"{}","mount_point":"{}","mount_type":"kv",)"
                  R"("namespace":{{"id":"root"}},"path":"{}","data":{{"data":{{"password":{}}}}},)"
                  R"("remote_address":"127.0.0.1","remote_port":{}}})",
                  id, operation, mount, path, value, 40000 + rng_() % 20000);
  const std::string response =
      type == "response"
          ? fmt::format(R"(,"response":{{"mount_point":"{}","mount_type":"kv","data":{{"version":{}}}}})", mount,
                        version)
          : std::string();
  std::string err;
  if (!error.empty()) {
    err = R"(,"error":)";
    append_json_string(err, error);
  }
  // Vault <= 1.16 and OpenBao (time and type first) or 1.17-1.20 (sorted), by turns.
  if (rng_() % 2 == 0) {
    return fmt::format(R"({{"time":"{}","type":"{}","auth":{{"token_type":"service"}},{}{}{}}})"
                       "\n",
                       now_rfc3339_nano(), type, request, response, err);
  }
  return fmt::format(R"({{"auth":{{"token_type":"service"}}{},{}{},"time":"{}","type":"{}"}})"
                     "\n",
                     err, request, response, now_rfc3339_nano(), type);
}

void AuditInjector::rotation(const std::string& gstin, std::int64_t version, const std::string& password) {
  const std::string line =
      entry("secret/data/nic/" + gstin, version == 1 ? "create" : "update", "response", password, version);
  if (reorder_ > 0) {
    --reorder_;
    held_.push_back(line);
    if (reorder_ == 0) flush();
    return;
  }
  send(line);
  if (duplicate_ > 0) {
    // Every other repeat comes on a new connection: a second node, or Vault writing the entry
    // again after a write that timed out.
    if (--duplicate_ % 2 == 0) close();
    send(line);
  }
}

void AuditInjector::flush() {
  for (auto it = held_.rbegin(); it != held_.rend(); ++it) send(*it);
  held_.clear();
  reorder_ = 0;
}

void AuditInjector::drop_connection_mid_entry() {
  const std::string line = entry("secret/data/nic/dropped", "update", "response", "half", 1);
  if (fd_ >= 0 || dial()) {
    write_all(line.substr(0, line.size() / 2));
    ++garbage_;
  }
  close();
}

void AuditInjector::garbage(int n, int variant) {
  static const char* kLines[] = {
      "{\"type\":\"response\",\"request\":{\"operation\":\"update\",\"path\":\"secret/data/nic/",  // cut off
      "not json at all",
      "[1,2,3]",
      "{\"type\":\"response\"} trailing",
      "\x01\x02\xff\xfe binary \x7f",
      "{\"type\":{\"nested\":[[[[[[]]]]]]},\"request\":{\"operation\":\"update\"}}",
  };
  std::string bytes;
  for (int i = 0; i < n; ++i) {
    bytes += kLines[rng_() % std::size(kLines)];
    bytes += '\n';
  }
  if (variant == 3) bytes += "{\"type\":\"response\",\"pad\":\"" + std::string((4u << 20) + 16, 'x') + "\"}\n";
  if (send(bytes)) garbage_ += n + (variant == 3 ? 1 : 0);
}

void AuditInjector::duplicate_next(int n) { duplicate_ = n; }

void AuditInjector::reorder_next(int n) {
  flush();
  reorder_ = std::max(n, 2);
}

void AuditInjector::unknown_paths(int n) {
  static const char* kPaths[] = {"secret/data/other/07AAFCD5862R1ZX",
                                 "secret/data/nic/sub/07AAFCD5862R1ZX",
                                 "kv/nic/07AAFCD5862R1ZX",
                                 "secret/metadata/app/config",
                                 "sys/policies/acl/nicsync",
                                 "auth/approle/login",
                                 "cubbyhole/nic/x",
                                 "secret/config"};
  std::string bytes;
  for (int i = 0; i < n; ++i) {
    const std::string path = kPaths[rng_() % std::size(kPaths)];
    switch (rng_() % 3) {
      case 0: bytes += entry(path, "update", "response", "unwatched", 3); break;
      case 1: bytes += entry(path, "update", "request", "unwatched", 3); break;
      default:
        bytes += entry(path, "update", "response", "unwatched", 3, "1 error occurred:\n\t* permission denied\n\n");
    }
  }
  send(bytes);
}

bool AuditInjector::dial() {
  close();
  ++dials_;
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return false;
  // Vault's write_timeout (2 s) bounds every write.
  timeval tv{.tv_sec = 2, .tv_usec = 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close();
    return false;
  }
  return true;
}

void AuditInjector::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool AuditInjector::write_all(const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool AuditInjector::send(const std::string& bytes) {
  ++lines_;
  if ((fd_ >= 0 || dial()) && write_all(bytes)) return true;
  // As Vault's socket device: close, dial again, write the entry once more.
  if (dial() && write_all(bytes)) return true;
  close();
  ++lost_;
  return false;
}

}  // namespace nicsync::chaos
