#pragma once
// End-to-end world: the test Vault and the test ClearTax on a thread of their own, and the real
// `nicsyncd` as a child process configured against them. Header-only so that e2e tests and
// benchmarks (which link the fakes) can share it.
//
// Threading: the fakes live on the world's thread. Touch them only inside `call()`, which runs
// a function there and returns its result.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "fakes/cleartax/fake_cleartax.hpp"
#include "fakes/vault/fake_vault.hpp"
#include "nicsync/core/gstin.hpp"
#include "nicsync/http/client.hpp"
#include "testing/deadline.hpp"
#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

#include <sys/socket.h>
#include <sys/un.h>

namespace nicsync::testing {

/// The i-th of up to 37 × 26³ × 9999 valid (strict) GSTINs: state code, PAN letters and serial
/// vary, the check character is computed.
inline std::string world_gstin(int i) {
  const int state = 1 + i % 37;
  const int serial = 1 + (i / 37) % 9999;
  const int letters = i / (37 * 9999);
  std::string body =
      fmt::format("{:02}AA{}{}{}{:04}R1Z", state, static_cast<char>('A' + letters / 676 % 26),
                  static_cast<char>('A' + letters / 26 % 26), static_cast<char>('A' + letters % 26), serial);
  body += gstin_check_char(body);
  return body;
}

/// The test Vault and test ClearTax, on their own thread.
class World {
 public:
  struct Options {
    bool enterprise = false;  ///< Vault Enterprise: the events websocket
    std::string cleartax_client_secret = "ct-client-secret-0b7d4e";
    std::chrono::milliseconds event_ping_interval{30000};
    /// Socket audit devices of the test Vault (e.g. one dialling a daemon's [watch.audit]).
    std::vector<fakes::AuditDeviceOptions> audit_devices;
  };

  World() : World(Options{}) {}
  explicit World(Options options) : options_(std::move(options)), guard_(io_.get_executor()) {
    fakes::FakeVaultOptions vo;
    vo.enterprise = options_.enterprise;
    vo.root_token = "root-token-for-tests";
    vo.event_ping_interval = options_.event_ping_interval;
    vo.audit_devices = options_.audit_devices;
    vault_ = std::make_unique<fakes::FakeVault>(io_.get_executor(), vo);
    fakes::FakeClearTaxOptions co;
    co.server.listen = "127.0.0.1:0";
    co.client_secrets = {options_.cleartax_client_secret};
    cleartax_ = std::make_unique<fakes::FakeClearTax>(io_.get_executor(), co);
    if (auto r = vault_->start(); !r) throw std::runtime_error("test Vault: " + r.error().describe());
    if (auto r = cleartax_->start(); !r) throw std::runtime_error("test ClearTax: " + r.error().describe());
    vault_address_ = vault_->address();
    cleartax_url_ = cleartax_->base_url();
    vault_->set_policy_rules("nicsync", {{"secret/data/*", {"read", "list", "subscribe"}, {"kv-v2/*"}},
                                         {"secret/metadata/*", {"read", "list"}, {}},
                                         {"sys/internal/ui/mounts/*", {"read"}, {}},
                                         {"sys/events/subscribe/*", {"read"}, {}}});
    token_ = vault_->create_token({.policies = {"nicsync"}, .ttl = std::chrono::hours(24)});
    thread_ = std::thread([this] { io_.run(); });
  }

  ~World() {
    call([this] {
      cleartax_->release_hangs();
      cleartax_->stop_now();
      vault_->stop();
    });
    guard_.reset();
    io_.stop();
    thread_.join();
    cleartax_.reset();
    vault_.reset();
  }
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  /// Runs `f` on the fakes' thread and returns its result.
  template <class F>
  auto call(F f) -> decltype(f()) {
    using R = decltype(f());
    std::promise<R> done;
    auto fut = done.get_future();
    boost::asio::post(io_, [&] {
      try {
        if constexpr (std::is_void_v<R>) {
          f();
          done.set_value();
        } else {
          done.set_value(f());
        }
      } catch (...) {
        done.set_exception(std::current_exception());
      }
    });
    return fut.get();
  }

  /// The fakes' executor: coroutines spawned on it may touch the fakes (benchmarks drive
  /// rotations from there).
  boost::asio::any_io_executor executor() { return io_.get_executor(); }

