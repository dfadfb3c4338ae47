// The test Vault's socket audit devices (reference vault-audit.md §1, §3.1): a request entry
// for each request once its token check is done, a response entry once it ran, in the legacy
// (Vault ≤ 1.16, OpenBao) or the sorted (Vault 1.18–1.20) field order, values HMAC'd with the
// device's salt, written as Vault's socket backend writes them.
//
// What the reference does not show and is this fake's reading of Vault: the entries of failed
// requests (`error` is the first message of the answer's error list; a refused token check logs
// "permission denied" in its request entry), a login's response `auth`, and the mounts of
// non-KV paths (token, approle, system: accessor and running version made up).
#include <time.h>

#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fake_vault_impl.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace nicsync::fakes {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using detail::Reply;

namespace detail {
namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kHex = "0123456789abcdef";

}  // namespace

/// One socket device: its connection, its salt and its one-writer-at-a-time rule.
class AuditDevice : public std::enable_shared_from_this<AuditDevice> {
 public:
  AuditDevice(asio::any_io_executor ex, AuditDeviceOptions options)
      : ex_(std::move(ex)), options_(std::move(options)), lock_(ex_, 1) {
    if (options_.salt.empty()) options_.salt = random_uuid();
  }

  [[nodiscard]] const AuditDeviceOptions& options() const noexcept { return options_; }

  /// "hmac-sha256:" + hex HMAC-SHA256(salt, value); the value itself with log_raw.
  [[nodiscard]] std::string hmac(std::string_view value) const {
    if (options_.log_raw) return std::string(value);
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int size = 0;
    HMAC(EVP_sha256(), options_.salt.data(), static_cast<int>(options_.salt.size()),
         reinterpret_cast<const unsigned char*>(value.data()), value.size(), mac.data(), &size);
    std::string out = "hmac-sha256:";
    for (unsigned int i = 0; i < size; ++i) {
      out.push_back(kHex[mac[i] >> 4]);
      out.push_back(kHex[mac[i] & 0xF]);
    }
    return out;
  }
  [[nodiscard]] std::string hmac_accessor(std::string_view accessor) const {
    return options_.hmac_accessor ? hmac(accessor) : std::string(accessor);
  }

  /// Writes one entry as Vault's socket backend does: under the device's lock, with the write
  /// timeout; on failure close, dial again and write it once more. True if it was written.
  asio::awaitable<bool> write(std::string line, AuditStats& stats) {
    auto self = shared_from_this();
    if (closed_) co_return false;
    // A channel of one slot as the lock: a second writer's send waits until the first takes
    // its message back out.
    auto [not_locked] = co_await lock_.async_send(boost::system::error_code{}, kTuple);
    if (not_locked) co_return false;  // closed
    struct Unlock {
      AuditDevice& d;
      ~Unlock() {
        d.lock_.try_receive([](boost::system::error_code) {});
      }
    } unlock{*this};
    if (closed_) co_return false;

    auto ec = co_await write_once(line, stats);
    if (ec && !closed_) {
      close_socket();
      ec = co_await dial(stats);
      if (!ec) ec = co_await write_once(line, stats);
    }
    if (ec) {
      ++stats.write_failures;
      co_return false;
    }
    ++stats.entries_written;
    co_return true;
  }

  void close() {
    closed_ = true;
    close_socket();
    lock_.close();
  }

  /// The connection breaks (the peer's side, a network fault): a write under way fails, and
  /// the next write dials again as after any failure. The socket object stays until then, for
  /// the write that may be using it.
  void break_connection() {
    if (!socket_) return;
    boost::system::error_code ec;
    socket_->close(ec);
  }

 private:
  asio::awaitable<boost::system::error_code> write_once(const std::string& line, AuditStats& stats) {
    if (!socket_) {
      if (auto ec = co_await dial(stats)) co_return ec;
    }
    asio::steady_timer timer(ex_, options_.write_timeout);
    auto done = co_await (asio::async_write(*socket_, asio::buffer(line), kTuple) || timer.async_wait(kTuple));
    if (done.index() == 1) co_return asio::error::timed_out;
    co_return std::get<0>(std::get<0>(done));
  }

