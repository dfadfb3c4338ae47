// Sync engine throughput end to end: the real nicsyncd (a child process) against the standalone
// test Vault (Vault Enterprise mode: the daemon follows the event stream) and the standalone test
// ClearTax, no rate limit, N GSTINs under one mapping set (10,000; --tiny: 200).
//
// After a warm-up (the first sync of every GSTIN), each repetition rotates every GSTIN at once
// (one new KV version each, written through Vault's API as fast as Vault takes them) and waits
// until the daemon's pipeline is empty: every push confirmed and committed to the ledger (the
// `applied` counter reached N more and nothing is in flight or queued). Per repetition:
//   deliveries/s   N / (pipeline empty − first rotation write), i.e. event + metadata read +
//                  data read + push + durable ledger commit, for all N;
//   p50/p99        per GSTIN, from its Vault write being acknowledged to its push being received
//                  by the test ClearTax (receive timestamps from the fake's admin API).
//   CPU per delivery of each process (from /proc; the PostgreSQL server's with all its
//                  processes), and how many cores they got together (on a machine shared with
//                  other work, fewer than it has: the rate scales with it).
// Figures are the medians over the repetitions. Goal: >= 2,000 deliveries/s on 2 cores (release),
// with the ledger on SQLite and on PostgreSQL (a server of the bench's own on this machine,
// testing::PostgresServer: fsync on), one after the other in one run, side by side at the end.
//
// Run: build/release/tests/nicsync_bench_engine_bench [--tiny] [--gstins N] [--repetitions R]
//      [--concurrency C] [--ledger sqlite|postgresql|both]
//      (C: the destination's push concurrency; default: the daemon's default. --ledger: default
//      both; with --tiny, both only when PostgreSQL's server programs are installed)
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "nicsync/core/gstin.hpp"
#include "nicsync/core/timestamp.hpp"
#include "nicsync/http/client.hpp"
#include "nicsync/ledger/keys.hpp"
#include "testing/bench.hpp"
#include "testing/postgres_server.hpp"
#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

namespace asio = boost::asio;
namespace json = boost::json;
using namespace nicsync;
using Clock = std::chrono::system_clock;

namespace {

constexpr std::string_view kRootToken = "bench-root-token";
constexpr std::string_view kClientSecret = "bench-client-secret-7c1e";
constexpr std::string_view kStorePath = "/einv/v2/nic_credentials/store_nic_credentials";

struct Options {
  bool tiny = false;
  int gstins = 10'000;
  int repetitions = 3;
  int concurrency = 0;               // 0 = the daemon's default
  std::vector<std::string> ledgers;  // "sqlite", "postgresql"
};

/// The medians of one backend's repetitions.
struct Summary {
  std::string ledger;
  double rate = 0, p50 = 0, p99 = 0, daemon_ms = 0, server_ms = 0, cores = 0;
};

/// The i-th valid GSTIN (state, PAN letters and serial vary; the check character is computed).
std::string bench_gstin(int i) {
  const int state = 1 + i % 37;
  const int serial = 1 + (i / 37) % 9999;
  const int letters = i / (37 * 9999);
  std::string body =
      fmt::format("{:02}BE{}{}{}{:04}R1Z", state, static_cast<char>('A' + letters / 676 % 26),
                  static_cast<char>('A' + letters / 26 % 26), static_cast<char>('A' + letters % 26), serial);
  body += gstin_check_char(body);
  return body;
}

std::string password_for(int i, int version) { return fmt::format("Bench&Pw<{}>v{}", i, version); }

std::string program(const std::string& relative) {
  if (std::getenv("NICSYNC_BINARY_DIR") != nullptr) return testing::built_program(relative);
  // Run by hand: this program lives in <build>/tests.
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  return (self.parent_path().parent_path() / relative).string();
}

/// Starts a fake's program and returns its "listening on" address.
std::string start_listening(testing::Process& p, const char* what) {
  auto end = p.wait_for_output("\n", std::chrono::seconds(20));
  const std::string prefix = "listening on ";
  std::string line = p.output().substr(0, end.value_or(0));
  if (!end || !line.starts_with(prefix))
    throw std::runtime_error(fmt::format("{} did not start: {}", what, p.output()));
  line = line.substr(prefix.size());
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  return line;
}

/// Blocking HTTP helper on its own loop (the bench's side of the fakes' and daemon's APIs).
class Http {
 public:
  Http() : client_(io_.get_executor(), http::ClientOptions{.max_host_connections = 64}) {}

