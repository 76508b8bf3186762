/**
 * `outpost memory` through the real CLI: on the local store (as the project's admin) and over --server (with the
 * key's roles). Add, supersede, list, search, show with history, edit, forget, erase with its report and audit
 * entry, and the mistakes a person makes.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_ADMIN_KEY } from "../helpers/auth.js";
import { CliProcess, removeDir, runCli, SHOP, tempDir } from "./harness.js";

const root = tempDir("outpost-memory-");
afterAll(() => removeDir(root));

const ID = /remembered (mem_\w+) in /;

// Each command starts the runtime in its own process: minutes on a loaded two-core machine.
describe("outpost memory on the local store", { timeout: 180_000 }, () => {
  const local = ["--project", SHOP, "--data", path.join(root, "local-data")];
  const cli = (args: string[]) => runCli([...args, ...local]);

  it("adds, supersedes, lists, searches, shows with history, edits, forgets and erases", async () => {
    const first = await cli([
      "memory",
      "add",
      "Maria prefers DHL",
      "--scope",
      "team:logistics",
      "--subject",
      "customer:1042",
      "--key",
      "carrier",
      "--tag",
      "delivery",
    ]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const id = first.stdout.match(ID)?.[1] as string;
    expect(first.stdout).toContain(`remembered ${id} in team/logistics (version 1)`);
    expect(first.stdout).toMatch(new RegExp(`see it with: .*memory show ${id} --project`));

    const second = await cli([
      "memory",
      "add",
      "Maria prefers UPS since May",
      "--scope",
      "team/logistics",
      "--subject",
      "customer:1042",
      "--key",
      "carrier",
    ]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(`remembered ${id} in team/logistics (version 2)`);
    expect(second.stdout).toContain("replaced version 1: Maria prefers DHL");

    const other = await cli(["memory", "add", "Invoices go out on the 1st", "--scope", "workspace", "--json"]);
    expect(other.code, other.stderr).toBe(0);
    const otherItem = JSON.parse(other.stdout);
    expect(otherItem).toMatchObject({ scope: "workspace", author: "local", source: { kind: "person" }, superseded: null });

    const ls = await cli(["memory", "ls"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/ID\s+SCOPE\s+SUBJECT\s+KEY\s+TEXT\s+SOURCE\s+UPDATED/);
    expect(ls.stdout).toMatch(
      new RegExp(`${id}\\s+team/logistics\\s+customer:1042\\s+carrier\\s+Maria prefers UPS since May\\s+local\\s+\\d+s ago`),
    );
    const lines = ls.stdout.trim().split("\n");
    expect(lines[1]).toContain(otherItem.id); // newest first

    const filtered = await cli(["memory", "ls", "--subject", "customer:1042", "--json"]);
    expect(JSON.parse(filtered.stdout).map((i: { id: string }) => i.id)).toEqual([id]);

    const search = await cli(["memory", "search", "which carrier does Maria prefer"]);
    expect(search.code, search.stderr).toBe(0);
    expect(search.stdout).toMatch(/SCORE\s+ID\s+SCOPE\s+SUBJECT\s+SOURCE\s+AGE\s+TEXT/);
    expect(search.stdout).toMatch(
      new RegExp(`\\d\\.\\d{3}\\s+${id}\\s+team/logistics\\s+customer:1042\\s+local\\s+\\d+s ago\\s+Maria prefers UPS`),
    );
    expect(search.stdout).toMatch(/searched team\/logistics, workspace/);

    const edit = await cli(["memory", "edit", id, "--text", "Maria prefers UPS, never on Saturdays"]);
    expect(edit.code, edit.stderr).toBe(0);
    expect(edit.stdout).toContain(`edited ${id}: now version 3`);

    const show = await cli(["memory", "show", id]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^${id}  fact in team/logistics, version 3$`, "m"));
    expect(show.stdout).toMatch(/subject:\s+customer:1042\s+key: carrier/);
    expect(show.stdout).toMatch(/source:\s+a person \(local\)/);
    expect(show.stdout).toContain("Maria prefers UPS, never on Saturdays");
    expect(show.stdout).toMatch(/^history$/m);
    expect(show.stdout).toMatch(/^ {2}v2 {2}\S+ by local, superseded \S+ by local$/m);
    expect(show.stdout).toMatch(/^ {6}Maria prefers UPS since May$/m);
    expect(show.stdout).toMatch(/^ {6}Maria prefers DHL$/m);

    const forget = await cli(["memory", "forget", otherItem.id]);
    expect(forget.code, forget.stderr).toBe(0);
    expect(forget.stdout).toContain(`forgot ${otherItem.id} and its history (recorded in the audit log as memory.forgotten)`);

    const erase = await cli(["memory", "erase", "--subject", "customer:1042"]);
    expect(erase.code, erase.stderr).toBe(0);
    expect(erase.stdout).toContain("erased customer:1042:");
    expect(erase.stdout).toMatch(/^ {2}1 memory item$/m);
    expect(erase.stdout).toMatch(/^ {2}0 knowledge chunks$/m);
    expect(erase.stdout).toMatch(/^ {2}2 earlier versions$/m);
    expect(erase.stdout).toMatch(/^ {2}0 cached context entities$/m);
    expect(erase.stdout).toContain(`ids: ${id}`);
    expect(erase.stdout).toMatch(/recorded in the audit log as memory\.erased \(.*audit list --kind memory\.erased --project/);

    const audit = await runCli(["audit", "list", "--kind", "memory.erased", "--json", ...local]);
    expect(audit.code, audit.stderr).toBe(0);
    const [entry] = JSON.parse(audit.stdout);
    expect(entry).toMatchObject({
      kind: "memory.erased",
      actor: "local",
      data: { subject: "customer:1042", items: 1, versions: 2, ids: [id] },
    });

    const empty = await cli(["memory", "ls"]);
    expect(empty.stdout).toMatch(/no memory here yet \(.*memory add TEXT --scope SCOPE --project/);
  });

  it("says what is wrong and how to fix it", async () => {
    const scope = await cli(["memory", "add", "x", "--scope", "teams/finance"]);
    expect(scope.code).toBe(1);
    expect(scope.stderr).toMatch(/^error: "teams\/finance" is not a memory scope$/m);
    expect(scope.stderr).toMatch(/^hint: a scope is workspace, team\/<team>, agent\/<agent>/m);

    const noScope = await cli(["memory", "add", "x"]);
    expect(noScope.code).toBe(2);
    expect(noScope.stderr).toMatch(/required option '--scope <scope>' not specified/);

    const missing = await cli(["memory", "show", "mem_nope"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: memory item "mem_nope" does not exist in workspace acme$/m);
    expect(missing.stderr).toMatch(/^hint: list items with outpost memory ls/m);

    const nothing = await cli(["memory", "edit", "mem_nope"]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/^error: nothing to change$/m);

    const classification = await cli(["memory", "add", "x", "--scope", "workspace", "--classification", "secret"]);
    expect(classification.code).toBe(2);
    expect(classification.stderr).toMatch(/^hint: use one of public, internal, confidential, restricted$/m);

    for (const r of [scope, noScope, missing, nothing, classification]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("outpost memory against a server", { timeout: 180_000 }, () => {
  let server: CliProcess;
  let url: string;
  afterAll(() => server?.kill());

  beforeAll(async () => {
    server = new CliProcess(["up", "--project", SHOP, "--data", path.join(root, "server-data"), "--port", "0"]);
    url = (await server.waitFor(/API\s+(http:\/\/\S+)/))[1];
    await server.waitFor(/Press Ctrl\+C to stop/);
  }, 120_000);

  const cli = (args: string[], key = TEST_ADMIN_KEY) => runCli([...args, "--server", url], { env: { OUTPOST_API_KEY: key } });

  it("works over HTTP with the key's roles: add, list, search, show, erase; a viewer is told which role it needs", async () => {
    const added = await cli([
      "memory",
      "add",
      "Order 105708 was replaced once already",
      "--scope",
      "agent/support",
      "--subject",
      "order:105708",
      "--tag",
      "reship",
    ]);
    expect(added.code, added.stderr).toBe(0);
    const id = added.stdout.match(ID)?.[1] as string;
    expect(added.stdout).toMatch(new RegExp(`see it with: .*memory show ${id} --server ${url}`));

    const ls = await cli(["memory", "ls", "--tag", "reship", "--json"]);
    expect(ls.code, ls.stderr).toBe(0);
    const [item] = JSON.parse(ls.stdout);
    expect(item).toMatchObject({
      id,
      scope: "agent/support",
      subject: "order:105708",
      source: { kind: "person" },
      author: expect.stringMatching(/^key:/),
    });

    const search = await cli(["memory", "search", "was the order replaced", "--scope", "agent/support"]);
    expect(search.code, search.stderr).toBe(0);
    expect(search.stdout).toMatch(new RegExp(`${id}\\s+agent/support\\s+order:105708\\s+key:\\S+`));

    const show = await cli(["memory", "show", id]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain("Order 105708 was replaced once already");

    const viewer = await cli(["keys", "create", "vic", "--role", "viewer"]);
    const viewerKey = viewer.stdout.match(/export OUTPOST_API_KEY=(opk_\w+)/)?.[1] as string;
    const refused = await cli(["memory", "ls"], viewerKey);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: GET \/v1\/memory needs the role builder or operator or auditor; vic has viewer$/m);

    const erase = await cli(["memory", "erase", "--subject", "order:105708"]);
    expect(erase.code, erase.stderr).toBe(0);
    expect(erase.stdout).toMatch(/^ {2}1 memory item$/m);
    expect(erase.stdout).toContain("recorded in the audit log as memory.erased (GET /v1/audit?kind=memory.erased)");

    const gone = await cli(["memory", "show", id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/does not exist in workspace acme/);
  });
});
