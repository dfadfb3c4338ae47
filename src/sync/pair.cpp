#include "sync/pair.hpp"

#include <algorithm>
#include <functional>
#include <limits>

#include <fmt/format.h>

namespace nicsync::sync {

PairProgress::PairProgress(ledger::PairRecord r)
    : state(r.state),
      push_in_flight(r.push_in_flight),
      attempts(r.attempts),
      applied(std::move(r.applied)),
      pending(r.pending ? std::make_unique<ledger::VersionRef>(std::move(*r.pending)) : nullptr),
      applied_at(r.applied_at),
      first_attempt_at(r.first_attempt_at),
      next_attempt_at(r.next_attempt_at),
      updated_at(r.updated_at) {
  if (!r.last_error_class.empty() || !r.last_error_code.empty() || !r.last_error_provider.empty() ||
      !r.last_error_message.empty()) {
    error = std::make_unique<LastError>(LastError{std::move(r.last_error_class), std::move(r.last_error_code),
                                                  std::move(r.last_error_provider), std::move(r.last_error_message)});
  }
}

LastError& PairProgress::set_error() {
  if (!error) error = std::make_unique<LastError>();
  return *error;
}

void PairProgress::clear_pending() {
  pending.reset();
  push_in_flight = false;
  attempts = 0;
  first_attempt_at = {};
  next_attempt_at = {};
  error.reset();
}

ledger::PairRecord PairProgress::to_record(std::string destination, std::string gstin, std::string path) const {
  ledger::PairRecord r;
  r.destination = std::move(destination);
  r.gstin = std::move(gstin);
  r.vault_path = std::move(path);
  r.state = state;
  r.applied = applied;
  r.applied_at = applied_at;
  if (pending) r.pending = *pending;
  r.push_in_flight = push_in_flight;
  r.attempts = attempts;
  r.first_attempt_at = first_attempt_at;
  r.next_attempt_at = next_attempt_at;
  if (error) {
    r.last_error_class = error->error_class;
    r.last_error_code = error->code;
    r.last_error_provider = error->provider;
    r.last_error_message = error->message;
  }
  r.updated_at = updated_at;
  return r;
}

std::shared_ptr<const HeldConfig::Shared> HeldConfig::Interner::get(const PairConfig& c) {
  Shared s{c.destination, c.source.username_field, c.source.password_field};
  for (const auto& have : known_) {
    if (have->tie() == s.tie()) return have;
  }
  known_.push_back(std::make_shared<const Shared>(std::move(s)));
  return known_.back();
}

void HeldConfig::Interner::prune() {
  std::erase_if(known_, [](const auto& p) { return p.use_count() == 1; });
}

namespace {

// Lineages are only compared for equality; 16 bits of their hash do (a collision makes a
// recreated key look like the old one for the versions_behind count, and nothing else).
std::uint16_t lineage_tag(const Lineage& lineage) {
  const std::size_t h = std::hash<std::string_view>{}(lineage.text());
  return static_cast<std::uint16_t>(h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48));
}

}  // namespace

void Pair::note_observed(const Observation& obs) {
  const bool readable = obs.version.state == SourceState::present && obs.kv == KvVersion::v2;
  observed_number = readable ? static_cast<std::int32_t>(std::clamp<std::int64_t>(
                                   obs.version.number, 0, std::numeric_limits<std::int32_t>::max()))
                             : 0;
  observed_lineage_tag = readable ? lineage_tag(obs.version.lineage) : 0;
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(obs.written_at.time_since_epoch()).count();
  observed_written_s =
      obs.version.state == SourceState::present && s > 0
          ? static_cast<std::uint32_t>(std::min<std::int64_t>(s, std::numeric_limits<std::uint32_t>::max()))
          : 0;
}

SystemTime Pair::written_at() const {
  if (observed_written_s == 0) return {};
  return SystemTime(std::chrono::seconds(observed_written_s));
}

std::int64_t Pair::versions_behind() const {
  if (observed_number <= 0) return 0;
  if (!progress.applied) return 1;
  const VersionId& applied = progress.applied->version;
  if (lineage_tag(applied.lineage) != observed_lineage_tag) return 1;
  // Lower than the applied number within "one" lineage: a new lineage whose tag collided.
  const std::int64_t behind = observed_number - applied.number;
  return behind < 0 ? 1 : behind;
}

std::string Pair::describe() const {
  return fmt::format("gstin={} destination={}", config.gstin.str(), config.destination());
}

}  // namespace nicsync::sync
