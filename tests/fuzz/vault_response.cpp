// Fuzz target: Vault's HTTP answers as the client reads them (src/vault/wire.hpp). Each input is
// tried as every body the client parses — KV v2 data (200 and the 404 forms), metadata, KV v1,
// lists, mount detection, login/renew and lookup-self — and as the error body of every status
// the client maps, as a server (or a proxy in front of it) may answer anything anywhere. Parsed
// leases go on into the token schedule, as the client does after a login.
#include "fuzz/fuzz_target.hpp"
#include "fuzz/text_checks.hpp"
#include "vault/schedule.hpp"
#include "vault/wire.hpp"

namespace {

using namespace nicsync;
using namespace std::chrono_literals;

// Seeds put this in secret values; no error message may quote it.
constexpr std::string_view kPlanted = "Pl4nted-Secret";

void check_error(const Error& e, bool may_quote_body) {
  NICSYNC_FUZZ_CHECK(vault_response, !e.message.empty());
  NICSYNC_FUZZ_CHECK(vault_response, fuzz::clean_text(e.message));
  if (!may_quote_body) NICSYNC_FUZZ_CHECK(vault_response, !fuzz::contains(e.message, kPlanted));
}

void check_lease(std::chrono::seconds lease, bool renewable) {
  NICSYNC_FUZZ_CHECK(vault_response, lease.count() >= 0);
  // As after a login: the schedule from the granted lease, on a machine up for a year.
  const Clock::steady_time now{std::chrono::hours(24 * 365)};
  vault::detail::LeaseSchedule schedule;
  schedule.start(lease, renewable, 0s, now, 0.5);
  auto step = schedule.next(now);
  if (lease.count() == 0) {
    NICSYNC_FUZZ_CHECK(vault_response, step.action == vault::detail::LeaseSchedule::Action::none);
  } else {
    NICSYNC_FUZZ_CHECK(vault_response, schedule.expires_at() > now && step.at >= now);
    NICSYNC_FUZZ_CHECK(vault_response, step.at <= schedule.expires_at());
  }
  schedule.renewed(lease, renewable, now + 1h, 0.9);
  step = schedule.next(now + 1h);
  NICSYNC_FUZZ_CHECK(vault_response, step.at >= now + 1h);
}

}  // namespace

NICSYNC_FUZZ_TARGET(vault_response) {
  const std::string_view body = fuzz::as_text(data, size);
  static const vault::KvPath path{vault::VaultPath::parse("secret").value(),
                                  vault::VaultPath::parse("nic/07AAFCD5862R1ZX").value()};

  // 2xx bodies: errors name the call and the field, never quote the body (it holds secrets).
  if (auto s = vault::wire::parse_kv2_data(path, 200, body); !s) {
    check_error(s.error(), false);
  } else {
    NICSYNC_FUZZ_CHECK(vault_response, s->path == path && s->version == s->metadata.version);
  }
  if (auto s = vault::wire::parse_kv2_data(path, 404, body); !s) {
    // A 404 quotes Vault's errors and warnings, and the deletion time.
    check_error(s.error(), true);
  }
  if (auto m = vault::wire::parse_kv2_metadata(path, body); !m) {
    check_error(m.error(), true);  // quotes a bad version key
  } else {
    for (const auto& [n, info] : m->versions) NICSYNC_FUZZ_CHECK(vault_response, n > 0 && info.version == n);
  }
  if (auto s = vault::wire::parse_kv1_data(path, body); !s) check_error(s.error(), false);
  if (auto l = vault::wire::parse_list("LIST secret/metadata/nic/", body); !l) check_error(l.error(), false);
  if (auto m = vault::wire::parse_mount("GET sys/internal/ui/mounts/secret/nic", body); !m) {
    check_error(m.error(), true);  // quotes a bad mount path
  } else {
    NICSYNC_FUZZ_CHECK(vault_response, !m->path.empty());
  }
  if (auto a = vault::wire::parse_auth("POST auth/approle/login", body); !a) {
    check_error(a.error(), false);
  } else {
    NICSYNC_FUZZ_CHECK(vault_response, !a->token.empty());
    check_lease(a->lease_duration, a->renewable);
  }
  if (auto t = vault::wire::parse_lookup_self(body); !t) {
    check_error(t.error(), false);
  } else {
    check_lease(t->ttl, t->renewable);
  }

  // Error bodies, for every status the client maps.
  const vault::wire::CallContext ctx{"GET",  "secret/data/nic/07AAFCD5862R1ZX",         "read",
                                     "read", "no secret at secret/nic/07AAFCD5862R1ZX", ""};
  for (int status : {0, 204, 301, 400, 403, 404, 405, 412, 429, 500, 501, 502, 503, 504}) {
    const bool dead = status == 403 && vault::wire::says_invalid_token(body);
    const Error e = vault::wire::error_from_response(ctx, status, body, std::nullopt, dead);
    check_error(e, true);
    NICSYNC_FUZZ_CHECK(vault_response, e.http_status == status);
  }
  for (const auto& m : vault::wire::error_messages(body)) {
    NICSYNC_FUZZ_CHECK(vault_response, !m.empty() && fuzz::clean_text(m));
  }

  // Header values and short scalars the client reads.
  if (size <= 64) {
    if (auto d = vault::wire::parse_seconds_or_go_duration(body)) NICSYNC_FUZZ_CHECK(vault_response, d->count() >= 0);
    (void)vault::wire::parse_go_bool(body);
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'750'000'000));
    if (auto r = http::parse_retry_after(body, now)) NICSYNC_FUZZ_CHECK(vault_response, r->count() >= 0);
  }
  return 0;
}
