// ctest package_version: cellflow/version.hpp (through the umbrella cellflow/cellflow.hpp) agrees
// with the version CMake's project() has (passed as CELLFLOW_EXPECTED_*), and
// CELLFLOW_VERSION_AT_LEAST orders versions as documented, in #if and in C++ expressions.
#include <cellflow/cellflow.hpp>

#include <cstdio>
#include <cstring>

#if !defined(CELLFLOW_VERSION_MAJOR) || !defined(CELLFLOW_VERSION_MINOR) || !defined(CELLFLOW_VERSION_PATCH) || \
    !defined(CELLFLOW_VERSION_STRING) || !defined(CELLFLOW_VERSION_AT_LEAST)
#error "cellflow/cellflow.hpp does not define the CELLFLOW_VERSION_* macros"
#endif
#if !CELLFLOW_VERSION_AT_LEAST(0, 0, 0)
#error "CELLFLOW_VERSION_AT_LEAST(0, 0, 0) is false in #if"
#endif

static_assert(CELLFLOW_VERSION_MAJOR == CELLFLOW_EXPECTED_MAJOR,
              "CELLFLOW_VERSION_MAJOR differs from project(VERSION)");
static_assert(CELLFLOW_VERSION_MINOR == CELLFLOW_EXPECTED_MINOR,
              "CELLFLOW_VERSION_MINOR differs from project(VERSION)");
static_assert(CELLFLOW_VERSION_PATCH == CELLFLOW_EXPECTED_PATCH,
              "CELLFLOW_VERSION_PATCH differs from project(VERSION)");

namespace {

constexpr int kMaj = CELLFLOW_VERSION_MAJOR, kMin = CELLFLOW_VERSION_MINOR, kPat = CELLFLOW_VERSION_PATCH;

// The version itself and every older one are "at least"; every newer one is not.
static_assert(CELLFLOW_VERSION_AT_LEAST(kMaj, kMin, kPat), "AT_LEAST(own version) must hold");
static_assert(!CELLFLOW_VERSION_AT_LEAST(kMaj, kMin, kPat + 1), "AT_LEAST(newer patch) must not hold");
static_assert(!CELLFLOW_VERSION_AT_LEAST(kMaj, kMin + 1, 0), "AT_LEAST(newer minor) must not hold");
static_assert(!CELLFLOW_VERSION_AT_LEAST(kMaj + 1, 0, 0), "AT_LEAST(newer major) must not hold");
static_assert(!CELLFLOW_VERSION_AT_LEAST(kMaj, kMin + 1, -1000), "a newer minor outranks any patch");
static_assert(CELLFLOW_VERSION_AT_LEAST(kMaj - 1, kMin + 100, kPat + 100), "an older major is older whatever follows");
static_assert(CELLFLOW_VERSION_AT_LEAST(kMaj, kMin - 1, kPat + 100), "an older minor is older whatever the patch");
static_assert(CELLFLOW_VERSION_AT_LEAST(kMaj, kMin, kPat - 1), "an older patch is older");
// Arguments are parenthesised: expressions work.
static_assert(CELLFLOW_VERSION_AT_LEAST(kMaj + 1 - 1, kMin * 1, kPat + 0), "AT_LEAST with expression arguments");

}  // namespace

int main() {
  char spelled[64];
  std::snprintf(spelled, sizeof spelled, "%d.%d.%d", kMaj, kMin, kPat);
  int failures = 0;
  if (std::strcmp(CELLFLOW_VERSION_STRING, spelled) != 0) {
    std::printf("FAIL: CELLFLOW_VERSION_STRING is \"%s\", the numbers spell \"%s\"\n", CELLFLOW_VERSION_STRING,
                spelled);
    ++failures;
  }
  if (std::strcmp(CELLFLOW_VERSION_STRING, CELLFLOW_EXPECTED_VERSION) != 0) {
    std::printf("FAIL: CELLFLOW_VERSION_STRING is \"%s\", project(cellflow VERSION) is \"%s\"\n",
                CELLFLOW_VERSION_STRING, CELLFLOW_EXPECTED_VERSION);
    ++failures;
  }
  if (failures == 0)
    std::printf("cellflow/version.hpp and project(cellflow VERSION) agree: %s\n", CELLFLOW_VERSION_STRING);
  return failures == 0 ? 0 : 1;
}
