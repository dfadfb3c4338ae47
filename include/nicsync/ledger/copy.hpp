#pragma once
/// \file
/// Moving a ledger from one store to another (SQLite to PostgreSQL) so that nothing is pushed
/// again: every pair record and history line, as they are.

#include <cstddef>

#include <boost/asio/awaitable.hpp>

#include "nicsync/ledger/store.hpp"

namespace nicsync::ledger {

struct CopyReport {
  std::size_t pairs = 0;           ///< pair records written
  std::size_t history = 0;         ///< history lines appended
  bool already_copied = false;     ///< the target held exactly this ledger already: nothing written
  std::size_t target_pairs = 0;    ///< pair records the target held before
  std::size_t target_history = 0;  ///< history lines the target held before
};

/// Copies `from` into `to`. An empty target gets everything; a target that already holds
/// exactly what `from` holds is left alone (so the copy can be run again); any other target
/// is refused (`invalid_argument`, saying what it holds) unless `force`, which writes every pair
/// record over the target's and appends the history lines the target does not have yet.
/// Neither store may be written by a daemon meanwhile.
boost::asio::awaitable<Result<CopyReport>> copy_ledger(Store& from, Store& to, bool force);

}  // namespace nicsync::ledger