  Result<http::Response> get(const std::string& url) {
    http::Request r;
    r.url = url;
    r.timeout = std::chrono::seconds(30);
    return run(std::move(r));
  }

  /// Writes `password_for(i, version)` for every i in [0, n) (64 at a time); returns the time
  /// each write was acknowledged, and sets `started` to when the first one went out.
  std::vector<Clock::time_point> rotate(const std::string& vault, int n, int version, Clock::time_point& started) {
    std::vector<Clock::time_point> acked(static_cast<std::size_t>(n));
    int next = 0;
    int failures = 0;
    std::string first_error;
    auto worker = [&]() -> asio::awaitable<void> {
      while (next < n) {
        const int i = next++;
        http::Request r;
        r.method = "PUT";
        r.url = vault + "/v1/secret/data/nic/" + bench_gstin(i);
        r.headers = {{"X-Vault-Token", std::string(kRootToken)}, {"Content-Type", "application/json"}};
        r.body = fmt::format(R"({{"data":{{"username":"API_{}","password":"{}"}}}})", i, password_for(i, version));
        r.timeout = std::chrono::seconds(30);
        auto resp = co_await client_.request(std::move(r));
        acked[static_cast<std::size_t>(i)] = Clock::now();
        if (!resp || resp->status != 200) {
          if (first_error.empty())
            first_error = resp ? fmt::format("HTTP {}: {}", resp->status, resp->body) : resp.error().describe();
          ++failures;
        }
      }
    };
    started = Clock::now();
    for (int w = 0; w < 64; ++w) asio::co_spawn(io_, worker(), asio::detached);
    io_.restart();
    io_.run();
    if (failures > 0) throw std::runtime_error(fmt::format("{} Vault writes failed: {}", failures, first_error));
    return acked;
  }

  Result<http::Response> put(const std::string& url, std::string body) {
    http::Request r;
    r.method = "PUT";
    r.url = url;
    r.headers = {{"X-Vault-Token", std::string(kRootToken)}, {"Content-Type", "application/json"}};
    r.body = std::move(body);
    return run(std::move(r));
  }

 private:
  // One request, on this thread, to its end.
  Result<http::Response> run(http::Request r) {
    std::optional<Result<http::Response>> out;
    asio::co_spawn(io_, client_.request(std::move(r)), [&](std::exception_ptr e, Result<http::Response> v) {
      if (e) std::rethrow_exception(e);
      out.emplace(std::move(v));
    });
    io_.restart();
    io_.run();
    return std::move(*out);
  }