  /// Only inside call().
  fakes::FakeVault& vault() { return *vault_; }
  fakes::FakeClearTax& cleartax() { return *cleartax_; }

  [[nodiscard]] const std::string& vault_address() const { return vault_address_; }
  [[nodiscard]] const std::string& cleartax_url() const { return cleartax_url_; }
  /// A token with read/list on secret/ (what the daemon logs in with).
  [[nodiscard]] const std::string& token() const { return token_; }
  [[nodiscard]] const Options& options() const { return options_; }

  /// Stores the ClearTax client secret in Vault where the generated config points.
  void seed_cleartax_secret() {
    call([this] {
      vault_->kv_put("secret", "nicsync/cleartax", {{"client_secret", options_.cleartax_client_secret}});
    });
  }
  /// Sets up AppRole "nicsync" (policy "nicsync", tokens as `spec` says otherwise) for daemons
  /// configured with `DaemonConfig::vault_auth = "approle"`.
  void enable_approle(fakes::TokenSpec spec = {.ttl = std::chrono::hours(1)}) {
    spec.policies = {"nicsync"};
    approle_role_id_ = "role-" + random_hex(8);
    approle_secret_id_ = "secret-id-" + random_hex(12);
    call([&] { vault_->add_approle(kAppRole, approle_role_id_, approle_secret_id_, spec); });
  }
  [[nodiscard]] const std::string& approle_role_id() const { return approle_role_id_; }
  [[nodiscard]] const std::string& approle_secret_id() const { return approle_secret_id_; }
  /// A new secret id for the role (the old one stops working at once); returns it.
  std::string rotate_approle_secret_id() {
    approle_secret_id_ = "secret-id-" + random_hex(12);
    call([&] { vault_->rotate_secret_id(kAppRole, approle_secret_id_); });
    return approle_secret_id_;
  }
  static constexpr const char* kAppRole = "nicsync";

  /// Writes a credential version for `gstin` at secret/nic/<gstin>; returns the version.
  std::int64_t put_credential(const std::string& gstin, const std::string& username, const std::string& password) {
    return call([&] {
      return vault_->kv_put("secret", "nic/" + gstin, {{"username", username}, {"password", password}});
    });
  }
  /// Writes a credential version through the test Vault's HTTP API (blocking), as a rotation
  /// job does: unlike `put_credential`, Vault's audit devices see it. Returns the status.
  int write_credential_over_http(const std::string& gstin, const std::string& username, const std::string& password) {
    boost::asio::io_context io;
    http::Client client(io.get_executor());
    http::Request r;
    r.method = "POST";
    r.url = vault_address_ + "/v1/secret/data/nic/" + gstin;
    r.headers = {{"X-Vault-Token", vault_->options().root_token}, {"Content-Type", "application/json"}};
    r.body = fmt::format(R"({{"data":{{"username":"{}","password":"{}"}}}})", username, password);
    r.timeout = std::chrono::seconds(10);
    auto resp = run_for(io, client.request(std::move(r)), std::chrono::seconds(15));
    client.shutdown();
    return resp ? resp->status : 0;
  }
  /// What the test ClearTax holds for `gstin`.
  std::optional<fakes::StoredCredential> stored(const std::string& gstin) {
    return call([&] { return cleartax_->stored(gstin); });
  }

 private:
  Options options_;
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::unique_ptr<fakes::FakeVault> vault_;
  std::unique_ptr<fakes::FakeClearTax> cleartax_;
  static std::string random_hex(int bytes) {
    std::random_device rd;
    std::string out;
    for (int i = 0; i < bytes; ++i) out += fmt::format("{:02x}", rd() & 0xff);
    return out;
  }

  std::string vault_address_, cleartax_url_, token_;
  std::string approle_role_id_, approle_secret_id_;
  std::thread thread_;
};

/// A whole file, bytes as they are (empty if it cannot be read: files may vanish during a scan).
inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Every file under `dir` (logs, ledger, WAL, caches) that contains one of `secrets`, except files
/// whose name ends in `except_suffix`. A hit names the file and only the first characters of the
/// secret, so a failing report never shows one whole.
inline std::vector<std::string> files_containing(const std::string& dir, const std::vector<std::string>& secrets,
                                                 const std::string& except_suffix = {}) {
  std::vector<std::string> hits;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    if (!except_suffix.empty() && e.path().string().ends_with(except_suffix)) continue;
    const std::string content = read_all(e.path());
    for (const auto& s : secrets) {
      if (content.find(s) != std::string::npos) hits.push_back(e.path().string() + " contains " + s.substr(0, 3) + "…");
    }
  }
  return hits;
}

