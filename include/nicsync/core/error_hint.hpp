#pragma once
/// \file
/// What an operator reads beside an error code, wherever it is shown (/v1/status, the status
/// page, `nicsyncd status`, the README's troubleshooting table): what happened and what to do.
/// The texts live in the one table of src/core/error.cpp that also names and classifies every
/// code.

#include <optional>
#include <span>
#include <string_view>

#include "nicsync/core/error.hpp"

namespace nicsync {

/// Plain text; `backquoted` words are commands or configuration keys.
struct ErrorHint {
  std::string_view hint;         ///< what happened, in a few words
  std::string_view next_action;  ///< what the operator does next
};

/// The hint of a project code.
ErrorHint error_hint(Errc e) noexcept;
/// The hint for a code's stable name as the ledger and /v1/status hold it ("vault_sealed");
/// nothing for a name that is not a project code.
std::optional<ErrorHint> error_hint(std::string_view code_name) noexcept;
/// As above, and for a name that is not a project code (a system or library error, stored as
/// "category:number") a general hint, so that every code shown has one.
ErrorHint error_hint_or_general(std::string_view code_name) noexcept;
/// Every project code, in the order of the table.
std::span<const Errc> all_error_codes() noexcept;

}  // namespace nicsync
