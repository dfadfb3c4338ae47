// The socket audit device's listener: one thread, one io_context, every connection read as
// fast as Vault writes. Vault's writes are synchronous with its requests (reference §3.1), so
// the only work done here is splitting lines and reading each into a hint (AuditFeed); nothing
// waits for the daemon's loop.
#include "nicsync/watch/audit_listener.hpp"

#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <set>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <sys/un.h>

namespace nicsync::watch {
namespace asio = boost::asio;
using asio::ip::tcp;
using unix_socket = asio::local::stream_protocol;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// Bytes asked for per read; a connection's buffer grows past it only for a line that is longer.
constexpr std::size_t kChunk = 64u << 10;
// A buffer grown for a long line is given back once that line is done.
constexpr std::size_t kKeepBuffer = 4 * kChunk;
// Refused peers named in the log (each once); more are only counted.
constexpr std::size_t kMaxRefusedLogged = 64;

struct ListenAddress {
  bool unix_socket = false;
  std::string path;  // unix
  asio::ip::address address;
  std::uint16_t port = 0;
};

Result<ListenAddress> parse_listen(std::string_view text) {
  ListenAddress out;
  if (text.starts_with("unix:")) {
    out.unix_socket = true;
    out.path = std::string(text.substr(5));
    if (out.path.empty() || out.path.front() != '/') {
      return Error(
          Errc::config_invalid,
          fmt::format("\"{}\": a unix socket needs an absolute path, e.g. \"unix:/run/nicsync/audit.sock\"", text));
    }
    if (out.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return Error(Errc::config_invalid, fmt::format("\"{}\": the socket path is longer than {} bytes", text,
                                                     sizeof(sockaddr_un::sun_path) - 1));
    }
    return out;
  }
  const auto colon = text.rfind(':');
  std::string_view host = colon == std::string_view::npos ? std::string_view() : text.substr(0, colon);
  const std::string_view port = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned long p = 0;
  const bool port_ok = !port.empty() && port.size() <= 5 &&
                       port.find_first_not_of("0123456789") == std::string_view::npos &&
                       (p = std::stoul(std::string(port))) <= 65535;
  boost::system::error_code ec;
  out.address = host == "localhost" ? asio::ip::address(asio::ip::address_v4::loopback())
                                    : asio::ip::make_address(std::string(host), ec);
  if (host.empty() || ec || !port_ok) {
    return Error(Errc::config_invalid,
                 fmt::format("\"{}\" is not an address to listen on: write \"127.0.0.1:9465\", \"[::1]:9465\" or "
                             "\"unix:/run/nicsync/audit.sock\"",
                             text));
  }
  out.port = static_cast<std::uint16_t>(p);
  return out;
}

std::optional<gid_t> group_id(const std::string& name) {
  std::vector<char> buf(16384);
  group g{};
  group* found = nullptr;
  if (::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found) != 0 || found == nullptr) return std::nullopt;
  return found->gr_gid;
}

}  // namespace

Result<AddressRanges> AddressRanges::parse(const std::vector<std::string>& entries) {
  AddressRanges out;
  for (const auto& entry : entries) {
    const auto slash = entry.find('/');
    const std::string host = entry.substr(0, slash);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(host, ec);
    Range r;
    if (!ec && address.is_v6() && address.to_v6().is_v4_mapped()) {
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    }
    if (!ec) {
      if (address.is_v4()) {
        const auto b = address.to_v4().to_bytes();
        r.bytes.assign(b.begin(), b.end());
      } else {
        const auto b = address.to_v6().to_bytes();
        r.bytes.assign(b.begin(), b.end());
      }
    }
    r.prefix = static_cast<unsigned>(r.bytes.size() * 8);
    bool prefix_ok = true;
    if (slash != std::string::npos) {
      const std::string bits = entry.substr(slash + 1);
      prefix_ok = !bits.empty() && bits.size() <= 3 && bits.find_first_not_of("0123456789") == std::string::npos &&
                  std::stoul(bits) <= r.bytes.size() * 8;
      if (prefix_ok) r.prefix = static_cast<unsigned>(std::stoul(bits));
    }
    if (ec || !prefix_ok) {
      return Error(Errc::config_invalid,
                   fmt::format("\"{}\" is not an address or a range: write e.g. \"10.0.0.5\", \"10.0.0.0/24\" or "
                               "\"fd00::/8\"",
                               entry));
    }
    out.ranges_.push_back(std::move(r));
  }
  return out;
}

