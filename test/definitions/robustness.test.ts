/**
 * The project loader and `outpost validate`: every mistake is an
 * issue with file (and line), never an exception without a location.
 * Each test pins a defect found in review.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { validateProject } from "../../src/definitions/index.js";
import { runCli } from "../cli/harness.js";
import { writeProject } from "../definitions/fixtures.js";

const AGENT = "name: helper\ninstructions: Help.\n";

describe("validate: problems are located, not thrown", () => {
  it("a YAML file with many aliases is an issue naming the file, not a bare 'Excessive alias count' error", async () => {
    // Today validateProject throws `Excessive alias count indicates a resource exhaustion attack`
    // (from yaml's toJS) and `outpost validate` prints it with no file name.
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]",
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]",
      "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]",
      "e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]",
      "",
    ].join("\n");
    const root = await writeProject({ "agents/helper.yaml": AGENT, "agents/bomb.yaml": bomb });
    const result = await validateProject(root);
    expect(result.ok).toBe(false);
    expect(result.issues.map((i) => i.file)).toContain("agents/bomb.yaml");
  });

  it("a folder named like an agent file (agents/old.yaml/) is an issue naming it, not EISDIR", async () => {
    // Once: `error: EISDIR: illegal operation on a directory, read` with no path.
    const root = await writeProject({ "agents/helper.yaml": AGENT });
    await mkdir(path.join(root, "agents/old.yaml"));
    const result = await validateProject(root).catch((e: Error) => ({ ok: false, issues: [], thrown: e.message }));
    expect(result).not.toHaveProperty("thrown");
  });

  it("outpost validate reports a broken scripts/<agent>.yaml that the scripted model will play", async () => {
    // Today validate says "✓ … is valid" and "helper → scripted model", and the first run then fails
    // with model_bad_request: invalid script … (the README promises validate names every mistake).
    const root = await writeProject({
      "agents/helper.yaml": AGENT,
      "scripts/helper.yaml": 'dialogues:\n  - when: "hello"\n    turns:\n      - txt: "hi"\n',
    });
    const result = await runCli(["validate", "--project", root]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/scripts\/helper\.yaml:4/);
  });
});
