#pragma once
// `nicsyncd ledger keys` and `nicsyncd ledger copy`: making the keys of a shared ledger, and
// moving a SQLite ledger to PostgreSQL so that nothing is pushed again.

#include <string>

#include "nicsync/app/config.hpp"

namespace nicsync::app {

struct LedgerCopyOptions {
  std::string from;      ///< "sqlite:PATH" (a state directory, or the ledger.db in one)
  std::string to;        ///< "postgresql" ([ledger] of the config, or PG*) or "postgresql:CONNINFO"
  std::string schema;    ///< the target's schema; empty: [ledger] schema
  std::string keys_out;  ///< the keys file to write (or check); empty: [ledger] keys_file
  bool force = false;    ///< write into a target that holds other data
};

int command_ledger_keys(const std::string& out, bool force);
int command_ledger_copy(const Config& config, const LedgerCopyOptions& options);

}  // namespace nicsync::app