  // Go's net.Dial with the write timeout as its deadline; TCP_NODELAY as Go sets it.
  asio::awaitable<boost::system::error_code> dial(AuditStats& stats) {
    ++stats.dials;
    close_socket();
    std::vector<asio::generic::stream_protocol::endpoint> endpoints;
    if (options_.socket_type == "unix") {
      endpoints.emplace_back(asio::local::stream_protocol::endpoint(options_.address));
    } else {
      auto hp = http::split_host_port(options_.address);
      if (!hp) co_return asio::error::invalid_argument;
      asio::ip::tcp::resolver resolver(ex_);
      auto [ec, results] = co_await resolver.async_resolve(hp->first, std::to_string(hp->second), kTuple);
      if (ec) co_return ec;
      for (const auto& r : results) endpoints.emplace_back(r.endpoint());
    }
    boost::system::error_code last = asio::error::host_not_found;
    for (const auto& ep : endpoints) {
      asio::generic::stream_protocol::socket sock(ex_);
      boost::system::error_code ec;
      sock.open(ep.protocol(), ec);
      if (ec) {
        last = ec;
        continue;
      }
      asio::steady_timer timer(ex_, options_.write_timeout);
      auto done = co_await (sock.async_connect(ep, kTuple) || timer.async_wait(kTuple));
      if (done.index() == 1) {
        last = asio::error::timed_out;
        continue;
      }
      if (auto [cec] = std::get<0>(done); cec) {
        last = cec;
        continue;
      }
      if (options_.socket_type != "unix") {
        const int one = 1;
        ::setsockopt(sock.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      socket_.emplace(std::move(sock));
      co_return boost::system::error_code{};
    }
    co_return last;
  }

  void close_socket() {
    if (!socket_) return;
    boost::system::error_code ec;
    socket_->close(ec);
    socket_.reset();
  }

  asio::any_io_executor ex_;
  AuditDeviceOptions options_;
  std::optional<asio::generic::stream_protocol::socket> socket_;
  asio::experimental::channel<void(boost::system::error_code)> lock_;
  bool closed_ = false;
};

}  // namespace detail

namespace {

using detail::AuditDevice;

using Format = AuditDeviceOptions::Format;

/// Where a path is served from, as the entries name it.
struct MountFacts {
  std::string point, type, accessor, version, mount_class;
};

/// One entry before a device formats it (its salt, its order).
struct Record {
  bool response = false;
  std::string time;
  std::optional<detail::Token> auth;  ///< nil auth: legacy {"token_type":"default"}, sorted none
  bool acl_checked = false;
  bool allowed = false;
  std::vector<std::string> granting;
  std::string id, operation, path, ns_id, ns_path, remote_address;
  std::uint16_t remote_port = 0;
  std::string client_token;  ///< as presented
  std::optional<MountFacts> mount;
  GoValue data;  ///< request data
  bool backend_response = false;
  GoValue response_data;
  GoValue warnings;
  std::optional<detail::Token> response_auth;  ///< a login's new token
  std::string error;
};

/// A struct in the member order given; members not in `bag` are left out (omitempty).
GoValue ordered(const GoValue& bag, std::initializer_list<std::string_view> order) {
  GoValue out = GoValue::object();
  for (std::string_view key : order) {
    if (const GoValue* v = bag.find(key)) out.set(std::string(key), *v);
  }
  return out;
}

/// Vault's hashstructure: every string leaf HMAC'd (map keys never); numbers too where they
/// came from a JSON body (json.Number, a string kind), not where a backend made them.
GoValue hashed(const GoValue& v, const AuditDevice& d, bool numbers) {
  switch (v.kind()) {
    case GoValue::Kind::string: return GoValue::string(d.hmac(v.text()));
    case GoValue::Kind::number: return numbers ? GoValue::string(d.hmac(v.text())) : v;
    case GoValue::Kind::array: {
      GoValue out = GoValue::array();
      for (const auto& i : v.items()) out.push(hashed(i, d, numbers));
      return out;
    }
    case GoValue::Kind::object: {
      GoValue out = v.is_map() ? GoValue::map() : GoValue::object();
      for (const auto& m : v.members()) out.set(m.key, hashed(m.value, d, numbers));
      return out;
    }
    default: return v;
  }
}

bool empty_value(const GoValue& v) {
  return v.is_null() || (v.is_object() && v.members().empty()) ||
         (v.kind() == GoValue::Kind::array && v.items().empty());
}

/// time.Unix(t, 0).Format(time.RFC3339): whole seconds, in the server's local zone.
std::string rfc3339_local(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&secs, &tm);
  std::string zone = "Z";
  if (tm.tm_gmtoff != 0) {
    const long off = tm.tm_gmtoff < 0 ? -tm.tm_gmtoff : tm.tm_gmtoff;
    zone = fmt::format("{}{:02}:{:02}", tm.tm_gmtoff < 0 ? '-' : '+', off / 3600, (off % 3600) / 60);
  }
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, zone);
}

