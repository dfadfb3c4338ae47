#pragma once
/// \file
/// The chaos suite's counts, printed by its main() after gtest's own report so that they are
/// the last lines of the run.

#include <string>

namespace nicsync::chaos {

/// Filled by the test; printed last.
std::string& summary();

}  // namespace nicsync::chaos
