import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // test/scale restarts PostgreSQL: its own tier (npm run test:scale), run alone after the others.
    exclude: process.env.OUTPOST_TEST_SCALE ? ["**/node_modules/**"] : ["**/node_modules/**", "test/scale/**"],
    // Tests spawn real processes and servers; forks isolate native modules (better-sqlite3) cleanly.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: keep parallel files bounded so process-killing tests do not starve each other.
    maxWorkers: 2,
    env: {
      // The example project switches to a real model when credentials are present: tests never do.
      OPENAI_API_KEY: "",
      ANTHROPIC_API_KEY: "",
      OUTPOST_LLM_BASE_URL: "",
      // Expected warnings (a tool that fails on purpose) would bury the test report.
      OUTPOST_LOG_LEVEL: "error",
    },
  },
});