GoValue auth_of(const Record& r, const AuditDevice& d, Format f) {
  GoValue bag = GoValue::map();
  const detail::Token& t = *r.auth;
  bag.set("client_token", GoValue::string(d.hmac(t.id)));
  if (!t.accessor.empty()) bag.set("accessor", GoValue::string(d.hmac_accessor(t.accessor)));
  if (!t.display_name.empty()) bag.set("display_name", GoValue::string(t.display_name));
  if (!t.policies.empty()) {
    bag.set("policies", GoValue::string_array(t.policies));
    bag.set("token_policies", GoValue::string_array(t.policies));
  }
  if (r.acl_checked) {
    GoValue results = GoValue::object();
    results.set("allowed", GoValue::boolean(r.allowed));
    if (!r.granting.empty()) {
      GoValue list = GoValue::array();
      for (const auto& name : r.granting) {
        GoValue p = GoValue::object();
        p.set("name", GoValue::string(name));
        p.set("namespace_id", GoValue::string("root"));
        p.set("type", GoValue::string("acl"));
        list.push(std::move(p));
      }
      results.set("granting_policies", std::move(list));
    }
    bag.set("policy_results", std::move(results));
  }
  if (t.meta && !t.meta->empty()) {
    GoValue m = GoValue::map();
    for (const auto& [k, v] : *t.meta) m.set(k, GoValue::string(v));
    bag.set("metadata", std::move(m));
  }
  if (t.num_uses > 0) bag.set("num_uses", GoValue::number(t.num_uses));
  if (!t.entity_id.empty()) bag.set("entity_id", GoValue::string(t.entity_id));
  bag.set("token_type", GoValue::string(t.batch ? "batch" : "service"));
  if (t.creation_ttl.count() > 0) bag.set("token_ttl", GoValue::number(t.creation_ttl.count()));
  if (t.issue_sys != detail::SysTime{}) bag.set("token_issue_time", GoValue::string(rfc3339_local(t.issue_sys)));
  if (f == Format::legacy) {
    return ordered(bag,
                   {"client_token", "accessor", "display_name", "policies", "token_policies", "identity_policies",
                    "external_namespace_policies", "no_default_policy", "policy_results", "metadata", "num_uses",
                    "remaining_uses", "entity_id", "entity_created", "token_type", "token_ttl", "token_issue_time"});
  }
  return ordered(
      bag, {"accessor", "client_token", "display_name", "entity_created", "entity_id", "external_namespace_policies",
            "identity_policies", "metadata", "no_default_policy", "num_uses", "policies", "policy_results",
            "remaining_uses", "token_policies", "token_issue_time", "token_ttl", "token_type"});
}

// A login's new token in the response (what the backend returned: no policy check, no issue time).
GoValue response_auth_of(const detail::Token& t, const AuditDevice& d, Format f) {
  Record r;
  r.auth = t;
  r.auth->issue_sys = {};
  return auth_of(r, d, f);
}

