#pragma once
// A digest of a KV v1 key's content, the only way to tell its versions apart (it has none).
#include <array>

#include "nicsync/vault/types.hpp"

namespace nicsync::watch {

/// SHA-256 over the sorted fields, length-prefixed; the first 16 bytes are kept. Only ever
/// compared, never shown or stored.
std::array<unsigned char, 16> content_hash(const vault::KvData& data);

}  // namespace nicsync::watch
