// Cost of reading one audit line (watch::parse_audit_entry): Community Edition has no audit
// filter, so every request anyone makes reaches the daemon as two entries, and the listener must
// keep up with >= 20,000 entries/s of unrelated traffic on 2 cores. Lines: a KV v2 read's
// response entry (the typical unrelated entry: the secret's HMAC'd values in response.data), a
// KV v2 write's request and response entries (a change: read to the end), a login, a LIST of
// 10,000 keys (~0.8 MiB) and a 4 MiB write, each in the legacy (Vault <= 1.16, OpenBao) and the
// sorted (Vault 1.17-1.20) order, read quick (until decided, the listener's way) and whole.
// Figures: ns per line and MB/s (benchmark's own columns).
// Run: build/release/tests/nicsync_bench_audit_entry_bench [--tiny] [benchmark flags]
#include <cstring>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "nicsync/watch/audit_entry.hpp"
#include "testing/vault_audit_examples.hpp"

namespace {

namespace ex = nicsync::testing::vault_audit;
using nicsync::watch::AuditScan;

bool g_tiny = false;

std::string replaced(std::string s, std::string_view from, std::string_view to) {
  const auto at = s.find(from);
  if (at == std::string::npos) {
    std::fprintf(stderr, "bench input: no %.*s\n", static_cast<int>(from.size()), from.data());
    std::abort();
  }
  return s.replace(at, from.size(), to);
}

constexpr std::string_view kHmac = "hmac-sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `line` (a write's response entry) turned into `operation` on `path` with `response_data`.
std::string with_response(std::string_view line, std::string_view operation, std::string_view path,
                          std::string_view response_data, bool drop_request_data) {
  std::string s(line);
  s = replaced(s, R"("operation":"update")", "\"operation\":\"" + std::string(operation) + "\"");
  s = replaced(s, "secret/data/nic/07AAFCD5862R1ZX", path);
  if (drop_request_data) {
    const auto at = s.find(R"("data":{"data":{"legal_name")");
    const auto end = s.find(R"(}},)", at);
    s.erase(at, end + 3 - at);
  }
  const auto at = s.find(R"("data":{"created_time")");
  const auto end = s.find(R"("version":4})", at) + std::strlen(R"("version":4})");
  return s.replace(at, end - at, "\"data\":" + std::string(response_data));
}

std::string read_data() {
  const std::string h(kHmac);
  return R"({"data":{"password":")" + h + R"(","username":")" + h + R"("},"metadata":{"created_time":")" + h +
         R"(","custom_metadata":null,"deletion_time":")" + h + R"(","destroyed":false,"version":4}})";
}

std::string list_data(std::size_t keys) {
  std::string s = R"({"keys":[)";
  for (std::size_t i = 0; i < keys; ++i) {
    if (i) s += ',';
    s += '"';
    s += kHmac;
    s += '"';
  }
  return s + "]}";
}

std::string big_write(std::string_view line, std::size_t bytes) {
  return replaced(std::string(line), "hmac-sha256:4666db5cf5113266c28f631fef3420c3d4a32e4da7240f8f36bb4c90b64f3109",
                  std::string(bytes, 'v'));
}

const std::string kLogin =
    R"({"time":"2025-06-05T16:05:10.1Z","type":"response","auth":{"client_token":")" + std::string(kHmac) +
    R"(","accessor":")" + std::string(kHmac) +
    R"(","display_name":"approle","policies":["default","nic-writer"],"token_policies":["default","nic-writer"],)"
    R"("metadata":{"role_name":"nic-writer"},"entity_id":"4f6b2f8e-2f55-1f1d-8a3c-6b1d2f7e9a10","token_type":)"
    R"("service","token_ttl":3600},"request":{"id":"b7f3c1de-8a2e-4c55-9f10-2d6e7a9b0c11","operation":"update",)"
    R"("mount_point":"auth/approle/","mount_type":"approle","mount_accessor":"auth_approle_1","mount_class":"auth",)"
    R"("namespace":{"id":"root"},"path":"auth/approle/login","data":{"role_id":")" +
    std::string(kHmac) + R"(","secret_id":")" + std::string(kHmac) +
    R"("},"remote_address":"10.0.0.5","remote_port":51544},"response":{"auth":{"client_token":")" + std::string(kHmac) +
    R"("},"mount_point":"auth/approle/","mount_type":"approle"}})";

struct Line {
  std::string name;
  std::string text;
};

std::vector<Line> lines() {
  std::vector<Line> out;
  const std::pair<const char*, std::string_view> eras[] = {{"legacy", ex::kLegacyWriteResponse},
                                                           {"sorted", ex::kSortedWriteResponse}};
  for (const auto& [era, write] : eras) {
    const std::string e(era);
    out.push_back({"kv2_read/" + e, with_response(write, "read", "secret/data/app/db", read_data(), true)});
    out.push_back(
        {"kv2_write_request/" + e, std::string(e == "legacy" ? ex::kLegacyWriteRequest : ex::kSortedWriteRequest)});
    out.push_back({"kv2_write_response/" + e, std::string(write)});
    out.push_back({"list_10000/" + e, with_response(write, "list", "secret/metadata/nic/", list_data(10'000), true)});
    out.push_back({"write_4MiB/" + e, big_write(write, nicsync::watch::kMaxAuditLineBytes - write.size())});
  }
  out.push_back({"login/legacy", kLogin});
  return out;
}

void BM_parse(benchmark::State& state, const std::string* line, AuditScan scan) {
  std::size_t changes = 0;
  for (auto _ : state) {
    auto hint = nicsync::watch::parse_audit_entry(*line, {}, scan);
    if (!hint) {
      state.SkipWithError("line did not parse");
      return;
    }
    changes += hint->kv_change() ? 1 : 0;
    benchmark::DoNotOptimize(hint);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * line->size()));
  state.counters["bytes"] = static_cast<double>(line->size());
  state.counters["change"] = state.iterations() ? static_cast<double>(changes) / state.iterations() : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tiny") == 0) {
      g_tiny = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  std::string min_time = "--benchmark_min_time=0.001";
  if (g_tiny) args.insert(args.begin() + 1, min_time.data());
  int bargc = static_cast<int>(args.size());

  static const std::vector<Line> all = lines();
  for (const auto& l : all) {
    benchmark::RegisterBenchmark(("audit_parse/quick/" + l.name).c_str(), BM_parse, &l.text, AuditScan::until_decided)
        ->Unit(benchmark::kNanosecond);
    benchmark::RegisterBenchmark(("audit_parse/whole/" + l.name).c_str(), BM_parse, &l.text, AuditScan::whole)
        ->Unit(benchmark::kNanosecond);
  }
  benchmark::Initialize(&bargc, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
