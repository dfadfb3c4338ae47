// main() of the chaos suite: gtest, then the counts as the last lines of the output.
#include <iostream>

#include <gtest/gtest.h>

#include "chaos/summary.hpp"

namespace nicsync::chaos {

std::string& summary() {
  static std::string text;
  return text;
}

}  // namespace nicsync::chaos

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  std::cout << nicsync::chaos::summary() << std::flush;
  return rc;
}
