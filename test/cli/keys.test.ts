/**
 * `outpost keys` and what keys decide, through the real CLI: keys created, listed and revoked on the local store
 * and over --server; a revoked key or no key is a 401 that says how to fix it; approvals list who may decide them
 * and when they expire; a key without the group an approval asks for gets a 403 that says which one.
 */
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_ADMIN_KEY } from "../helpers/auth.js";
import { CliProcess, removeDir, runCli, SHOP, tempDir } from "./harness.js";

const root = tempDir("outpost-keys-");
/** The shop, with a policy that sends every refund to an operator of finance. */
const project = path.join(root, "shop");
const KEY = /export OUTPOST_API_KEY=(opk_\w+)/;

beforeAll(() => {
  cpSync(SHOP, project, { recursive: true });
  mkdirSync(path.join(project, "policies"));
  writeFileSync(
    path.join(project, "policies", "refunds.cedar"),
    `@id("shop.refunds_need_finance")
@approval("operator:finance")
permit (principal is Agent, action == Action::"tool.call", resource == Tool::"orders.refund");
`,
  );
});
afterAll(() => removeDir(root));

// Each case spawns several CLI processes, each starting the runtime: minutes on a loaded two-core machine.
describe("outpost keys on the local store", { timeout: 120_000 }, () => {
  const data = path.join(root, "local-data");
  const local = ["--project", project, "--data", data];

  it("creates a key printed once, lists keys without it, revokes one", async () => {
    const created = await runCli(["keys", "create", "alice", "--role", "operator", "--group", "finance", "--expires", "30d", ...local]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const key = created.stdout.match(KEY)?.[1] as string;
    expect(key).toMatch(/^opk_\w{32,}$/);
    const id = created.stdout.match(/created key (key_\w+) "alice" in workspace acme/)?.[1] as string;
    expect(id).toBeTruthy();
    expect(created.stdout).toMatch(/roles:\s+operator\s+groups: finance/);
    expect(created.stdout).toContain(`keys revoke ${id}`);

    const list = await runCli(["keys", "list", ...local]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/ID\s+NAME\s+PREFIX\s+ROLES\s+GROUPS\s+CREATED\s+LAST USED\s+EXPIRES\s+STATE/);
    expect(list.stdout).toMatch(
      new RegExp(`${id}\\s+alice\\s+${key.slice(0, 10)}…\\s+operator\\s+finance\\s+\\S+ ago\\s+never\\s+\\d{4}-\\S+\\s+active`),
    );
    expect(list.stdout).not.toContain(key);

    const json = JSON.parse((await runCli(["keys", "ls", "--json", ...local])).stdout) as Record<string, unknown>[];
    const alice = json.find((k) => k.id === id);
    expect(alice).toMatchObject({ name: "alice", roles: ["operator"], groups: ["finance"], created_by: "local", revoked_at: null });
    expect(Date.parse(alice?.expires_at as string) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect(JSON.stringify(json)).not.toContain(key);

    const revoke = await runCli(["keys", "revoke", id, ...local]);
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toContain(`revoked key ${id} "alice"`);
    const after = await runCli(["keys", "list", ...local]);
    expect(after.stdout).toMatch(new RegExp(`${id}\\s+alice.*revoked \\d+s ago`));
  });

  it("says what is wrong with a role, an expiry, a key id or a workspace, and how to fix it", async () => {
    const role = await runCli(["keys", "create", "bob", "--role", "boss", ...local]);
    expect(role.code).toBe(2);
    expect(role.stderr).toMatch(/^error: --role boss: there is no role "boss"$/m);
    expect(role.stderr).toMatch(/^hint: roles: admin, builder, operator, auditor, viewer$/m);

    const none = await runCli(["keys", "create", "bob", ...local]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/needs at least one role/);

    const expiry = await runCli(["keys", "create", "bob", "--role", "viewer", "--expires", "soon", ...local]);
    expect(expiry.code).toBe(2);
    expect(expiry.stderr).toMatch(/--expires soon: not a duration or a date/);
    expect(expiry.stderr).toMatch(/hint: .*30d/);

    const past = await runCli(["keys", "create", "bob", "--role", "viewer", "--expires", "2001-01-01", ...local]);
    expect(past.code).toBe(2);
    expect(past.stderr).toMatch(/not in the future/);

    const unknown = await runCli(["keys", "revoke", "key_nope", ...local]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/API key "key_nope" does not exist/);
    expect(unknown.stderr).toMatch(/hint: list the keys with: outpost keys list/);

    const workspace = await runCli(["keys", "list", "--workspace", "globex", ...local]);
    expect(workspace.code).toBe(1);
    expect(workspace.stderr).toMatch(/workspace "globex" does not exist/);

    for (const r of [role, none, expiry, past, unknown, workspace]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("shows who may decide an approval, when it expires, the policy that asked; an expired one as expired", async () => {
    const run = await runCli(["run", "support", "refund order 1042", ...local]);
    expect(run.code, run.stderr).toBe(0);
    const approvalId = run.stdout.match(/approvals approve (apr_\w+)/)?.[1] as string;
    expect(approvalId).toBeTruthy();

    const pending = await runCli(["approvals", "ls", ...local]);
    expect(pending.code).toBe(0);
    expect(pending.stdout).toMatch(/ID\s+STATUS\s+AGENT\s+TOOL\s+ARGUMENTS\s+APPROVER\s+EXPIRES\s+POLICIES\s+RUN/);
    expect(pending.stdout).toMatch(
      new RegExp(
        `${approvalId}\\s+pending\\s+support\\s+orders\\.refund\\s+.*operator of finance\\s+in 2[34]h\\s+shop\\.refunds_need_finance`,
      ),
    );
    expect(pending.stdout).toMatch(/approve with: .*approvals approve .*\(as operator of finance\)/);

    // A day passes with no one deciding (moved directly in the store: no process holds it now).
    const db = new Database(path.join(data, "outpost.db"));
    db.prepare("update approvals set expires_at = ? where id = ?").run(Date.now() - 60_000, approvalId);
    db.close();

    const all = await runCli(["approvals", "ls", "--all", ...local]);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(new RegExp(`${approvalId}\\s+expired\\s+.*expired \\d+m ago`));
    expect(all.stdout).not.toMatch(/approve with:/);
  });
});

describe("outpost keys against a server", { timeout: 120_000 }, () => {
  const data = path.join(root, "server-data");
  let server: CliProcess;
  let url: string;
  afterAll(() => server?.kill());

  beforeAll(async () => {
    server = new CliProcess(["up", "--project", project, "--data", data, "--port", "0"]);
    url = (await server.waitFor(/API\s+(http:\/\/\S+)/))[1];
    await server.waitFor(/Press Ctrl\+C to stop/);
  }, 120_000);

  /** `outpost ARGS --server URL` with `key` as OUTPOST_API_KEY (the harness's default: the admin key). */
  const cli = (args: string[], key = TEST_ADMIN_KEY) => runCli([...args, "--server", url], { env: { OUTPOST_API_KEY: key } });

  it("creates, lists and revokes keys over HTTP; a revoked key gets a 401 that says how to fix it", async () => {
    const created = await cli(["keys", "create", "ci", "--role", "viewer"]);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.match(KEY)?.[1] as string;
    const id = created.stdout.match(/created key (key_\w+) "ci"/)?.[1] as string;
    expect(created.stdout).toContain(`(${url})`);
    expect(created.stdout).toContain(`keys revoke ${id} --server ${url}`);

    // The new key works: it lists runs (viewer), and shows as used.
    expect((await cli(["runs", "ls"], key)).code).toBe(0);
    const list = await cli(["keys", "list"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(
      new RegExp(`${id}\\s+ci\\s+${key.slice(0, 10)}…\\s+viewer\\s+-\\s+\\S+ ago\\s+\\d+s ago\\s+never\\s+active`),
    );
    expect(list.stdout).toMatch(/admin\s+opk_TestAd…\s+admin/);
    expect(list.stdout).not.toContain(key);

    // A viewer may not manage keys: the 403 names the role needed and the key the CLI sent.
    const forbidden = await cli(["keys", "list"], key);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toMatch(/^error: .*needs the role admin; ci has viewer/m);
    expect(forbidden.stderr).toMatch(new RegExp(`^hint: .*outpost keys create.*OUTPOST_API_KEY \\(${key.slice(0, 10)}…\\)`, "m"));

    const revoke = await cli(["keys", "revoke", id]);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(revoke.stdout).toContain(`revoked key ${id} "ci"`);

    const refused = await cli(["runs", "ls"], key);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toMatch(new RegExp(`^error: the API key ${key.slice(0, 10)}… was revoked$`, "m"));
    expect(refused.stderr).toMatch(/^hint: the key in OUTPOST_API_KEY was refused: export OUTPOST_API_KEY=… with a working key/m);
    expect(refused.stderr).toMatch(/outpost keys create NAME --role ROLE/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);

    const again = await cli(["keys", "revoke", "key_nope"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/API key "key_nope" does not exist/);
  });

  it("without a key, says OUTPOST_API_KEY is not set and where the admin key comes from", async () => {
    const none = await cli(["runs", "ls"], "");
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^error: this endpoint needs credentials$/m);
    expect(none.stderr).toMatch(/^hint: OUTPOST_API_KEY is not set: export OUTPOST_API_KEY=… with the admin key `outpost up` printed/m);
  });

  it("an approval lists its approver; a key outside the group is told which group, one inside decides it", async () => {
    const run = await cli(["run", "support", "refund order 1042"]);
    expect(run.code, run.stderr).toBe(0);
    const approvalId = run.stdout.match(/approvals approve (apr_\w+)/)?.[1] as string;
    expect(approvalId).toBeTruthy();

    const ls = await cli(["approvals", "ls"]);
    expect(ls.stdout).toMatch(new RegExp(`${approvalId}\\s+pending\\s+.*operator of finance\\s+in 2[34]h\\s+shop\\.refunds_need_finance`));

    const keyOf = async (name: string, ...flags: string[]) => {
      const r = await cli(["keys", "create", name, "--role", "operator", ...flags]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.match(KEY)?.[1] as string;
    };
    const support = await keyOf("sam", "--group", "support");
    const finance = await keyOf("fiona", "--group", "finance");

    const wrongGroup = await cli(["approvals", "approve", approvalId, "--no-follow"], support);
    expect(wrongGroup.code).toBe(1);
    expect(wrongGroup.stderr).toMatch(/^error: approval \S+: this approval needs a operator of finance; sam is in support$/m);
    expect(wrongGroup.stderr).toMatch(/^hint: ask someone who holds that role to decide it/m);

    const approved = await cli(["approvals", "approve", approvalId, "--no-follow"], finance);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toMatch(/✓ approved/);
    const decided = await cli(["approvals", "ls", "--all"]);
    expect(decided.stdout).toMatch(new RegExp(`${approvalId}\\s+approved\\s+.*operator of finance\\s+-\\s+shop`));
  });
});