  asio::io_context io_{1};
  http::Client client_;
};

/// One sample of the daemon's /metrics that matters here.
struct Pipeline {
  double applied = 0;
  double in_flight = 0;
  double queued = 0;
};

std::optional<double> metric(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return std::nullopt;
  return std::strtod(text.c_str() + at + series.size() + 2, nullptr);
}

std::optional<Pipeline> pipeline(Http& http, const std::string& api) {
  auto r = http.get(api + "/metrics");
  if (!r || r->status != 200) return std::nullopt;
  Pipeline p;
  auto applied = metric(r->body, R"(nicsync_deliveries_total{destination="cleartax",outcome="applied"})");
  auto in_flight = metric(r->body, R"(nicsync_destination_in_flight{destination="cleartax"})");
  auto queued = metric(r->body, R"(nicsync_destination_queued{destination="cleartax"})");
  if (!applied || !in_flight || !queued) return std::nullopt;
  return Pipeline{*applied, *in_flight, *queued};
}

/// Waits until `applied` reached `target` and nothing is in flight or queued; returns when that
/// was first seen. Throws after `timeout`.
Clock::time_point wait_drained(Http& http, const std::string& api, double target, std::chrono::seconds timeout,
                               testing::Process& daemon) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  std::optional<std::pair<Clock::time_point, double>> last;
  for (;;) {
    auto p = pipeline(http, api);
    const auto now = Clock::now();
    if (p && p->applied >= target && p->in_flight == 0 && p->queued == 0) return now;
    if (std::chrono::steady_clock::now() > until || !daemon.running()) {
      throw std::runtime_error(fmt::format("the daemon did not deliver everything in time (applied {} of {})\n{}",
                                           p ? p->applied : -1, target, daemon.output().substr(0, 4000)));
    }
    // Every scrape walks all pairs in the daemon, which is what is being measured (at a fixed
    // 50 ms, ~5 % of its CPU): far from the end, wait for about half the time the rest should
    // take at the rate seen so far; near it, every 10 ms.
    auto wait = std::chrono::milliseconds(50);
    if (p && last && p->applied > last->second) {
      const double rate = (p->applied - last->second) / std::chrono::duration<double>(now - last->first).count();
      const double rest_ms = (target - p->applied) / rate * 1000;
      wait = std::chrono::milliseconds(static_cast<int>(std::clamp(rest_ms / 2, 10.0, 500.0)));
    }
    if (p) last.emplace(now, p->applied);
    std::this_thread::sleep_for(wait);
  }
}

/// CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat.
double cpu_seconds(pid_t pid) {
  const std::string stat = testing::read_file(fmt::format("/proc/{}/stat", pid));
  // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// CPU seconds of the PostgreSQL server: the postmaster, the children it has now (backends, the
/// WAL writer, the checkpointer) and those it has reaped (/proc stat fields 16 and 17).
double server_cpu_seconds(pid_t postmaster) {
  if (postmaster <= 0) return 0;
  double seconds = cpu_seconds(postmaster);
  const std::string stat = testing::read_file(fmt::format("/proc/{}/stat", postmaster));
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 17 && in >> field; ++i) {
    if (i >= 16) seconds += std::stod(field) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  std::istringstream children(testing::read_file(fmt::format("/proc/{0}/task/{0}/children", postmaster)));
  for (pid_t child = 0; children >> child;) seconds += cpu_seconds(child);
  return seconds;
}

double load_average() {
  double l[1] = {0};
  return ::getloadavg(l, 1) == 1 ? l[0] : -1;
}

using nicsync::testing::median;
using nicsync::testing::percentile;

struct Round {
  double cpu_ms_daemon = 0, cpu_ms_vault = 0, cpu_ms_cleartax = 0, cpu_ms_bench = 0;  // per delivery
  double cpu_ms_server = 0;  // the PostgreSQL server's, per delivery (0 with SQLite)
  double cores = 0;          // CPU seconds of all the processes per second of the round
  double rate = 0;
  double seconds = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double write_seconds = 0;
};

/// Store requests received since `since` (by seq), as GSTIN index → receive time, for `version`.
std::map<int, Clock::time_point> received(Http& http, const std::string& cleartax, std::uint64_t since, int version,
                                          std::uint64_t& last_seq, int& stores) {
  auto r = http.get(fmt::format("{}/__admin/requests?path={}&since={}", cleartax, kStorePath, since));
  if (!r || r->status != 200) throw std::runtime_error("cannot read the test ClearTax's requests");
  std::map<int, Clock::time_point> out;
  stores = 0;
  const std::string suffix = fmt::format(">v{}", version);
  const json::value all = json::parse(r->body);
  for (const auto& item : all.at("requests").as_array()) {
    const auto& o = item.as_object();
    last_seq = std::max<std::uint64_t>(last_seq, o.at("seq").to_number<std::uint64_t>());
    if (o.at("outcome").as_string() != "stored") continue;
    ++stores;
    auto body = json::parse(o.at("body").as_string());
    const std::string pw(body.at("password").as_string());
    // "Bench&Pw<i>vN"
    const auto lt = pw.find('<');
    const auto gt = pw.find('>');
    if (lt == std::string::npos || gt == std::string::npos || !pw.ends_with(suffix)) continue;
    const int i = std::stoi(pw.substr(lt + 1, gt - lt - 1));
    auto at = parse_rfc3339(std::string(o.at("received_at").as_string()));
    if (!at) throw std::runtime_error("bad received_at from the test ClearTax");
    out.emplace(i, std::chrono::time_point_cast<Clock::duration>(*at));
  }
  return out;
}

Summary run(const Options& opt, const std::string& ledger) {
  testing::TempDir dir;
  // The PostgreSQL ledger: a server of the bench's own, its role's password in a url_file.
  std::optional<testing::PostgresServer> postgres;
  std::string ledger_config;
  if (ledger == "postgresql") {
    postgres.emplace();
    postgres->create_role_and_database("nicsync", "bench-ledger-pw-4e1a");
    testing::write_file(dir.file("ledger-url"), postgres->conninfo("nicsync", "nicsync", "bench-ledger-pw-4e1a"));
    auto keys = ledger::LedgerKeys::generate();
    if (!keys || !ledger::write_keys_file(dir.file("ledger-keys"), *keys, false)) {
      throw std::runtime_error("cannot write the ledger keys");
    }
    ledger_config = fmt::format("[ledger]\nbackend = \"postgresql\"\nurl_file = \"{}\"\nkeys_file = \"{}\"\n",
                                dir.file("ledger-url"), dir.file("ledger-keys"));
  }
  testing::Process vault({.argv = {program("tests/fakes/vault/nicsync-test-vault"), "--listen", "127.0.0.1:0",
                                   "--root-token", std::string(kRootToken), "--enterprise"},
                          .log_file = dir.file("vault.log")});
  const std::string vault_addr = start_listening(vault, "nicsync-test-vault");
  testing::Process cleartax({.argv = {program("tests/fakes/cleartax/nicsync-test-cleartax"), "--listen", "127.0.0.1:0",
                                      "--client-secret", std::string(kClientSecret)}});
  const std::string cleartax_url = start_listening(cleartax, "nicsync-test-cleartax");

  Http http;
  if (auto r = http.put(vault_addr + "/v1/secret/data/nicsync/cleartax",
                        fmt::format(R"({{"data":{{"client_secret":"{}"}}}})", kClientSecret));
      !r || r->status != 200) {
    throw std::runtime_error("cannot write the ClearTax client secret to the test Vault");
  }
  Clock::time_point ignored;
  const auto seed_start = std::chrono::steady_clock::now();
  http.rotate(vault_addr, opt.gstins, 1, ignored);
  const double seed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - seed_start).count();

  const auto port = testing::free_port();
  const std::string api = fmt::format("http://127.0.0.1:{}", port);
  std::string config = fmt::format(
      "state_dir = \"{}\"\n"
      "[vault]\naddress = \"{}\"\n[vault.auth]\nmethod = \"token\"\n"
      "[watch]\nmode = \"events\"\npoll_interval = \"1h\"\nresync_interval = \"1h\"\njitter = \"1s\"\n"
      "[api]\nlisten = \"127.0.0.1:{}\"\n"
      "[[destination]]\nname = \"cleartax\"\nkind = \"cleartax\"\nbase_url = \"{}\"\nauth = \"client_secret\"\n"
      "secret_path = \"secret/nicsync/cleartax\"\nsecret_key = \"client_secret\"\n",
      dir.file("state"), vault_addr, port, cleartax_url);
  if (opt.concurrency > 0) config += fmt::format("concurrency = {}\n", opt.concurrency);
  config += "[[mapping_set]]\nprefix = \"secret/nic/\"\ndestinations = [\"cleartax\"]\n";
  config += ledger_config;
  testing::write_file(dir.file("nicsyncd.toml"), config);

  testing::Process daemon({.argv = {program("nicsyncd"), "run", "--config", dir.file("nicsyncd.toml")},
                           .env = {"VAULT_TOKEN=" + std::string(kRootToken)},
                           .unset_env = {"VAULT_ADDR", "VAULT_NAMESPACE", "NOTIFY_SOCKET", "VAULT_CACERT", "http_proxy",
                                         "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"},
                           .log_file = dir.file("daemon.log")});
  const auto boot = std::chrono::steady_clock::now();
  if (!daemon.wait_for_output("ready: API on", std::chrono::seconds(30))) {
    throw std::runtime_error("nicsyncd did not start:\n" + daemon.output());
  }
  const auto timeout = std::chrono::seconds(opt.tiny ? 60 : 300);
  wait_drained(http, api, opt.gstins, timeout, daemon);
  const double first_sync_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - boot).count();
  std::uint64_t last_seq = 0;
  int stores = 0;
  received(http, cleartax_url, 0, 1, last_seq, stores);
  std::printf("engine_bench [%s]: %d GSTINs; seeded in %.2f s; first sync (start-up + %d deliveries) %.2f s\n",
              ledger.c_str(), opt.gstins, seed_s, opt.gstins, first_sync_s);

  std::vector<Round> rounds;
  for (int rep = 0; rep < opt.repetitions; ++rep) {
    const int version = 2 + rep;
    const double before = pipeline(http, api).value_or(Pipeline{}).applied;
    const pid_t postmaster = postgres ? postgres->pid() : 0;
    const double cpu0[] = {cpu_seconds(daemon.pid()), cpu_seconds(vault.pid()), cpu_seconds(cleartax.pid()),
                           cpu_seconds(::getpid()), server_cpu_seconds(postmaster)};
    Clock::time_point started;
    const auto acked = http.rotate(vault_addr, opt.gstins, version, started);
    const auto written = Clock::now();
    const auto drained = wait_drained(http, api, before + opt.gstins, timeout, daemon);
    const double cpu1[] = {cpu_seconds(daemon.pid()), cpu_seconds(vault.pid()), cpu_seconds(cleartax.pid()),
                           cpu_seconds(::getpid()), server_cpu_seconds(postmaster)};
    const std::uint64_t since = last_seq;
    auto got = received(http, cleartax_url, since, version, last_seq, stores);
    if (static_cast<int>(got.size()) != opt.gstins) {
      throw std::runtime_error(
          fmt::format("round {}: {} of {} GSTINs were pushed at version {}", rep + 1, got.size(), opt.gstins, version));
    }
    std::vector<double> latencies;
    latencies.reserve(got.size());
    for (const auto& [i, at] : got) {
      latencies.push_back(std::chrono::duration<double, std::milli>(at - acked[static_cast<std::size_t>(i)]).count());
    }
    Round r;
    r.seconds = std::chrono::duration<double>(drained - started).count();
    r.rate = opt.gstins / r.seconds;
    r.p50_ms = percentile(latencies, 0.5);
    r.p99_ms = percentile(latencies, 0.99);
    r.write_seconds = std::chrono::duration<double>(written - started).count();
    r.cpu_ms_daemon = (cpu1[0] - cpu0[0]) * 1000 / opt.gstins;
    r.cpu_ms_vault = (cpu1[1] - cpu0[1]) * 1000 / opt.gstins;
    r.cpu_ms_cleartax = (cpu1[2] - cpu0[2]) * 1000 / opt.gstins;
    r.cpu_ms_bench = (cpu1[3] - cpu0[3]) * 1000 / opt.gstins;
    r.cpu_ms_server = (cpu1[4] - cpu0[4]) * 1000 / opt.gstins;
    // How much CPU the processes got: on a shared machine, less than the 2 cores.
    r.cores = 0;
    for (std::size_t k = 0; k < std::size(cpu0); ++k) r.cores += (cpu1[k] - cpu0[k]) / r.seconds;
    rounds.push_back(r);
    std::printf(
        "  repetition %d: %d rotated (Vault writes took %.2f s), all delivered and committed after %.2f s: %.0f "
        "deliveries/s; latency write->push p50 %.0f ms, p99 %.0f ms; %d stores (repeats %d); CPU per delivery: "
        "nicsyncd %.3f ms, test Vault %.3f ms, test ClearTax %.3f ms, this program (rotation, polling) %.3f ms, "
        "PostgreSQL server %.3f ms; together they used %.2f cores\n",
        rep + 1, opt.gstins, r.write_seconds, r.seconds, r.rate, r.p50_ms, r.p99_ms, stores, stores - opt.gstins,
        r.cpu_ms_daemon, r.cpu_ms_vault, r.cpu_ms_cleartax, r.cpu_ms_bench, r.cpu_ms_server, r.cores);
  }
  std::vector<double> rates, p50s, p99s, daemon_ms, server_ms, cores;
  for (const auto& r : rounds) {
    server_ms.push_back(r.cpu_ms_server);
    rates.push_back(r.rate);
    p50s.push_back(r.p50_ms);
    p99s.push_back(r.p99_ms);
    daemon_ms.push_back(r.cpu_ms_daemon);
    cores.push_back(r.cores);
  }
  const Summary summary{ledger,       median(rates), median(p50s), median(p99s), median(daemon_ms), median(server_ms),
                        median(cores)};
  std::printf(
      "engine_bench [%s]: %d GSTINs rotated at once, median of %d: %.0f deliveries/s end to end (goal >= 2000); "
      "delivery latency p50 %.0f ms, p99 %.0f ms; nicsyncd CPU %.3f ms per delivery; the processes got %.2f of "
      "the machine's %ld cores (load average %.1f at the end)\n",
      ledger.c_str(), opt.gstins, opt.repetitions, summary.rate, summary.p50, summary.p99, summary.daemon_ms,
      summary.cores, ::sysconf(_SC_NPROCESSORS_ONLN), load_average());

  daemon.signal(SIGTERM);
  if (daemon.wait(std::chrono::seconds(30)) != 0) {
    throw std::runtime_error("nicsyncd did not stop cleanly:\n" + daemon.output());
  }
  return summary;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines as they happen, also into a file
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> int {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return std::stoi(argv[++i]);
    };
    if (a == "--tiny") {
      opt.tiny = true;
      opt.gstins = 200;
      opt.repetitions = 1;
    } else if (a == "--gstins") {
      opt.gstins = value();
    } else if (a == "--repetitions") {
      opt.repetitions = value();
    } else if (a == "--concurrency") {
      opt.concurrency = value();
    } else if (a == "--ledger" || a.starts_with("--ledger=")) {
      std::string which = a.starts_with("--ledger=") ? a.substr(9) : (i + 1 < argc ? argv[++i] : "");
      if (which == "both") {
        opt.ledgers = {"sqlite", "postgresql"};
      } else if (which == "sqlite" || which == "postgresql") {
        opt.ledgers = {which};
      } else {
        std::fprintf(stderr, "--ledger takes sqlite, postgresql or both\n");
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: %s [--tiny] [--gstins N] [--repetitions R] [--concurrency C] "
                   "[--ledger sqlite|postgresql|both]\n",
                   argv[0]);
      return 2;
    }
  }
  if (opt.ledgers.empty()) {
    // The tiny run (ctest label "bench") needs no PostgreSQL, but uses it when it is there.
    opt.ledgers = {"sqlite"};
    // At --tiny, PostgreSQL only when asked (ctest runs that with the postgres tests).
    if (!opt.tiny) opt.ledgers.push_back("postgresql");
  }
  try {
    std::vector<Summary> summaries;
    for (const auto& ledger : opt.ledgers) summaries.push_back(run(opt, ledger));
    std::string line;
    for (const auto& s : summaries) {
      line += fmt::format(
          "{}{} {:.0f} deliveries/s (p50 {:.0f} ms, p99 {:.0f} ms; CPU per delivery: nicsyncd {:.3f} "
          "ms{}; {:.2f} cores used)",
          line.empty() ? "" : "; ", s.ledger, s.rate, s.p50, s.p99, s.daemon_ms,
          s.server_ms > 0 ? fmt::format(", server {:.3f} ms", s.server_ms) : std::string(), s.cores);
    }
    std::printf("engine_bench: medians at %d GSTINs: %s\n", opt.gstins, line.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_bench: %s\n", e.what());
    return 1;
  }
}
