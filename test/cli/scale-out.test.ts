/**
 * The split topology from the command line: `outpost up --no-workers` (an API node) and `outpost worker`, on one
 * PostgreSQL. A run started through the API node is executed by the worker; SIGTERM stops the worker cleanly. Without
 * a shared PostgreSQL, or with a lease out of range, each says what is wrong and how to fix it, without a stack trace.
 */
import { afterAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../pg/database.js";
import { CliProcess, removeDir, runCli, tempDir } from "./harness.js";

const data = tempDir();
const db = await createTestDatabase("outpost_cli_split");
const processes: CliProcess[] = [];
afterAll(async () => {
  for (const p of processes) p.kill();
  removeDir(data);
  await db.drop();
});

describe("outpost worker and outpost up --no-workers", () => {
  it("refuse to start without a shared PostgreSQL, and take only a sensible lease", async () => {
    for (const args of [["worker"], ["up", "--no-workers", "--port", "0"]]) {
      const r = await runCli([...args, "--project", "test/fixtures/shop", "--data", data]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/needs PostgreSQL.*OUTPOST_DATABASE_URL is not set/);
      expect(r.stderr).toMatch(/hint: export OUTPOST_DATABASE_URL=postgres:\/\//);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    const sqlite = await runCli(["worker", "--project", "test/fixtures/shop"], { env: { OUTPOST_DATABASE_URL: "sqlite:./x.db" } });
    expect(sqlite.code).toBe(2);
    expect(sqlite.stderr).toMatch(/must be a postgres:\/\/ URL/);
    const lease = await runCli(["worker", "--lease", "100ms", "--project", "test/fixtures/shop"], {
      env: { OUTPOST_DATABASE_URL: db.url || "postgres://x/y" },
    });
    expect(lease.code).toBe(2);
    expect(lease.stderr).toMatch(/--lease must be from 1s to 10m/);
  }, 60_000);

  it.skipIf(!db.reachable)(
    "an API node and a worker share the work; the worker stops on SIGTERM",
    async () => {
      const env = { OUTPOST_DATABASE_URL: db.url };
      const api = new CliProcess(["up", "--no-workers", "--project", "test/fixtures/shop", "--data", data, "--port", "0"], { env });
      processes.push(api);
      const [, url] = await api.waitFor(/API\s+(http:\/\/\S+)/);
      await api.waitFor(/Press Ctrl\+C/);
      expect(api.stdout).toMatch(/Workers\s+none here/);
      const worker = new CliProcess(["worker", "--project", "test/fixtures/shop", "--data", data, "--lease", "5s"], { env });
      processes.push(worker);
      await worker.waitFor(/Press Ctrl\+C/);
      expect(worker.stdout).toMatch(/up to 1000 at once, lease 5s/);

      const run = await runCli(["run", "support", "where is order 1042", "--server", url]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/✓ completed/);

      worker.child.kill("SIGTERM");
      expect((await worker.exit()).code).toBe(0);
      expect(worker.stderr).toMatch(/SIGTERM: stopping; handing back 0 runs/);
      expect(worker.stderr).toMatch(/stopped/);
      api.child.kill("SIGTERM");
      expect((await api.exit()).code).toBe(0);
    },
    90_000,
  );
});
