// The audit feed's listener under unrelated traffic (Community Edition has no audit filter: every
// request anyone makes reaches nicsyncd as two entries). Two connections (two Vault nodes) write
// entries over loopback TCP the way Vault's socket device does — one blocking write per entry —
// while the daemon's loop is not run at all (busy elsewhere): reading must not wait for it.
// The mix: KV v2 reads of other keys (their response entries carry the secret's HMAC'd values),
// request entries, AppRole logins, a LIST of 1,000 keys now and then, and one write of a watched
// key per 1,000 entries; 10,000 keys are watched.
//
// - paced: 20,000 entries/s for a few seconds (the goal): every entry read within 1 s of the
//   last write, and how long Vault's writes took (a slow reader shows here first: Vault waits
//   for each write, up to its 2 s write timeout); CPU of the reading side (the process's less the
//   writers' threads') as % of one core.
// - flat out: as fast as the writers go; entries/s read.
//
// Run: build/release/tests/nicsync_bench_audit_listener_bench [--tiny] [--seconds=S] [--repetitions=R]
//   full: 5 s paced and 200,000 entries flat out, 3 repetitions (~1 min); --tiny: 1 s, 20,000, 1.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "nicsync/watch/audit_listener.hpp"
#include "testing/bench.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

using namespace nicsync;
namespace nt = nicsync::testing;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

struct Options {
  bool tiny = false;
  int seconds = 5;
  int flat_out = 200'000;
  int repetitions = 3;
};

constexpr std::string_view kHmac = "hmac-sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string auth() {
  return fmt::format(
      R"("auth":{{"client_token":"{0}","accessor":"{0}","display_name":"approle","policies":["default","app"],)"
      R"("token_policies":["default","app"],"policy_results":{{"allowed":true,"granting_policies":[{{"name":"app",)"
      R"("namespace_id":"root","type":"acl"}}]}},"metadata":{{"role_name":"app"}},"entity_id":)"
      R"("4f6b2f8e-2f55-1f1d-8a3c-6b1d2f7e9a10","token_type":"service","token_ttl":3600,)"
      R"("token_issue_time":"2025-06-05T16:05:10Z"}})",
      kHmac);
}

std::string request(int i, std::string_view operation, std::string_view path, std::string_view mount,
                    std::string_view type) {
  return fmt::format(
      R"("request":{{"id":"7d2c{:04x}-8a2e-4c55-9f10-2d6e7a9b0c11","client_id":"4f6b2f8e-2f55-1f1d-8a3c-6b1d2f7e9a10",)"
      R"("operation":"{}","mount_point":"{}/","mount_type":"{}","mount_accessor":"acc_5a8d0c3f",)"
      R"("mount_running_version":"v0.16.1+builtin","mount_class":"secret","client_token":"{}",)"
      R"("client_token_accessor":"{}","namespace":{{"id":"root"}},"path":"{}","remote_address":"10.0.0.5",)"
      R"("remote_port":{}}})",
      i & 0xffff, operation, mount, type, kHmac, kHmac, path, 40000 + i % 20000);
}

// One entry (with its newline) of the mix, the i-th.
std::string entry(int i) {
  const std::string legacy_head = R"({"time":"2025-06-05T16:10:22.29241Z","type":")";
  const int kind = i % 1000 == 999 ? 4 : (i % 100 == 57 ? 3 : i % 10 == 3 ? 2 : i % 2);
  const std::string key = fmt::format("app/service-{}/db", i % 5000);
  switch (kind) {
    case 0:  // a read's response entry: the values HMAC'd
      return legacy_head + R"(response",)" + auth() + "," + request(i, "read", "secret/data/" + key, "secret", "kv") +
             fmt::format(R"(,"response":{{"mount_point":"secret/","mount_type":"kv","data":{{"data":{{"password":)"
                         R"("{0}","username":"{0}"}},"metadata":{{"created_time":"{0}","custom_metadata":null,)"
                         R"("deletion_time":"{0}","destroyed":false,"version":4}}}}}}}})",
                         kHmac) +
             "\n";
    case 1:  // a request entry (Vault 1.17-1.20 order: type last)
      return "{" + auth() + "," + request(i, "read", "secret/data/" + key, "secret", "kv") +
             R"(,"time":"2025-06-05T16:10:22.281734Z","type":"request"})"
             "\n";
    case 2:  // an AppRole login
      return legacy_head + R"(response",)" + auth() + "," +
             request(i, "update", "auth/approle/login", "auth/approle", "approle") +
             fmt::format(R"(,"response":{{"auth":{{"client_token":"{}"}},"mount_type":"approle"}}}})", kHmac) + "\n";
    case 3: {  // a LIST of 1,000 keys
      std::string keys;
      for (int k = 0; k < 1000; ++k) keys += fmt::format("{}\"{}\"", k ? "," : "", kHmac);
      return legacy_head + R"(response",)" + auth() + "," + request(i, "list", "secret/metadata/app/", "secret", "kv") +
             R"(,"response":{"mount_point":"secret/","mount_type":"kv","data":{"keys":[)" + keys + "]}}}\n";
    }
    default:  // a write of a watched key
      return legacy_head + R"(response",)" + auth() + "," +
             request(i, "update", fmt::format("secret/data/nic/K{}", i % 10000), "secret", "kv") +
             R"(,"response":{"mount_point":"secret/","mount_type":"kv","data":{"version":2}}})"
             "\n";
  }
}