/// Polls `pred` every few milliseconds until it holds or `timeout` passes (for conditions in
/// other processes that offer no event to wait on). Returns whether it held.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

/// Settings of a generated daemon config.
struct DaemonConfig {
  std::vector<std::string> gstins;  ///< explicit mappings to `destinations`
  std::vector<std::string> destinations = {"cleartax"};
  bool mapping_set = false;  ///< map "secret/nic/" as a mapping set instead of explicit mappings
  bool webhook = false;      ///< add destination "hook" (the test ClearTax's /hooks/ recorder)
  std::string watch_mode = "poll";
  std::string poll_interval = "1s";
  std::string resync_interval = "2s";
  std::string jitter = "50ms";
  std::string backoff_base = "50ms";
  std::string backoff_cap = "500ms";
  std::string stop_grace = "5s";
  std::string log_level = "info";
  std::string log_format = "text";
  std::string push_timeout = "5s";
  int concurrency = 16;  ///< of each destination
  /// "token" (VAULT_TOKEN = World::token()) or "approle" (World::enable_approle() first; the
  /// role id and secret id are written to files outside the state directory).
  std::string vault_auth = "token";
  std::string vault_extra;        ///< appended verbatim to [vault] (e.g. "timeout = \"5s\"\n")
  std::string sync_extra;         ///< appended verbatim to [sync]
  std::string destination_extra;  ///< appended verbatim to every [[destination]]
  std::string cleartax_extra;     ///< appended verbatim to the "cleartax" [[destination]]
  std::string extra;              ///< appended verbatim
  std::string top_level;          ///< top-level keys (e.g. gstin_validation), put before the first table
  /// Words put before the daemon's argv, e.g. {"/usr/bin/setpriv", "--reuid=65534", ...}
  /// (NICSYNC_DAEMON_WRAPPER goes in front of these).
  std::vector<std::string> wrapper;
};

/// The real nicsyncd, configured against a World, as a child process.
class Daemon {
 public:
  Daemon(World& world, const TempDir& dir, DaemonConfig config)
      : world_(world), dir_(dir), config_(std::move(config)), port_(free_port()) {
    config_path_ = dir_.file("nicsyncd.toml");
    state_dir_ = dir_.file("state");
    token_path_ = dir_.file("api-token");
    write_file(token_path_, "trigger-token-5d1c\n");
    credentials_dir_ = dir_.file("credentials");
    if (config_.vault_auth == "approle") {
      std::filesystem::create_directories(credentials_dir_);
      write_file(credentials_dir_ + "/role-id", world_.approle_role_id() + "\n");
      write_secret_id(world_.approle_secret_id());
    }
    write_config();
  }
  /// Replaces the secret id file atomically (as a provisioning job would).
  void write_secret_id(const std::string& secret_id) {
    write_file(credentials_dir_ + "/secret-id.new", secret_id + "\n");
    std::filesystem::rename(credentials_dir_ + "/secret-id.new", credentials_dir_ + "/secret-id");
  }
  /// Rotates the AppRole secret id in the test Vault, then writes the new one to the file.
  void rotate_secret_id() { write_secret_id(world_.rotate_approle_secret_id()); }
  /// Where the AppRole id files are (not under the state directory: they are secrets the
  /// daemon is given, not ones it keeps).
  [[nodiscard]] const std::string& credentials_dir() const { return credentials_dir_; }
  ~Daemon() {
    if (process_ && process_->running()) process_->kill();
  }

