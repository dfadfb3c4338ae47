#include "nicsync/ledger/store.hpp"

namespace nicsync::ledger {
namespace {

// The names are stored in the ledger: changing one is a schema migration.
constexpr std::pair<PairState, std::string_view> kStates[] = {
    {PairState::in_sync, "in_sync"}, {PairState::pending, "pending"},   {PairState::retrying, "retrying"},
    {PairState::parked, "parked"},   {PairState::rejected, "rejected"}, {PairState::source_deleted, "source_deleted"},
};

constexpr std::pair<Outcome, std::string_view> kOutcomes[] = {
    {Outcome::applied, "applied"},       {Outcome::unchanged, "unchanged"},
    {Outcome::failed, "failed"},         {Outcome::parked, "parked"},
    {Outcome::rejected, "rejected"},     {Outcome::source_deleted, "source_deleted"},
    {Outcome::superseded, "superseded"}, {Outcome::operator_retry, "operator_retry"},
};

template <class E, std::size_t N>
std::string_view name_of(const std::pair<E, std::string_view> (&table)[N], E value) noexcept {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "unknown";
}

template <class E, std::size_t N>
std::optional<E> value_of(const std::pair<E, std::string_view> (&table)[N], std::string_view name) noexcept {
  for (const auto& [v, n] : table) {
    if (n == name) return v;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(PairState s) noexcept { return name_of(kStates, s); }
std::optional<PairState> pair_state_from_string(std::string_view s) noexcept { return value_of(kStates, s); }
std::string_view to_string(Outcome o) noexcept { return name_of(kOutcomes, o); }
std::optional<Outcome> outcome_from_string(std::string_view s) noexcept { return value_of(kOutcomes, s); }

}  // namespace nicsync::ledger
