#include "destinations/token_cache.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

#include "nicsync/core/text.hpp"
#include "nicsync/destinations/token_stash.hpp"

#include <sys/stat.h>

namespace nicsync::destinations::detail {
namespace json = boost::json;

namespace {

std::int64_t to_unix(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_unix(std::int64_t s) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(s));
}

std::string errno_text(int e) { return std::strerror(e); }

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::optional<std::int64_t> as_int(const json::value& v) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) return static_cast<std::int64_t>(v.as_uint64());
  return std::nullopt;
}

}  // namespace

Result<std::optional<Secret>> read_token_cache_file(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (f.fd < 0) {
    if (errno == ENOENT) return std::optional<Secret>();
    return Error(Errc::io_error, fmt::format("cannot open token cache {}: {}", path, errno_text(errno)));
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) {
    return Error(Errc::io_error, fmt::format("cannot stat token cache {}: {}", path, errno_text(errno)));
  }
  if (!S_ISREG(st.st_mode)) return Error(Errc::io_error, fmt::format("token cache {} is not a regular file", path));
  if (st.st_uid != ::geteuid()) {
    return Error(Errc::io_error, fmt::format("token cache {} belongs to uid {}, not to this user", path, st.st_uid));
  }
  if ((st.st_mode & 077) != 0) {
    return Error(Errc::io_error, fmt::format("token cache {} has mode {:04o}; it must be 0600 (the token may have "
                                             "been read by others: a new one will be requested)",
                                             path, st.st_mode & 07777));
  }
  if (st.st_size > (64 << 10)) return Error(Errc::io_error, fmt::format("token cache {} is too large", path));
  std::string content(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < content.size()) {
    auto n = ::read(f.fd, content.data() + got, content.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      secure_wipe(content);
      return Error(Errc::io_error, fmt::format("cannot read token cache {}", path));
    }
    got += static_cast<std::size_t>(n);
  }
  return std::optional<Secret>(Secret::take(content));
}

Result<TokenCacheRecord> parse_token_cache(const Secret& content, std::string_view where) {
  boost::system::error_code ec;
  json::value v = json::parse(content.expose(), ec);
  auto bad = [&](std::string_view why) {
    return Error(Errc::io_error, fmt::format("token cache {} is not valid ({}); it will be replaced", where, why));
  };
  if (ec || !v.is_object()) return bad("not a JSON object");
  auto& o = v.as_object();
  TokenCacheRecord r;
  if (auto* fmt_v = o.if_contains("format"); fmt_v == nullptr || as_int(*fmt_v) != 1) return bad("unknown format");
  if (auto* u = o.if_contains("token_url"); u != nullptr && u->is_string()) r.token_url = u->as_string();
  if (auto* t = o.if_contains("access_token"); t != nullptr && t->is_string()) {
    auto& s = t->as_string();
    r.access_token = Secret(std::string_view(s.data(), s.size()));
    secure_wipe(s.data(), s.size());
  }
  if (auto* t = o.if_contains("valid_till"); t != nullptr && !t->is_null()) {
    auto secs = as_int(*t);
    if (!secs) return bad("valid_till");
    r.valid_till = from_unix(*secs);
  }
  if (auto* t = o.if_contains("obtained_at"); t != nullptr && !t->is_null()) {
    auto secs = as_int(*t);
    if (!secs) return bad("obtained_at");
    r.obtained_at = from_unix(*secs);
  }
  if (auto* d = o.if_contains("utc_day"); d != nullptr) r.utc_day = as_int(*d).value_or(-1);
  if (auto* c = o.if_contains("calls_today"); c != nullptr) r.calls_today = static_cast<int>(as_int(*c).value_or(0));
  if (auto* rc = o.if_contains("recent_calls"); rc != nullptr && rc->is_array()) {
    for (const auto& e : rc->as_array()) {
      if (auto s = as_int(e)) r.recent_calls.push_back(*s);
    }
  }
  return r;
}

std::string serialize_token_cache(const TokenCacheRecord& r) {
  std::string head = "{\"format\":1,\"token_url\":";
  append_json_string(head, r.token_url);
  std::string tail = ",\"valid_till\":";
  tail += r.valid_till ? std::to_string(to_unix(*r.valid_till)) : "null";
  tail += ",\"obtained_at\":";
  tail += r.obtained_at ? std::to_string(to_unix(*r.obtained_at)) : "null";
  tail += fmt::format(",\"utc_day\":{},\"calls_today\":{},\"recent_calls\":[{}]}}\n", r.utc_day, r.calls_today,
                      fmt::join(r.recent_calls, ","));
  // One allocation for the part that holds the token, so no copy of it is left in a freed buffer.
  std::string out;
  out.reserve(head.size() + tail.size() + json_escaped_size(r.access_token.expose()) + 24);
  out += head;
  out += ",\"access_token\":";
  if (r.access_token.empty()) {
    out += "null";
  } else {
    append_json_string(out, r.access_token.expose());
  }
  out += tail;
  return out;
}

Result<void> write_file_atomically(const std::string& path, std::string_view content) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  auto fail = [&](std::string_view what, int e) {
    ::unlink(tmp.c_str());
    return Error(Errc::io_error, fmt::format("cannot write {}: {} failed: {}", path, what, errno_text(e)));
  };
  {
    Fd f;
    f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f.fd < 0) return fail("open", errno);
    // The umask cannot widen 0600, but a file left over from a crash might have another mode.
    if (::fchmod(f.fd, 0600) != 0) return fail("fchmod", errno);
    std::size_t done = 0;
    while (done < content.size()) {
      auto n = ::write(f.fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail("write", errno);
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(f.fd) != 0) return fail("fsync", errno);
    const int fd = f.fd;
    f.fd = -1;
    if (::close(fd) != 0) return fail("close", errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename", errno);
  Fd d;
  d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd < 0 || ::fsync(d.fd) != 0) {
    return Error(Errc::io_error, fmt::format("cannot fsync directory {}: {}", dir, errno_text(errno)));
  }
  return {};
}

}  // namespace nicsync::destinations::detail

namespace nicsync::destinations {
namespace asio = boost::asio;
namespace {

asio::awaitable<Result<void>> write_task(std::string path, Secret content) {
  co_return detail::write_file_atomically(path, content.expose());
}

class FileTokenStash final : public TokenStash {
 public:
  explicit FileTokenStash(std::string directory) : directory_(std::move(directory)) {
    while (directory_.size() > 1 && directory_.back() == '/') directory_.pop_back();
  }
  ~FileTokenStash() override { disk_.join(); }

  asio::awaitable<Result<std::optional<Secret>>> load(std::string name) override {
    // A small file read once at start-up: on the caller's thread.
    co_return detail::read_token_cache_file(where(name));
  }

  asio::awaitable<Result<void>> save(std::string name, Secret content) override {
    // fsync never runs on the event loop: the write goes to the stash's own thread and the
    // caller resumes on its executor.
    co_return co_await asio::co_spawn(disk_, write_task(where(name), std::move(content)), asio::use_awaitable);
  }

  [[nodiscard]] std::string where(std::string_view name) const override {
    return fmt::format("{}/{}.token", directory_, name);
  }

 private:
  std::string directory_;
  asio::thread_pool disk_{1};
};

}  // namespace

std::shared_ptr<TokenStash> make_file_token_stash(std::string directory) {
  return std::make_shared<FileTokenStash>(std::move(directory));
}

}  // namespace nicsync::destinations
