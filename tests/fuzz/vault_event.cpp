// Fuzz target: one message of Vault's event websocket (CloudEvents JSON, reference §6.5) as the
// subscriber parses it (`vault::parse_kv_event`). Anything gives an event or a
// vault_bad_response error (counted as malformed, never fatal to the stream).
#include "fuzz/fuzz_target.hpp"
#include "fuzz/text_checks.hpp"
#include "nicsync/vault/events.hpp"

NICSYNC_FUZZ_TARGET(vault_event) {
  using namespace nicsync;
  auto ev = vault::parse_kv_event(fuzz::as_text(data, size));
  if (!ev) {
    NICSYNC_FUZZ_CHECK(vault_event, ev.error().is(Errc::vault_bad_response));
    NICSYNC_FUZZ_CHECK(vault_event, fuzz::clean_text(ev.error().message));
    return 0;
  }
  NICSYNC_FUZZ_CHECK(vault_event, !ev->event_type.empty());
  NICSYNC_FUZZ_CHECK(vault_event, !ev->mount.ends_with('/'));
  if (ev->current_version) NICSYNC_FUZZ_CHECK(vault_event, ev->event_type.size() > 0);
  return 0;
}
