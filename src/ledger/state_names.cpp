// Stable names of ledger states and outcomes: they are stored in the database and shown in
// /v1/status and metrics, so they never change once released.
#include <array>

#include "nicsync/ledger/store.hpp"

namespace nicsync::ledger {
namespace {

constexpr std::array<std::pair<PairState, std::string_view>, 6> kStates{{
    {PairState::in_sync, "in_sync"},
    {PairState::pending, "pending"},
    {PairState::retrying, "retrying"},
    {PairState::parked, "parked"},
    {PairState::rejected, "rejected"},
    {PairState::source_deleted, "source_deleted"},
}};

}  // namespace

std::string_view to_string(PairState s) noexcept {
  for (auto [state, name] : kStates) {
    if (state == s) return name;
  }
  return "unknown";
}

std::optional<PairState> pair_state_from_string(std::string_view s) noexcept {
  for (auto [state, name] : kStates) {
    if (name == s) return state;
  }
  return std::nullopt;
}

std::string_view to_string(Outcome o) noexcept {
  switch (o) {
    case Outcome::applied: return "applied";
    case Outcome::unchanged: return "unchanged";
    case Outcome::failed: return "failed";
    case Outcome::parked: return "parked";
    case Outcome::rejected: return "rejected";
    case Outcome::source_deleted: return "source_deleted";
    case Outcome::superseded: return "superseded";
    case Outcome::operator_retry: return "operator_retry";
  }
  return "unknown";
}

std::optional<Outcome> outcome_from_string(std::string_view s) noexcept {
  for (auto o : {Outcome::applied, Outcome::unchanged, Outcome::failed, Outcome::parked, Outcome::rejected,
                 Outcome::source_deleted, Outcome::superseded, Outcome::operator_retry}) {
    if (to_string(o) == s) return o;
  }
  return std::nullopt;
}

}  // namespace nicsync::ledger