GoValue request_of(const Record& r, const AuditDevice& d, Format f) {
  GoValue bag = GoValue::map();
  bag.set("id", GoValue::string(r.id));
  if (r.auth && !r.auth->entity_id.empty()) bag.set("client_id", GoValue::string(r.auth->entity_id));
  bag.set("operation", GoValue::string(r.operation));
  if (r.mount) {
    bag.set("mount_point", GoValue::string(r.mount->point));
    bag.set("mount_type", GoValue::string(r.mount->type));
    // Set by the existence check's routing, which only create and update go through (§1.3).
    if (r.response || r.operation == "create" || r.operation == "update") {
      bag.set("mount_accessor", GoValue::string(r.mount->accessor));
    }
    bag.set("mount_running_version", GoValue::string(r.mount->version));
    bag.set("mount_class", GoValue::string(r.mount->mount_class));
  }
  if (!r.client_token.empty()) bag.set("client_token", GoValue::string(d.hmac(r.client_token)));
  if (r.auth && !r.auth->accessor.empty()) {
    bag.set("client_token_accessor", GoValue::string(d.hmac_accessor(r.auth->accessor)));
  }
  GoValue ns = GoValue::object();
  ns.set("id", GoValue::string(r.ns_id));
  if (!r.ns_path.empty()) ns.set("path", GoValue::string(r.ns_path));
  bag.set("namespace", std::move(ns));
  bag.set("path", GoValue::string(r.path));
  if (!empty_value(r.data)) bag.set("data", hashed(r.data, d, true));
  if (!r.remote_address.empty()) bag.set("remote_address", GoValue::string(r.remote_address));
  if (r.remote_port != 0) bag.set("remote_port", GoValue::number(r.remote_port));
  if (f == Format::legacy) {
    return ordered(bag, {"id",
                         "client_id",
                         "replication_cluster",
                         "operation",
                         "mount_point",
                         "mount_type",
                         "mount_accessor",
                         "mount_running_version",
                         "mount_running_sha256",
                         "mount_class",
                         "mount_is_external_plugin",
                         "client_token",
                         "client_token_accessor",
                         "namespace",
                         "path",
                         "data",
                         "policy_override",
                         "remote_address",
                         "remote_port",
                         "wrap_ttl",
                         "headers",
                         "client_certificate_serial_number"});
  }
  return ordered(bag, {"client_certificate_serial_number",
                       "client_id",
                       "client_token",
                       "client_token_accessor",
                       "data",
                       "headers",
                       "id",
                       "mount_accessor",
                       "mount_class",
                       "mount_is_external_plugin",
                       "mount_point",
                       "mount_running_sha256",
                       "mount_running_version",
                       "mount_type",
                       "namespace",
                       "operation",
                       "path",
                       "policy_override",
                       "remote_address",
                       "remote_port",
                       "replication_cluster",
                       "request_uri",
                       "wrap_ttl"});
}

GoValue response_of(const Record& r, const AuditDevice& d, Format f) {
  GoValue bag = GoValue::map();
  if (r.mount) {
    bag.set("mount_point", GoValue::string(r.mount->point));
    bag.set("mount_type", GoValue::string(r.mount->type));
    bag.set("mount_accessor", GoValue::string(r.mount->accessor));
    bag.set("mount_running_plugin_version", GoValue::string(r.mount->version));
    bag.set("mount_class", GoValue::string(r.mount->mount_class));
  }
  if (r.backend_response) {
    if (r.response_auth) bag.set("auth", response_auth_of(*r.response_auth, d, f));
    if (!empty_value(r.response_data)) bag.set("data", hashed(r.response_data, d, false));
    if (!empty_value(r.warnings)) bag.set("warnings", r.warnings);
  }
  if (f == Format::legacy) {
    return ordered(bag, {"auth", "mount_point", "mount_type", "mount_accessor", "mount_running_plugin_version",
                         "mount_running_sha256", "mount_class", "mount_is_external_plugin", "secret", "data",
                         "warnings", "redirect", "wrap_info", "headers"});
  }
  return ordered(bag, {"auth", "data", "headers", "mount_accessor", "mount_class", "mount_is_external_plugin",
                       "mount_point", "mount_running_sha256", "mount_running_plugin_version", "mount_type", "redirect",
                       "secret", "wrap_info", "warnings"});
}

/// The line a device writes: prefix, the entry in its era's shape, Go's Encoder newline.
std::string format(const Record& r, const AuditDevice& d) {
  const Format f = d.options().format;
  GoValue e = GoValue::object();
  if (f == Format::legacy) {
    // Both structs always carry auth and response (zero values for nil, §1.2 A).
    e.set("time", GoValue::string(r.time));
    e.set("type", GoValue::string(r.response ? "response" : "request"));
    if (r.auth) {
      e.set("auth", auth_of(r, d, f));
    } else {
      e.set("auth", GoValue::object().set("token_type", GoValue::string("default")));
    }
    e.set("request", request_of(r, d, f));
    if (r.response) e.set("response", response_of(r, d, f));
    if (!r.error.empty()) e.set("error", GoValue::string(r.error));
  } else {
    // One struct, sorted; a nil auth or backend response is left out (§1.2 B, 1.18+).
    if (r.auth) e.set("auth", auth_of(r, d, f));
    if (!r.error.empty()) e.set("error", GoValue::string(r.error));
    e.set("request", request_of(r, d, f));
    if (r.response && r.backend_response) e.set("response", response_of(r, d, f));
    e.set("time", GoValue::string(r.time));
    e.set("type", GoValue::string(r.response ? "response" : "request"));
  }
  std::string line = d.options().prefix;
  e.dump_to(line);
  line.push_back('\n');
  return line;
}

