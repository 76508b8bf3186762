/**
 * `outpost costs` as a user runs it: on the local store (a table, JSON) and against a server, with flag mistakes
 * said in the flags' words. The data is made in-process; each CLI call is a real process.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { startOutpost } from "../../src/runtime/index.js";
import type { CostReport } from "../../src/telemetry/costs.js";
import { type Stack, startStack } from "../server/helpers.js";
import { removeDir, runCli, SHOP, tempDir } from "./harness.js";

const data = tempDir();
let expected: CostReport;
let stack: Stack | undefined;

beforeAll(async () => {
  const env = { ...process.env };
  delete env.OUTPOST_DATABASE_URL;
  const outpost = await startOutpost({ project: await loadProject(SHOP), dataDir: data, env });
  try {
    const run = await outpost.startRun({ agent: "support", input: "Where is order 1042?" });
    for await (const e of outpost.streamEvents(run.id)) void e;
    expected = await outpost.costs.report({ workspace: "acme", groupBy: ["team"] });
  } finally {
    await outpost.close();
  }
  expect(expected.totals.calls).toBeGreaterThan(0);
});
afterAll(async () => {
  await stack?.close();
  removeDir(data);
});

describe("outpost costs", () => {
  it("on the local store: a table by agent and model per day, then the total", async () => {
    const r = await runCli(["costs", "--project", SHOP, "--data", data, "--by", "agent,model", "--period", "day"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const [header, row, , total] = r.stdout.trimEnd().split("\n");
    expect(header.split(/\s{2,}/)).toEqual(["PERIOD", "AGENT", "MODEL", "RUNS", "CALLS", "TOKENS IN", "TOKENS OUT", "COST"]);
    const t = expected.totals;
    expect(row.split(/\s{2,}/)).toEqual([
      expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
      "support",
      "scripted",
      "1",
      String(t.calls),
      t.input_tokens.toLocaleString("en-US"),
      t.output_tokens.toLocaleString("en-US"),
      "$0.00",
    ]);
    expect(total).toBe(
      `total: $0.00 — 1 run, ${t.calls} model calls, ${t.input_tokens.toLocaleString("en-US")} tokens in, ${t.output_tokens} out`,
    );
  });

  it("--json prints the report GET /v1/costs answers: the same locally and from a server", async () => {
    const local = await runCli(["costs", "--project", SHOP, "--data", data, "--by", "team", "--json"]);
    expect(local.code, local.stderr).toBe(0);
    expect(JSON.parse(local.stdout)).toEqual(expected);
    stack = await startStack({ dataDir: data });
    const remote = await runCli(["costs", "--server", stack.url, "--by", "team", "--json"]);
    expect(remote.code, remote.stderr).toBe(0);
    expect(JSON.parse(remote.stdout)).toEqual(expected);
  });

  it("a mistake names the flag and exits 2", async () => {
    const r = await runCli(["costs", "--project", SHOP, "--data", data, "--by", "agent", "--since", "last week"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: --since: "last week" is neither a date, a time nor a duration/m);
    expect(r.stderr).toMatch(/^hint: use a date \(2026-12-01\)/m);
  });
});
