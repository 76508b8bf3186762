/**
 * `outpost replay RUN --with DIR` through the real CLI: a run recorded on the local store of test/fixtures/shop,
 * replayed against the same project (exit 0) and against a copy whose policy now refuses the lookup (exit 3).
 */
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeDir, runCli, SHOP, tempDir } from "./harness.js";

const root = tempDir("outpost-replay-cli-");
const data = path.join(root, "data");
const changed = path.join(root, "shop-next");
afterAll(() => removeDir(root));

describe("outpost replay", () => {
  it("reports identical with exit 0, and a policy that now refuses a recorded call as a divergence with exit 3", async () => {
    const run = await runCli(["run", "support", "where is order 1042", "--project", SHOP, "--data", data]);
    expect(run.code, run.stderr).toBe(0);
    const runId = run.stdout.match(/· run (\S+) ·/)?.[1] as string;
    expect(runId).toBeTruthy();

    const same = await runCli(["replay", runId, "--with", SHOP, "--data", data]);
    expect(same.stderr).toBe("");
    expect(same.code).toBe(0);
    expect(same.stdout).toContain(`Replay of run ${runId} (support)`);
    expect(same.stdout).toMatch(/STEP\s+RECORDED\s+REPLAY/);
    expect(same.stdout).toMatch(/orders\.lookup \{"order_id":"1042"\}/);
    expect(same.stdout).toMatch(/answered from the recording: 1 exact, 0 by order, 0 not recorded/);
    expect(same.stdout).toMatch(/✓ identical \(\d+ steps\)/);

    cpSync(SHOP, changed, { recursive: true });
    mkdirSync(path.join(changed, "policies"));
    writeFileSync(
      path.join(changed, "policies/lookups.cedar"),
      '@id("shop.no_lookups")\nforbid (principal, action == Action::"tool.call", resource == Tool::"orders.lookup");\n',
    );
    const diverged = await runCli(["replay", runId, "--with", changed, "--data", data, "--json"]);
    expect(diverged.stderr).toBe("");
    expect(diverged.code).toBe(3);
    const report = JSON.parse(diverged.stdout);
    expect(report.identical).toBe(false);
    expect(report.summary).toMatch(
      /^diverged at step \d+: recorded policy allow on tool\.call Tool::"orders\.lookup" \(baseline\.tool_call\), replay policy deny on tool\.call Tool::"orders\.lookup" \(shop\.no_lookups\)/,
    );
    expect(report.rows[report.divergedAt - 1]).toMatchObject({ status: "changed", replay: { kind: "policy", decision: "deny" } });

    const unknown = await runCli(["replay", "run_doesnotexist", "--with", SHOP, "--data", data]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^error: run "run_doesnotexist" does not exist/m);
    expect(unknown.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);
});