std::string first_error(const Reply& reply) {
  auto v = parse_go_json(reply.body);
  if (!v || !v->is_object()) return {};
  const GoValue* errors = v->find("errors");
  if (!errors || errors->kind() != GoValue::Kind::array || errors->items().empty()) return {};
  return errors->items().front().text();
}

}  // namespace

// --- records of a request --------------------------------------------------------------------

namespace {

std::optional<MountFacts> mount_facts(FakeVault::Impl& v, const std::string& full_path, const std::string& ns) {
  if (detail::KvMount* m = v.find_mount(full_path)) {
    return MountFacts{m->path, "kv", m->accessor, std::string(detail::kKvPluginVersion), "secret"};
  }
  const std::string_view inner = std::string_view(full_path).substr(ns.size());
  struct Builtin {
    std::string_view prefix, type, accessor_prefix, mount_class;
  };
  static constexpr Builtin kBuiltins[] = {{"auth/token/", "token", "auth_token_", "auth"},
                                          {"auth/approle/", "approle", "auth_approle_", "auth"},
                                          {"sys/", "system", "system_", "secret"}};
  for (const auto& b : kBuiltins) {
    if (!inner.starts_with(b.prefix)) continue;
    const std::string point = ns + std::string(b.prefix);
    auto& accessor = v.builtin_accessors[point];
    if (accessor.empty()) accessor = std::string(b.accessor_prefix) + random_uuid().substr(0, 8);
    return MountFacts{point, std::string(b.type), accessor, fmt::format("v{}+builtin.vault", detail::kVaultVersion),
                      std::string(b.mount_class)};
  }
  return std::nullopt;
}

std::string presented_token(const http::ServerRequest& req) {
  if (auto h = req.header("X-Vault-Token"); h && !h->empty()) return std::string(*h);
  for (const auto& h : req.headers) {
    if (http::iequals(h.name, "Authorization") && h.value.starts_with("Bearer ")) return h.value.substr(7);
  }
  return {};
}

Record request_record(FakeVault::Impl& v, detail::LogicalRequest& lr) {
  Record r;
  r.time = go_rfc3339_nano(v.sys_now());
  r.auth = lr.audit_caller;
  r.acl_checked = lr.acl_checked;
  r.allowed = lr.allowed;
  r.granting = lr.granting_policies;
  r.id = lr.request_id;
  r.operation = std::string(detail::capability_for(lr.op));
  std::string ns;
  for (const auto& n : v.namespaces) {
    if (lr.path.starts_with(n) && n.size() > ns.size()) ns = n;
  }
  r.path = lr.path.substr(ns.size());
  r.ns_path = ns;
  if (ns.empty()) {
    r.ns_id = "root";
  } else {
    auto& id = v.namespace_ids[ns];
    if (id.empty()) id = random_base62(5);
    r.ns_id = id;
  }
  r.mount = mount_facts(v, lr.path, ns);
  if (!lr.unauthenticated) r.client_token = presented_token(*lr.http);
  r.data = lr.data;
  r.remote_address = lr.http->remote_address;
  r.remote_port = lr.http->remote_port;
  return r;
}

void add_response(FakeVault::Impl& v, Record& r, const Reply& reply) {
  r.response = true;
  r.time = go_rfc3339_nano(v.sys_now());
  if (reply.status >= 400) {
    r.error = first_error(reply);
    return;
  }
  auto body = reply.body.empty() ? Result<GoValue>(GoValue()) : parse_go_json(reply.body);
  if (!body || !body->is_object()) return;  // 204: the backend returned nil
  r.backend_response = true;
  if (const GoValue* data = body->find("data")) r.response_data = *data;
  if (const GoValue* warnings = body->find("warnings")) r.warnings = *warnings;
  if (const GoValue* auth = body->find("auth"); auth && auth->is_object()) {
    if (const GoValue* token = auth->find("client_token"); token && token->is_string()) {
      if (const detail::Token* t = v.find_token(token->text())) r.response_auth = *t;
    }
  }
}

asio::awaitable<bool> log_entry(std::shared_ptr<FakeVault::Impl> v, Record record) {
  // At least one device must take it (Vault's broker rule); each device formats with its own
  // salt and order. Devices enabled while this waits are not asked.
  int& failing = record.response ? v->failing_response_entries : v->failing_request_entries;
  if (failing > 0) {
    --failing;
    co_return false;
  }
  const auto devices = v->audit_devices;
  bool taken = false;
  for (const auto& d : devices) {
    if (co_await d->write(format(record, *d), v->audit_stats)) taken = true;
  }
  co_return taken;
}

Reply internal_error() { return detail::reply_errors(500, {"internal error"}); }

}  // namespace