  [[nodiscard]] std::string config_text() const {
    std::string auth = "[vault.auth]\nmethod = \"token\"\n";
    if (config_.vault_auth == "approle") {
      auth = fmt::format(
          "[vault.auth]\nmethod = \"approle\"\nrole_id_file = \"{}/role-id\"\n"
          "secret_id_file = \"{}/secret-id\"\n",
          credentials_dir_, credentials_dir_);
    }
    std::string t = fmt::format(
        "state_dir = \"{}\"\n{}"
        "[vault]\naddress = \"{}\"\n{}{}"
        "[watch]\nmode = \"{}\"\npoll_interval = \"{}\"\nresync_interval = \"{}\"\njitter = \"{}\"\n"
        "[api]\nlisten = \"127.0.0.1:{}\"\ntoken_file = \"{}\"\n"
        "[log]\nlevel = \"{}\"\nformat = \"{}\"\n"
        "[sync]\nbackoff_base = \"{}\"\nbackoff_cap = \"{}\"\nstop_grace = \"{}\"\n{}"
        "[[destination]]\nname = \"cleartax\"\nkind = \"cleartax\"\nbase_url = \"{}\"\nauth = \"client_secret\"\n"
        "secret_path = \"secret/nicsync/cleartax\"\nsecret_key = \"client_secret\"\ntimeout = \"{}\"\n"
        "concurrency = {}\n{}{}",
        state_dir_, config_.top_level, world_.vault_address(), config_.vault_extra, auth, config_.watch_mode,
        config_.poll_interval, config_.resync_interval, config_.jitter, port_, token_path_, config_.log_level,
        config_.log_format, config_.backoff_base, config_.backoff_cap, config_.stop_grace, config_.sync_extra,
        world_.cleartax_url(), config_.push_timeout, config_.concurrency, config_.destination_extra,
        config_.cleartax_extra);
    if (config_.webhook) {
      t += fmt::format(
          "[[destination]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}/hooks/{{gstin}}\"\nmethod = \"PUT\"\n"
          "body = '{{\"gstin\": {{gstin}}, \"username\": {{username}}, \"password\": {{password}}, "
          "\"version\": {{version}}}}'\ntimeout = \"{}\"\nconcurrency = {}\n{}",
          world_.cleartax_url(), config_.push_timeout, config_.concurrency, config_.destination_extra);
    }
    std::string dests;
    for (const auto& d : config_.destinations) dests += (dests.empty() ? "\"" : ", \"") + d + "\"";
    if (config_.mapping_set) {
      t += fmt::format("[[mapping_set]]\nprefix = \"secret/nic/\"\ndestinations = [{}]\n", dests);
    }
    for (const auto& g : config_.gstins) {
      t += fmt::format("[[mapping]]\ngstin = \"{}\"\npath = \"secret/nic/{}\"\ndestinations = [{}]\n", g, g, dests);
    }
    return t + config_.extra;
  }
  void write_config() { write_file(config_path_, config_text()); }
  DaemonConfig& config() { return config_; }

