#include "nicsync/core/secret.hpp"

#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace nicsync {
namespace {

constexpr std::string_view kPlanted = "N3w#Passw0rd&<>\"\\";

TEST(Secret, FmtPrintsStars) {
  Secret s(kPlanted);
  EXPECT_EQ(fmt::format("{}", s), "***");
  EXPECT_EQ(fmt::format("password={} again={:>5}", s, s), "password=*** again=  ***");
}

TEST(Secret, OstreamPrintsStars) {
  Secret s(kPlanted);
  std::ostringstream os;
  os << "p=" << s;
  EXPECT_EQ(os.str(), "p=***");
}

TEST(Secret, SpdlogPrintsStars) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("secret-test", sink);
  logger.set_pattern("%v");
  Secret s(kPlanted);
  logger.info("password={} user={}", s, "API_DEMO");
  logger.flush();
  EXPECT_EQ(out.str(), "password=*** user=API_DEMO\n");
  EXPECT_EQ(out.str().find(kPlanted), std::string::npos);
}

TEST(Secret, ExposeAndCompare) {
  Secret a(kPlanted);
  Secret b{std::string(kPlanted)};
  Secret c("other");
  EXPECT_EQ(a.expose(), kPlanted);
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
  EXPECT_EQ(a.size(), kPlanted.size());
}

// Copying an empty (default) Secret copies from a null view; UBSan checks the memcpy.
TEST(Secret, EmptyCopies) {
  Secret empty;
  Secret copy(empty);
  Secret assigned;
  assigned = empty;
  Secret from_view{std::string_view()};
  EXPECT_TRUE(copy.empty());
  EXPECT_TRUE(assigned.empty());
  EXPECT_TRUE(from_view.empty());
  EXPECT_TRUE(copy == empty);
}

// The release observer sees each buffer after the wipe and before it is freed.
struct Released {
  static inline int count = 0;
  static inline bool all_zero = true;
  static void observe(const char* data, std::size_t size) {
    ++count;
    for (std::size_t i = 0; i < size; ++i) {
      if (data[i] != 0) all_zero = false;
    }
  }
};

class SecretWipe : public ::testing::Test {
 protected:
  void SetUp() override {
    Released::count = 0;
    Released::all_zero = true;
    detail::set_secret_release_observer(&Released::observe);
  }
  void TearDown() override { detail::set_secret_release_observer(nullptr); }
};

TEST_F(SecretWipe, DestructionWipesTheBuffer) {
  { Secret s(kPlanted); }
  EXPECT_EQ(Released::count, 1);
  EXPECT_TRUE(Released::all_zero);
}

TEST_F(SecretWipe, AssignmentWipesTheOldValue) {
  Secret s(kPlanted);
  s = Secret("replacement");
  EXPECT_EQ(Released::count, 1);  // the old buffer; the temporary was moved from (no buffer)
  EXPECT_TRUE(Released::all_zero);
  EXPECT_EQ(s.expose(), "replacement");
}

TEST_F(SecretWipe, MoveLeavesNoCopyBehind) {
  Secret a(kPlanted);
  const char* buffer = a.expose().data();
  Secret b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.expose().data(), buffer) << "move must hand the buffer over, not copy it";
  EXPECT_EQ(Released::count, 0);
  Secret c;
  c = std::move(b);
  EXPECT_EQ(c.expose().data(), buffer);
  EXPECT_EQ(Released::count, 0);
  c.clear();
  EXPECT_EQ(Released::count, 1);
  EXPECT_TRUE(Released::all_zero);
}

TEST_F(SecretWipe, CopiesAreIndependentAndEachWiped) {
  {
    Secret a(kPlanted);
    Secret b(a);
    EXPECT_NE(a.expose().data(), b.expose().data());
    EXPECT_EQ(b.expose(), kPlanted);
  }
  EXPECT_EQ(Released::count, 2);
  EXPECT_TRUE(Released::all_zero);
}

TEST(Secret, TakeWipesTheSourceString) {
  std::string source(200, 'x');  // beyond the small-string buffer
  source.replace(0, kPlanted.size(), kPlanted);
  const char* data = source.data();
  const std::size_t cap = source.capacity();
  Secret s = Secret::take(source);
  EXPECT_EQ(s.expose().substr(0, kPlanted.size()), kPlanted);
  EXPECT_TRUE(source.empty());
  for (std::size_t i = 0; i < cap; ++i) ASSERT_EQ(data[i], 0) << "byte " << i << " not wiped";
}

}  // namespace
}  // namespace nicsync
