// Runs tests/js/qdrant_client_test.mjs (Qdrant's official JS client, @qdrant/js-client-rest,
// against a real vectord) under `node --test` and checks that it passes.
//
// Needs node >= 18.17 and npm. The first run installs the client into tests/js/node_modules with
// `npm ci || npm install` (network access to the npm registry; CI has it). Without node or npm the
// test is SKIPPED with a message saying so; set VECTORD_SKIP_JS_CLIENT=1 to skip it on purpose.
// An npm install failure is a test failure, not a skip.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/test_server.h"

namespace vectord {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` through /bin/sh, capturing its combined output.
CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    result.output = "popen failed for: " + command;
    return result;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string JsDir() { return std::string(VECTORD_SOURCE_DIR) + "/tests/js"; }

TEST(JsClientIntegration, QdrantJsClientPassesAgainstVectord) {
  if (const char* skip = std::getenv("VECTORD_SKIP_JS_CLIENT"); skip && *skip && *skip != '0') {
    GTEST_SKIP() << "VECTORD_SKIP_JS_CLIENT is set: Qdrant JS client test skipped";
  }
  CommandResult node = RunCommand("node --version");
  if (node.exit_code != 0) {
    GTEST_SKIP() << "node is not installed (`node --version` failed: " << node.output
                 << "); the Qdrant JS client test needs node >= 18.17 and npm";
  }
  int major = 0, minor = 0;
  if (std::sscanf(node.output.c_str(), "v%d.%d", &major, &minor) != 2 || major < 18 ||
      (major == 18 && minor < 17)) {
    GTEST_SKIP() << "node " << node.output << " is too old; the Qdrant JS client needs >= 18.17";
  }

  const std::string js_dir = JsDir();
  if (!std::filesystem::exists(js_dir + "/node_modules/@qdrant/js-client-rest/package.json")) {
    CommandResult npm = RunCommand("npm --version");
    if (npm.exit_code != 0) {
      GTEST_SKIP() << "npm is not installed and " << js_dir
                   << "/node_modules is missing; cannot install @qdrant/js-client-rest";
    }
    CommandResult install = RunCommand("cd '" + js_dir +
                                       "' && (npm ci --no-audit --no-fund || "
                                       "npm install --no-audit --no-fund)");
    ASSERT_EQ(install.exit_code, 0) << "npm install in " << js_dir << " failed:\n"
                                    << install.output;
  }

  itest::TestServer server;
  ASSERT_TRUE(server.Start());
  CommandResult run = RunCommand("cd '" + js_dir + "' && VECTORD_URL='" + server.url() +
                                 "' node --test --test-reporter=spec qdrant_client_test.mjs");
  EXPECT_EQ(run.exit_code, 0) << "node --test qdrant_client_test.mjs failed:\n"
                              << run.output << "\n--- vectord log ---\n"
                              << server.LogTail();
  EXPECT_EQ(server.Terminate(), 0) << server.last_exit() << "\n" << server.LogTail();
}

}  // namespace
}  // namespace vectord
