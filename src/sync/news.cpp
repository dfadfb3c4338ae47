#include "nicsync/sync/news.hpp"

namespace nicsync::sync {

std::string_view to_string(News n) noexcept {
  switch (n) {
    case News::none: return "none";
    case News::version: return "version";
    case News::content_check: return "content_check";
  }
  return "unknown";
}

News is_news(const Observation& o, const PairPosition& pair) noexcept {
  using ledger::PairState;
  if (o.version.state != SourceState::present) {
    const bool known = pair.state == PairState::source_deleted && pair.pending == nullptr && pair.target == nullptr &&
                       !pair.delivering;
    return known ? News::none : News::version;
  }
  if (o.force) return News::version;
  if (o.kv == KvVersion::v1) return pair.applied != nullptr ? News::content_check : News::version;
  // What the observation is compared with: the version under way, else a parked or rejected
  // one (which waits for a different version), else the applied one.
  const VersionId* reference = nullptr;
  if (pair.target != nullptr) {
    // A target that is a deletion: a readable version again is news.
    if (pair.target->state == SourceState::present) reference = pair.target;
  } else if (pair.pending != nullptr && (pair.state == PairState::parked || pair.state == PairState::rejected)) {
    reference = pair.pending;
  } else if (pair.applied != nullptr) {
    reference = pair.applied;
  }
  if (reference == nullptr || reference->lineage != o.version.lineage) return News::version;
  // In one lineage versions are numbered in order: a lower number is an older version.
  if (o.version.number < reference->number) return News::none;
  if (o.version.number > reference->number) return News::version;
  // The same version: news only where the pair stands as deleted (it is readable again) or an
  // operator's forced push of it is under way (which a plain observation must not undo).
  if (pair.state == PairState::source_deleted || pair.target_forced) return News::version;
  return News::none;
}

}  // namespace nicsync::sync
