/**
 * `outpost up` as a real server on a free port, the CLI as its client, and a
 * clean shutdown on SIGTERM.
 */
import { afterAll, describe, expect, it } from "vitest";
import { ADMIN_HEADERS } from "../helpers/auth.js";
import { CliProcess, removeDir, runCli, tempDir } from "./harness.js";

const data = tempDir();
let server: CliProcess | undefined;
afterAll(() => {
  server?.kill();
  removeDir(data);
});

describe("outpost up", () => {
  it("serves the API, runs through --server, and shuts down on SIGTERM", async () => {
    server = new CliProcess(["up", "--project", "test/fixtures/shop", "--data", data, "--port", "0"]);
    const [, url] = await server.waitFor(/API\s+(http:\/\/\S+)/);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toMatch(/:0$/);
    await server.waitFor(/Press Ctrl\+C to stop/);
    expect(server.stdout).toContain(`${url}/docs`);
    expect(server.stdout).toMatch(/support\s+.*scripted/);
    expect(server.stdout).toContain(`outpost run support`);

    const run = await runCli(["run", "support", "where is order 1042", "--server", url]);
    expect(run.stderr).not.toMatch(/error/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/✓ completed/);

    // OUTPOST_SERVER works as well as --server.
    const ls = await runCli(["runs", "ls"], { env: { OUTPOST_SERVER: url } });
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/support\s+completed/);

    // What the run cost, and the metrics of its workspace, are served too.
    const costs = await runCli(["costs", "--json", "--server", url]);
    expect(costs.code, costs.stderr).toBe(0);
    expect(JSON.parse(costs.stdout).items.map((i: { agent: string }) => i.agent)).toEqual(["support"]);
    const metrics = await fetch(`${url}/metrics`, { headers: ADMIN_HEADERS });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^outpost_runs_finished_total\{.*gen_ai_agent_name="support".*\} 1$/m);

    // The local store is held by the server: working on it directly says so.
    const locked = await runCli(["runs", "ls", "--project", "test/fixtures/shop", "--data", data]);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/^error: /m);
    expect(locked.stderr).toMatch(/^hint: /m);
    expect(locked.stderr).toContain(`--server ${url}`); // the hint names the server actually holding it

    server.child.kill("SIGTERM");
    const exit = await server.exit();
    expect(exit.code).toBe(0);
    expect(server.stderr).toMatch(/stopped/);
  });

  it("prints project problems as a list and exits 1", async () => {
    const bad = tempDir();
    try {
      const result = await runCli(["up", "--project", bad, "--data", data, "--port", "0"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^error: /m);
      expect(result.stderr).toMatch(/outpost\.yaml/);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    } finally {
      removeDir(bad);
    }
  });
});
