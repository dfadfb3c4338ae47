#pragma once
/// \file
/// The Idempotency-Key of a push, derived in this one place: the engine puts it in each
/// `destinations::Delivery`, and destinations send what they are handed.

#include <cstdint>
#include <string>
#include <string_view>

#include "nicsync/core/gstin.hpp"

namespace nicsync::sync {

/// Hex SHA-256 over destination, GSTIN, Vault path, lineage and version, each length-prefixed so
/// that no two different inputs collide. The same version of the same key to the same
/// destination always gets the same key (a repeat after a crash is recognisable as one).
std::string idempotency_key(std::string_view destination, const Gstin& gstin, std::string_view vault_path,
                            std::string_view lineage, std::int64_t version);

}  // namespace nicsync::sync
