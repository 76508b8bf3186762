/**
 * Acme's example suites (examples/acme/evals/*.yaml) pass on the scripted model, every case on real business
 * systems; the scripted judge (scripts/eval.judge.yaml) passes the answers that meet its rubric and fails one that
 * does not.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import type { Project } from "../../src/definitions/types.js";
import { loadSuite, runSuite } from "../../src/evals/index.js";

const ACME = path.resolve(import.meta.dirname, "../../examples/acme");
const root = mkdtempSync(path.join(tmpdir(), "outpost-eval-examples-"));
let project: Project;

beforeAll(async () => {
  project = await loadProject(ACME);
  for (const c of project.connections.values()) if (c.kind === "mcp") c.connectTimeoutMs = 90_000;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("Acme's eval suites", () => {
  it.each(["refunds", "shipments", "triage", "support"])(
    "%s: every case passes",
    async (name) => {
      const suite = await loadSuite(project, path.join(ACME, "evals", `${name}.yaml`));
      const result = await runSuite({ project, suite, concurrency: 2 });
      const failed = result.cases.filter((c) => !c.pass).map((c) => `${c.name}: ${JSON.stringify(c.scores.filter((s) => !s.pass))}`);
      expect(failed).toEqual([]);
      expect(result.totals.passed).toBe(suite.cases.length);
    },
    90_000,
  );

  it("the scripted judge fails an answer that leaves out what the rubric asks for", async () => {
    const scripts = path.join(root, "scripts");
    cpSync(project.scriptsDir, scripts, { recursive: true });
    const support = path.join(scripts, "support.yaml");
    const text = readFileSync(support, "utf8");
    const answer = "the carrier claim is filed and your shipping fee has been refunded. Ticket ${ticket_id} is solved.";
    expect(text).toContain(answer);
    writeFileSync(support, text.replace(answer, "the carrier claim is filed. Ticket ${ticket_id} is solved."));

    const suite = await loadSuite(project, path.join(ACME, "evals", "support.yaml"));
    const result = await runSuite({ project: { ...project, scriptsDir: scripts }, suite, cases: ["damaged_order"] });
    const [c] = result.cases;
    expect(c.pass).toBe(false);
    expect(c.scores.filter((s) => !s.pass)).toEqual([
      { scorer: "judge", pass: false, score: 0.1, detail: "0.10 < 0.7: The answer does not give the customer what the rubric asks for." },
    ]);
    expect(result.partial).toBe(true);
  }, 90_000);
});
