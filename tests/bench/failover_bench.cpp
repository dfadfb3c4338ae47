// Failover of two nicsyncd replicas on one PostgreSQL ledger (release build): the time from a
// fault of the leader to the first push by the other replica, seen at the test ClearTax (its
// clock, the User-Agent's replica id). Each repetition starts both replicas on a fresh schema,
// lets the first lead, delivers one version to every GSTIN, then writes a new version of each and
// at once
// - kill:  SIGKILLs the leader (its database session ends at once: goal <= 5 s);
// - pause: SIGSTOPs it for good (the lease must run out: goal <= lease + 1 s).
// The PostgreSQL server is Debian's postgresql-15, started by the bench as in the postgres tests.
//
// Run: build/release/tests/nicsync_bench_failover_bench [--tiny] [--repetitions=R] [--lease=15s]
//   full: the default lease (15 s, renewed every 5 s), 5 repetitions of each (~4 min);
//   --tiny: a 2 s lease, one repetition of each (~20 s).
#include <signal.h>

#include <cstdio>
#include <regex>

#include <fmt/format.h>

#include "nicsync/core/duration.hpp"
#include "nicsync/ledger/keys.hpp"
#include "testing/bench.hpp"
#include "testing/postgres_server.hpp"
#include "testing/world.hpp"

using namespace nicsync;
namespace nt = nicsync::testing;
using namespace std::chrono_literals;
using SysClock = std::chrono::system_clock;

namespace {

constexpr const char* kRole = "nicsync";
constexpr const char* kPassword = "Bench-Pw-51c9e0a2";
constexpr int kGstins = 20;

struct Options {
  bool tiny = false;
  int repetitions = 5;
  std::chrono::milliseconds lease{15'000};
};

std::optional<SysClock::time_point> first_push_by(nt::World& world, const std::string& replica,
                                                  SysClock::time_point after) {
  for (const auto& r : world.cleartax().requests(fakes::FakeClearTax::kStorePath)) {
    const std::string ua(r.header("User-Agent").value_or(""));
    if (r.received_at >= after && ua.ends_with("replica/" + replica) && r.outcome == "stored") return r.received_at;
  }
  return std::nullopt;
}

/// One repetition; the seconds from the fault to the new leader's first push.
double run_once(nt::PostgresServer& server, const Options& o, const std::string& fault, int repetition) {
  nt::World world;
  world.seed_cleartax_secret();
  nt::TempDir tmp, dir_a, dir_b;
  const std::string url_file = tmp.file("ledger-url");
  nt::write_file(url_file, server.conninfo(kRole, kRole, kPassword) + "\n");
  std::filesystem::permissions(url_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  const std::string keys_file = tmp.file("ledger-keys");
  auto keys = ledger::LedgerKeys::generate();
  if (!keys || !ledger::write_keys_file(keys_file, *keys, false)) throw std::runtime_error("cannot write the keys");
  std::vector<std::string> gstins;
  for (int i = 0; i < kGstins; ++i) gstins.push_back(nt::world_gstin(i));
  auto config = [&](const std::string& id) {
    nt::DaemonConfig c;
    c.gstins = gstins;
    c.poll_interval = "1s";
    c.resync_interval = "10s";
    c.extra = fmt::format(
        "[ledger]\nbackend = \"postgresql\"\nurl_file = \"{}\"\nschema = \"failover_{}_{}\"\nkeys_file = \"{}\"\n"
        "[ha]\nreplica_id = \"{}\"\nlease = \"{}\"\nrenew = \"{}\"\n",
        url_file, fault, repetition, keys_file, id, format_duration(o.lease), format_duration(o.lease / 3));
    return c;
  };
  auto role = [](nt::Daemon& d) {
    auto r = d.request("GET", "/readyz");
    return r && r->body.find("\"role\":\"leader\"") != std::string::npos ? "leader" : "other";
  };
  nt::Daemon a(world, dir_a, config("replica-a"));
  a.start();
  if (!nt::eventually([&] { return std::string(role(a)) == "leader"; }, 30s)) {
    throw std::runtime_error("replica-a did not lead: " + a.process().output());
  }
  nt::Daemon b(world, dir_b, config("replica-b"));
  b.start();
  if (!b.wait_started()) throw std::runtime_error("replica-b did not start: " + b.process().output());
  auto rotate = [&](int v) {
    for (const auto& g : gstins) world.put_credential(g, "API_" + g, fmt::format("Pw-{}-v{}", g, v));
  };
  auto all_hold = [&](int v, std::chrono::milliseconds timeout) {
    return nt::eventually(
        [&] {
          for (const auto& g : gstins) {
            auto s = world.stored(g);
            if (!s || !s->password.ends_with(fmt::format("-v{}", v))) return false;
          }
          return true;
        },
        timeout);
  };
  rotate(1);
  if (!all_hold(1, 60s)) throw std::runtime_error("version 1 did not arrive");
  // B has read the lease once a second by now.
  std::this_thread::sleep_for(1500ms);
  rotate(2);
  const auto fault_at = SysClock::now();
  a.signal(fault == "kill" ? SIGKILL : SIGSTOP);
  if (!all_hold(2, o.lease * 4 + 30s)) throw std::runtime_error("version 2 did not arrive: " + b.process().output());
  auto first = first_push_by(world, "replica-b", fault_at);
  if (fault == "pause") {
    a.signal(SIGCONT);
    a.signal(SIGKILL);
  }
  if (!first) throw std::runtime_error("no push by replica-b");
  return std::chrono::duration<double>(*first - fault_at).count();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--tiny") {
      o.tiny = true;
      o.repetitions = 1;
      o.lease = 2s;
    } else if (arg.starts_with("--repetitions=")) {
      o.repetitions = std::stoi(std::string(arg.substr(14)));
    } else if (arg.starts_with("--lease=")) {
      auto d = parse_duration(arg.substr(8));
      if (!d) {
        std::fprintf(stderr, "--lease: %s\n", d.error().message.c_str());
        return 2;
      }
      o.lease = *d;
    } else {
      std::fprintf(stderr, "usage: %s [--tiny] [--repetitions=R] [--lease=15s]\n", argv[0]);
      return 2;
    }
  }
  if (!nt::PostgresServer::available()) {
    std::fprintf(stderr, "PostgreSQL 15's server is not installed (scripts/deps installs it)\n");
    return 1;
  }
  try {
    nt::PostgresServer server;
    server.create_role_and_database(kRole, kPassword);
    std::printf("failover: 2 replicas, %d GSTINs, lease %s renewed every %s, %d repetition(s) of each fault\n", kGstins,
                format_duration(o.lease).c_str(), format_duration(o.lease / 3).c_str(), o.repetitions);
    for (const std::string fault : {"kill", "pause"}) {
      std::vector<double> figures;
      for (int r = 0; r < o.repetitions; ++r) {
        figures.push_back(run_once(server, o, fault, r));
        std::printf("  %-5s #%d: first push by the new leader %.2f s after the fault\n", fault.c_str(), r + 1,
                    figures.back());
        std::fflush(stdout);
      }
      const double goal = fault == "kill" ? 5.0 : std::chrono::duration<double>(o.lease).count() + 1.0;
      const double median = nt::median(figures);
      std::printf("%s: median %.2f s (min %.2f, max %.2f); goal <= %.1f s: %s\n", fault.c_str(), median,
                  *std::min_element(figures.begin(), figures.end()), *std::max_element(figures.begin(), figures.end()),
                  goal, median <= goal ? "met" : "NOT met");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "benchmark failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