bool AddressRanges::contains(std::string_view text) const {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(std::string(text), ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  std::vector<unsigned char> bytes;
  if (address.is_v4()) {
    const auto b = address.to_v4().to_bytes();
    bytes.assign(b.begin(), b.end());
  } else {
    const auto b = address.to_v6().to_bytes();
    bytes.assign(b.begin(), b.end());
  }
  for (const auto& r : ranges_) {
    if (r.bytes.size() != bytes.size()) continue;
    const unsigned whole = r.prefix / 8;
    const unsigned rest = r.prefix % 8;
    if (!std::equal(r.bytes.begin(), r.bytes.begin() + whole, bytes.begin())) continue;
    if (rest == 0) return true;
    const auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
    if ((r.bytes[whole] & mask) == (bytes[whole] & mask)) return true;
  }
  return false;
}

Result<void> validate(const AuditListenerOptions& options) {
  auto where = parse_listen(options.listen);
  if (!where) return where.error();
  auto ranges = AddressRanges::parse(options.allow_from);
  if (!ranges) return ranges.error();
  if (where->unix_socket) {
    if (!options.allow_from.empty()) {
      return Error(Errc::config_invalid, "allow_from is for TCP; a unix socket is guarded by its mode and group");
    }
    if (options.socket_mode > 0777) return Error(Errc::config_invalid, "a socket mode is at most 0777");
    if (!options.socket_group.empty() && !group_id(options.socket_group)) {
      return Error(Errc::config_invalid, fmt::format("there is no group \"{}\" on this system", options.socket_group));
    }
    return {};
  }
  if (!where->address.is_loopback() && ranges->empty()) {
    return Error(Errc::config_invalid,
                 fmt::format("{} is not a loopback address, and Vault's socket audit device sends plain TCP with no "
                             "credentials: list the Vault nodes' addresses in allow_from",
                             options.listen));
  }
  return {};
}

struct AuditListener::Impl {
  AuditListenerOptions options;
  std::shared_ptr<AuditFeed> feed;
  AddressRanges allowed;
  asio::io_context io{1};
  std::optional<tcp::acceptor> tcp_acceptor;
  std::optional<unix_socket::acceptor> unix_acceptor;
  std::string unix_path;
  std::string bound;
  std::thread thread;
  // On the listener's thread.
  std::list<std::function<void()>> closers;  // one per open connection
  std::set<std::string> refused_logged;
  bool stopping = false;

  Result<void> bind(const ListenAddress& where) {
    boost::system::error_code ec;
    if (where.unix_socket) {
      unix_path = where.path;
      struct stat st {};
      if (::lstat(unix_path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
          return Error(Errc::config_invalid,
                       fmt::format("{} exists and is not a socket; remove it or listen elsewhere", unix_path));
        }
        unix_socket::socket probe(io);
        probe.connect(unix_socket::endpoint(unix_path), ec);
        if (!ec) {
          return Error(Errc::config_invalid,
                       fmt::format("another process listens on unix:{}; stop it or listen elsewhere", unix_path));
        }
        ec.clear();
        ::unlink(unix_path.c_str());  // left by an earlier run
      }
      unix_acceptor.emplace(io);
      unix_acceptor->open(unix_socket(), ec);
      if (!ec) unix_acceptor->bind(unix_socket::endpoint(unix_path), ec);
      if (!ec) unix_acceptor->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        return Error(Errc::config_invalid,
                     fmt::format("cannot listen on unix:{}: {}{}", unix_path, ec.message(),
                                 ec == boost::system::errc::no_such_file_or_directory
                                     ? " (its directory must exist: the unit's RuntimeDirectory=nicsync makes "
                                       "/run/nicsync)"
                                     : ""));
      }
      if (::chmod(unix_path.c_str(), static_cast<mode_t>(options.socket_mode)) != 0) {
        return Error(Errc::config_invalid,
                     fmt::format("cannot set the mode of {}: {}", unix_path, std::strerror(errno)));
      }
      if (!options.socket_group.empty()) {
        const auto gid = group_id(options.socket_group);
        if (!gid || ::chown(unix_path.c_str(), static_cast<uid_t>(-1), *gid) != 0) {
          return Error(Errc::config_invalid,
                       fmt::format("cannot give {} to group {}: {} (the daemon's user must be a member of it, e.g. "
                                   "SupplementaryGroups={} in a drop-in of the unit)",
                                   unix_path, options.socket_group, gid ? std::strerror(errno) : "no such group",
                                   options.socket_group));
        }
      }
      bound = "unix:" + unix_path;
      return {};
    }
    const tcp::endpoint endpoint(where.address, where.port);
    tcp_acceptor.emplace(io);
    tcp_acceptor->open(endpoint.protocol(), ec);
    if (!ec) tcp_acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) tcp_acceptor->bind(endpoint, ec);
    if (!ec) tcp_acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Error(Errc::config_invalid, fmt::format("cannot listen on {}: {}", options.listen, ec.message()));
    const auto local = tcp_acceptor->local_endpoint(ec);
    bound = local.address().is_v6() ? fmt::format("[{}]:{}", local.address().to_string(), local.port())
                                    : fmt::format("{}:{}", local.address().to_string(), local.port());
    return {};
  }

  // Whether a new connection may stay; says why not in the log (each peer once).
  bool admit(const std::string& peer, bool tcp) {
    std::string why;
    if (closers.size() >= options.max_connections) {
      why = fmt::format("{} connections are open already", closers.size());
    } else if (tcp && !allowed.empty() && !allowed.contains(peer)) {
      why = "not in watch.audit.allow_from";
    }
    if (why.empty()) return true;
    feed->connection_refused();
    if (refused_logged.size() < kMaxRefusedLogged && refused_logged.insert(peer).second) {
      spdlog::warn("audit feed: connection from {} refused: {}", peer.empty() ? std::string("a local peer") : peer,
                   why);
    }
    return false;
  }

  template <class Acceptor>
  static asio::awaitable<void> accept_loop(Impl* self, Acceptor* acceptor, bool tcp_peer) {
    asio::steady_timer pause(self->io);
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(kTuple);
      if (self->stopping || !acceptor->is_open()) co_return;
      if (ec) {
        // Out of descriptors, say: try again shortly rather than spin.
        spdlog::warn("audit feed: accepting a connection failed: {}", ec.message());
        pause.expires_after(std::chrono::milliseconds(100));
        co_await pause.async_wait(kTuple);
        continue;
      }
      std::string peer;
      if (tcp_peer) {
        boost::system::error_code pec;
        if constexpr (std::is_same_v<Acceptor, tcp::acceptor>) peer = socket.remote_endpoint(pec).address().to_string();
      }
      if (!self->admit(peer, tcp_peer)) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      asio::co_spawn(self->io, read_connection(self, std::move(socket)), asio::detached);
    }
  }

  template <class Socket>
  static asio::awaitable<void> read_connection(Impl* self, Socket socket) {
    self->closers.push_front([&socket] {
      boost::system::error_code ignored;
      socket.close(ignored);
    });
    const auto closer = self->closers.begin();
    self->feed->connection_opened();
    std::vector<char> buf(2 * kChunk);
    std::size_t used = 0;     // bytes held
    std::size_t scanned = 0;  // of those, known to hold no newline
    bool skipping = false;    // inside a line too long to read
    for (;;) {
      if (buf.size() - used < kChunk) buf.resize(std::max(buf.size() * 2, used + kChunk));
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf.data() + used, buf.size() - used), kTuple);
      if (ec) break;
      used += n;
      std::size_t start = 0;
      for (;;) {
        const void* nl = std::memchr(buf.data() + scanned, '\n', used - scanned);
        if (nl == nullptr) {
          scanned = used;
          break;
        }
        const auto end = static_cast<std::size_t>(static_cast<const char*>(nl) - buf.data());
        if (!skipping) self->feed->take_line(std::string_view(buf.data() + start, end - start));
        skipping = false;
        start = end + 1;
        scanned = start;
      }
      if (start > 0) {
        std::memmove(buf.data(), buf.data() + start, used - start);
        used -= start;
        scanned -= start;
      }
      if (skipping) {
        used = scanned = 0;
      } else if (used > kMaxAuditLineBytes) {
        self->feed->note_too_large();
        skipping = true;
        used = scanned = 0;
      }
      if (used == 0 && buf.size() > kKeepBuffer) std::vector<char>(2 * kChunk).swap(buf);
    }
    // Half a line: Vault gave up on this connection mid-entry and writes it again on its next.
    if (used > 0 && !skipping) self->feed->note_truncated();
    self->closers.erase(closer);
    self->feed->connection_closed();
  }

  void run() {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("audit feed: listener failed: {}; it goes on", e.what());
      }
    }
  }

  void stop() {
    if (!thread.joinable()) return;
    asio::post(io, [this] {
      stopping = true;
      boost::system::error_code ignored;
      if (tcp_acceptor) tcp_acceptor->close(ignored);
      if (unix_acceptor) unix_acceptor->close(ignored);
      for (auto& close : closers) close();
    });
    thread.join();
    if (!unix_path.empty()) ::unlink(unix_path.c_str());
  }
};