asio::awaitable<Reply> FakeVault::Impl::audited(LogicalRequest& lr, std::optional<Reply> refused,
                                                std::function<Reply()> run) {
  if (audit_devices.empty()) co_return refused ? std::move(*refused) : run();
  auto self = shared_from_this();
  if (!lr.audit_caller && !lr.unauthenticated) {
    // Paths that check the token themselves (mount detection): the entries name the caller.
    detail::Token* token = nullptr;
    if (lookup_token(*lr.http, token) == TokenState::ok) lr.audit_caller = *token;
  }
  Record record = request_record(*this, lr);
  if (refused) {
    record.error = "permission denied";
    if (!co_await log_entry(self, record)) {
      ++audit_stats.requests_failed;
      co_return internal_error();
    }
    record.error.clear();
    add_response(*this, record, *refused);
    if (record.error.empty()) record.error = "permission denied";
    if (!co_await log_entry(self, record)) {
      ++audit_stats.requests_failed;
      co_return internal_error();
    }
    co_return std::move(*refused);
  }
  if (!co_await log_entry(self, record)) {
    ++audit_stats.requests_failed;
    co_return internal_error();
  }
  Reply reply = run();
  add_response(*this, record, reply);
  if (!co_await log_entry(self, std::move(record))) {
    // The request ran (a write is done), and still the client gets a 500.
    ++audit_stats.requests_failed;
    co_return internal_error();
  }
  co_return reply;
}

namespace {

Result<void> check(const AuditDeviceOptions& o) {
  if (o.address.empty() || (o.socket_type != "tcp" && o.socket_type != "unix")) {
    return Error(Errc::invalid_argument,
                 fmt::format("audit device \"{}\" ({}): an audit device needs an address and socket_type tcp or unix",
                             o.address, o.socket_type));
  }
  return {};
}

}  // namespace

Result<void> FakeVault::Impl::start_audit() {
  for (const auto& o : options.audit_devices) {
    if (auto ok = check(o); !ok) return ok.error();
    audit_devices.push_back(std::make_shared<AuditDevice>(ex, o));
  }
  return {};
}

void FakeVault::Impl::stop_audit() {
  for (auto& d : audit_devices) d->close();
}

asio::awaitable<Result<void>> FakeVault::enable_audit_device(AuditDeviceOptions options) {
  auto impl = impl_;
  if (auto ok = check(options); !ok) co_return ok.error();
  auto device = std::make_shared<AuditDevice>(impl->ex, options);
  if (!options.skip_test) {
    // The probe is formatted with a salt of its own (nothing in it is hashed anyway).
    Record probe;
    probe.time = go_rfc3339_nano(impl->sys_now());
    probe.id = random_uuid();
    probe.operation = "update";
    probe.ns_id = "root";
    probe.path = "sys/audit/test";
    AuditStats ignored;
    if (!co_await device->write(format(probe, *device), ignored)) {
      device->close();
      co_return Error(Errc::io_error, fmt::format("audit backend failed test message: cannot write to {} {}",
                                                  options.socket_type, options.address));
    }
  }
  impl->audit_devices.push_back(std::move(device));
  co_return Result<void>{};
}

AuditStats FakeVault::audit_stats() const { return impl_->audit_stats; }

void FakeVault::break_audit_connections() {
  for (auto& d : impl_->audit_devices) d->break_connection();
}

void FakeVault::fail_audit_entries(int request_entries, int response_entries) {
  impl_->failing_request_entries = request_entries;
  impl_->failing_response_entries = response_entries;
}

}  // namespace nicsync::fakes