int dial(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as Go sets it
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
  return fd;
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Writer {
  std::vector<double> write_us;  // per entry
  double cpu_seconds = 0;        // of the writer's own thread
  std::string error;
};

double thread_cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// Writes `count` entries (starting at `first`) on `fd`, `per_second` of them a second (0: flat out).
void write_entries(int fd, const std::vector<std::string>* mix, int first, int count, int per_second, Writer* w) {
  const auto start = Steady::now();
  w->write_us.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    if (per_second > 0) std::this_thread::sleep_until(start + std::chrono::microseconds(1'000'000LL * i / per_second));
    const std::string& e = (*mix)[static_cast<std::size_t>(first + i) % mix->size()];
    const auto t0 = Steady::now();
    std::size_t done = 0;
    while (done < e.size()) {
      const ssize_t n = ::send(fd, e.data() + done, e.size() - done, MSG_NOSIGNAL);
      if (n <= 0) {
        w->error = std::strerror(errno);
        return;
      }
      done += static_cast<std::size_t>(n);
    }
    w->write_us.push_back(std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
  }
  w->cpu_seconds = thread_cpu_seconds();
}

struct Run {
  double entries_per_second = 0;
  double read_after_ms = 0;  // from the last write to the last entry read
  double write_p50_us = 0, write_p99_us = 0, write_max_us = 0;
  double cpu_percent = 0;
  std::uint64_t matched = 0, dropped = 0, malformed = 0;
};

std::uint64_t taken(const watch::AuditFeedStats& s) {
  return s.entries_matched + s.entries_ignored + s.entries_duplicate + s.entries_malformed + s.entries_too_large +
         s.entries_dropped;
}

// Two connections write `total` entries between them; the loop is not run meanwhile.
Run run(const std::vector<std::string>& mix, int total, int per_second) {
  boost::asio::io_context loop;  // never run during the measurement
  auto feed = watch::AuditFeed::create(loop.get_executor());
  auto routes = std::make_shared<watch::AuditRoutes>();
  for (int k = 0; k < 10'000; ++k) routes->keys.insert(fmt::format("secret/nic/K{}", k));
  routes->mounts.emplace("secret", KvVersion::v2);
  feed->set_routes(std::move(routes));
  auto listener = watch::AuditListener::start({.listen = "127.0.0.1:0"}, feed);
  if (!listener) throw std::runtime_error(listener.error().describe());
  const std::string address = (*listener)->local_address();
  const auto port = static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  const int fds[2] = {dial(port), dial(port)};
  Writer writers[2];
  const double cpu0 = cpu_seconds();
  const auto t0 = Steady::now();
  std::thread a(write_entries, fds[0], &mix, 0, total / 2, per_second / 2, &writers[0]);
  std::thread b(write_entries, fds[1], &mix, total / 2, total - total / 2, per_second / 2, &writers[1]);
  a.join();
  b.join();
  const auto written = Steady::now();
  for (const auto& w : writers) {
    if (!w.error.empty()) throw std::runtime_error("write failed: " + w.error);
  }
  // Every entry read (the listener counts each one): polled, the listener offers no event.
  const auto give_up = written + 30s;
  while (taken(feed->stats()) < static_cast<std::uint64_t>(total) && Steady::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  const auto done = Steady::now();
  const double cpu1 = cpu_seconds();
  const auto s = feed->stats();
  if (taken(s) < static_cast<std::uint64_t>(total)) {
    throw std::runtime_error(fmt::format("only {} of {} entries read after 30 s", taken(s), total));
  }
  Run r;
  r.entries_per_second = total / std::chrono::duration<double>(done - t0).count();
  r.read_after_ms = std::chrono::duration<double, std::milli>(done - written).count();
  std::vector<double> all = writers[0].write_us;
  all.insert(all.end(), writers[1].write_us.begin(), writers[1].write_us.end());
  r.write_p50_us = nt::percentile(all, 0.5);
  r.write_p99_us = nt::percentile(all, 0.99);
  r.write_max_us = nt::percentile(all, 1.0);
  // The process's CPU but the writers' (Vault's side): the listener's thread, and this one's
  // waiting.
  r.cpu_percent = 100.0 * (cpu1 - cpu0 - writers[0].cpu_seconds - writers[1].cpu_seconds) /
                  std::chrono::duration<double>(done - t0).count();
  r.matched = s.entries_matched;
  r.dropped = s.entries_dropped;
  r.malformed = s.entries_malformed;
  for (int fd : fds) ::close(fd);
  (*listener)->stop();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--tiny") {
      o.tiny = true;
      o.seconds = 1;
      o.flat_out = 20'000;
      o.repetitions = 1;
    } else if (arg.starts_with("--seconds=")) {
      o.seconds = std::stoi(std::string(arg.substr(10)));
    } else if (arg.starts_with("--repetitions=")) {
      o.repetitions = std::stoi(std::string(arg.substr(14)));
    } else {
      std::fprintf(stderr, "usage: %s [--tiny] [--seconds=S] [--repetitions=R]\n", argv[0]);
      return 2;
    }
  }
  std::vector<std::string> mix;
  std::size_t bytes = 0;
  for (int i = 0; i < 10'000; ++i) {
    mix.push_back(entry(i));
    bytes += mix.back().size();
  }
  std::printf(
      "audit listener: 2 connections, %zu entries in the mix (%.0f bytes on average), 10,000 keys watched, "
      "%u CPUs\n",
      mix.size(), static_cast<double>(bytes) / mix.size(), std::thread::hardware_concurrency());
  constexpr int kGoal = 20'000;
  std::vector<double> paced_p99, paced_max, paced_after, paced_cpu, flat_rate;
  try {
    for (int r = 0; r < o.repetitions; ++r) {
      const Run paced = run(mix, kGoal * o.seconds, kGoal);
      std::printf(
          "  paced %d/s for %d s: all read %.1f ms after the last write; Vault's writes p50 %.0f us, p99 %.0f "
          "us, max %.0f us; CPU %.1f %% of one core; %llu hints matched, %llu dropped, %llu malformed\n",
          kGoal, o.seconds, paced.read_after_ms, paced.write_p50_us, paced.write_p99_us, paced.write_max_us,
          paced.cpu_percent, static_cast<unsigned long long>(paced.matched),
          static_cast<unsigned long long>(paced.dropped), static_cast<unsigned long long>(paced.malformed));
      const Run flat = run(mix, o.flat_out, 0);
      std::printf("  flat out, %d entries: %.0f entries/s read; writes p99 %.0f us\n", o.flat_out,
                  flat.entries_per_second, flat.write_p99_us);
      std::fflush(stdout);
      paced_p99.push_back(paced.write_p99_us);
      paced_max.push_back(paced.write_max_us);
      paced_after.push_back(paced.read_after_ms);
      paced_cpu.push_back(paced.cpu_percent);
      flat_rate.push_back(flat.entries_per_second);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "benchmark failed: %s\n", e.what());
    return 1;
  }
  const bool met = nt::median(flat_rate) >= kGoal && nt::median(paced_after) <= 1000;
  std::printf("\nsummary (medians over %d repetitions)\n", o.repetitions);
  std::printf(
      "  paced %d entries/s: read %.1f ms after the last write, Vault's writes p99 %.0f us (max %.0f us), CPU "
      "%.1f %% of one core\n",
      kGoal, nt::median(paced_after), nt::median(paced_p99), nt::median(paced_max), nt::median(paced_cpu));
  std::printf("  flat out: %.0f entries/s   goal >= %d entries/s, kept up: %s\n", nt::median(flat_rate), kGoal,
              o.tiny ? "not judged (--tiny)" : (met ? "met" : "NOT met"));
  return 0;
}
