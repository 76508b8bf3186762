import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeDir, runCli, tempDir } from "./harness.js";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) removeDir(dir);
});

describe("outpost init / validate", () => {
  it("creates a project that validates, and says which model each agent uses", async () => {
    const parent = tempDir();
    dirs.push(parent);
    const dir = path.join(parent, "my-agents");

    const init = await runCli(["init", dir]);
    expect(init.stderr).toBe("");
    expect(init.code).toBe(0);
    expect(init.stdout).toContain("outpost.yaml");
    expect(init.stdout).toContain(`outpost validate --project ${dir}`);

    const validate = await runCli(["validate", "--project", dir]);
    expect(validate.code).toBe(0);
    expect(validate.stdout).toMatch(/✓ .* is valid: 1 agent, \d+ tools?, \d+ models?/);
    // The scripted model is in use (no credentials in the test environment), and it says so.
    expect(validate.stdout).toMatch(/scripted model/);
  });

  it("validates the example project, without colour codes when not on a terminal", async () => {
    const validate = await runCli(["validate", "--project", "examples/acme"], { env: { NO_COLOR: "" } });
    expect(validate.code).toBe(0);
    expect(validate.stdout).toMatch(/support\s+\S+ → /);
    expect(validate.stdout).not.toContain("\x1b[");
  });

  it("lists the problems of a broken project as file:line and exits 1", async () => {
    const dir = tempDir();
    dirs.push(dir);
    mkdirSync(path.join(dir, "agents"));
    writeFileSync(path.join(dir, "outpost.yaml"), "version: 1\nworkspace: broken\nmodels:\n  assistant:\n    - provider: scripted\n");
    writeFileSync(
      path.join(dir, "agents/helper.yaml"),
      "name: helper\ndescription: helps\ninstructions: be helpful\nmodel: no-such-model\ntools:\n  - no.such.tool\n",
    );

    const validate = await runCli(["validate", "--project", dir]);
    expect(validate.code).toBe(1);
    expect(validate.stderr).toMatch(/agents\/helper\.yaml:4\b.*model/);
    expect(validate.stderr).toMatch(/agents\/helper\.yaml:6\b/);
    expect(validate.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("exits 2 on a usage mistake", async () => {
    const result = await runCli(["run", "support"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/missing required argument/);
    const unknown = await runCli(["frobnicate"]);
    expect(unknown.code).toBe(2);
  });
});