  /// Starts nicsyncd (`wait_started` waits for its "ready" log line). `wrapper` goes before the
  /// program on the command line (e.g. a shell that sets something up and execs "$@").
  void start(std::vector<std::string> extra_env = {}, std::vector<std::string> wrapper = {}) {
    std::vector<std::string> env = {"VAULT_TOKEN=" + world_.token()};
    for (auto& e : extra_env) env.push_back(std::move(e));
    process_.reset();
    output_mark_ = 0;  // offsets into the new process's output
    // NICSYNC_DAEMON_WRAPPER="valgrind -q" (or gdb -batch -ex run -ex bt --args) runs the daemon under a tool.
    std::vector<std::string> argv = std::move(wrapper);
    if (const char* w = std::getenv("NICSYNC_DAEMON_WRAPPER")) {
      std::istringstream words(w);
      for (std::string word; words >> word;) argv.push_back(word);
    }
    argv.insert(argv.end(), config_.wrapper.begin(), config_.wrapper.end());
    argv.push_back(built_program("nicsyncd"));
    argv.insert(argv.end(), {"run", "--config", config_path_});
    process_ = std::make_unique<Process>(ProcessOptions{
        .argv = std::move(argv),
        .env = std::move(env),
        .unset_env = {"VAULT_ADDR", "VAULT_NAMESPACE", "NOTIFY_SOCKET", "VAULT_CACERT", "JOURNAL_STREAM"},
        // In the test's directory, so that a core file would land where the
        // secret scans look.
        .cwd = dir_.path().string(),
        .log_file = dir_.file("daemon.log")});
  }
  bool wait_started(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return process_->wait_for_output("ready: API on", timeout, output_mark_).has_value();
  }
  Process& process() { return *process_; }
  void signal(int sig) { process_->signal(sig); }
  /// Output from here on is what later `wait_for_log` calls look at.
  void mark_output() { output_mark_ = process_->output().size(); }
  bool wait_for_log(const std::string& needle, std::chrono::milliseconds timeout) {
    return process_->wait_for_output(needle, timeout, output_mark_).has_value();
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string url(const std::string& path) const {
    return fmt::format("http://127.0.0.1:{}{}", port_, path);
  }
  [[nodiscard]] const std::string& config_path() const { return config_path_; }
  [[nodiscard]] const std::string& state_dir() const { return state_dir_; }
  [[nodiscard]] const std::string& token_path() const { return token_path_; }

  /// One request to the daemon's API (blocking, 10 s deadline).
  Result<http::Response> request(const std::string& method, const std::string& path, std::string body = {},
                                 bool with_token = false) {
    boost::asio::io_context io;
    http::Client client(io.get_executor());
    http::Request r;
    r.method = method;
    r.url = url(path);
    r.body = std::move(body);
    if (!r.body.empty()) r.headers.push_back({"Content-Type", "application/json"});
    if (with_token) r.headers.push_back({"Authorization", "Bearer trigger-token-5d1c"});
    r.timeout = std::chrono::seconds(10);
    return run_for(io, client.request(std::move(r)), std::chrono::seconds(15));
  }
  /// GET `path` as JSON (nothing if unreachable or not JSON).
  std::optional<boost::json::value> get_json(const std::string& path) {
    auto r = request("GET", path);
    if (!r) return std::nullopt;
    boost::system::error_code ec;
    auto v = boost::json::parse(r->body, ec);
    if (ec) return std::nullopt;
    return v;
  }
  /// The /v1/status entry of one (GSTIN, destination) pair (nothing if unreachable or absent).
  std::optional<boost::json::object> pair_status(const std::string& gstin, const std::string& destination) {
    auto st = get_json("/v1/status");
    if (!st) return std::nullopt;
    for (const auto& p : st->at("pairs").as_array()) {
      const auto& o = p.as_object();
      if (o.at("gstin").as_string() == gstin && o.at("destination").as_string() == destination) return o;
    }
    return std::nullopt;
  }
  /// /readyz status (0 when unreachable).
  int readyz() {
    auto r = request("GET", "/readyz");
    return r ? r->status : 0;
  }

 private:
  World& world_;
  const TempDir& dir_;
  DaemonConfig config_;
  std::uint16_t port_;
  std::string config_path_, state_dir_, token_path_, credentials_dir_;
  std::unique_ptr<Process> process_;
  std::size_t output_mark_ = 0;
};

/// systemd's end of NOTIFY_SOCKET: a datagram socket at a path, read on a thread.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    if (path_.size() >= sizeof(sockaddr_un::sun_path))
      throw std::runtime_error("NOTIFY_SOCKET path too long: " + path_);
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      throw std::runtime_error("bind " + path_ + ": " + std::strerror(errno));
    timeval tv{.tv_sec = 0, .tv_usec = 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    reader_ = std::thread([this] {
      char buf[4096];
      while (!stop_) {
        const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
        if (n <= 0) continue;
        const auto at = std::chrono::steady_clock::now();
        std::lock_guard lock(mu_);
        messages_.emplace_back(buf, static_cast<std::size_t>(n));
        received_at_.push_back(at);
        cv_.notify_all();
      }
    });
  }
  ~NotifySocket() {
    stop_ = true;
    reader_.join();
    ::close(fd_);
  }
  /// Waits for a message containing `needle`, at or after message index `from`; returns its index.
  std::optional<std::size_t> wait_for(const std::string& needle, std::chrono::milliseconds timeout,
                                      std::size_t from = 0) {
    std::unique_lock lock(mu_);
    std::optional<std::size_t> found;
    cv_.wait_for(lock, timeout, [&] {
      for (std::size_t i = from; i < messages_.size(); ++i) {
        if (messages_[i].find(needle) != std::string::npos) {
          found = i;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  /// When message `index` arrived (steady clock).
  std::chrono::steady_clock::time_point received_at(std::size_t index) {
    std::lock_guard lock(mu_);
    return received_at_.at(index);
  }
  std::string all() {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& m : messages_) out += "[" + m + "]\n";
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> messages_;
  std::vector<std::chrono::steady_clock::time_point> received_at_;
  std::thread reader_;
};

}  // namespace nicsync::testing