Result<std::unique_ptr<AuditListener>> AuditListener::start(AuditListenerOptions options,
                                                            std::shared_ptr<AuditFeed> feed) {
  if (auto v = validate(options); !v) return v.error();
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->feed = std::move(feed);
  auto allowed = AddressRanges::parse(impl->options.allow_from);
  auto where = parse_listen(impl->options.listen);
  if (!allowed) return allowed.error();
  if (!where) return where.error();
  impl->allowed = std::move(*allowed);
  if (auto r = impl->bind(*where); !r) {
    if (!impl->unix_path.empty() && impl->unix_acceptor && impl->unix_acceptor->is_open()) {
      ::unlink(impl->unix_path.c_str());
    }
    return r.error();
  }
  Impl* self = impl.get();
  if (self->tcp_acceptor) {
    asio::co_spawn(self->io, Impl::accept_loop(self, &*self->tcp_acceptor, true), asio::detached);
  } else {
    asio::co_spawn(self->io, Impl::accept_loop(self, &*self->unix_acceptor, false), asio::detached);
  }
  self->thread = std::thread([self] { self->run(); });
  return std::unique_ptr<AuditListener>(new AuditListener(std::move(impl)));
}

AuditListener::AuditListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AuditListener::~AuditListener() { stop(); }

std::string AuditListener::local_address() const { return impl_->bound; }

void AuditListener::stop() { impl_->stop(); }

}  // namespace nicsync::watch
