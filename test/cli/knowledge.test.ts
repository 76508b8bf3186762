/**
 * `outpost knowledge` through the real CLI on the local store: add a folder and a file, list, re-add a changed file
 * (only its changed chunks rewritten), search finds a chunk with its heading, remove; and the mistakes a person makes.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeDir, runCli, SHOP, tempDir } from "./harness.js";

const root = tempDir("outpost-knowledge-");
afterAll(() => removeDir(root));

const docs = path.join(root, "docs");
mkdirSync(docs);
writeFileSync(
  path.join(docs, "returns.md"),
  "# Returns\n\nCustomers return items within 30 days.\n\n## Damaged items\n\nA photo is enough; no need to send the item back.\n",
);
writeFileSync(path.join(docs, "hours.txt"), "The warehouse ships Monday to Friday.\n\nNo shipping on public holidays.\n");
writeFileSync(path.join(docs, "logo.png"), "not text");

// Each command starts the runtime in its own process: minutes on a loaded two-core machine.
describe("outpost knowledge on the local store", { timeout: 180_000 }, () => {
  const local = ["--project", SHOP, "--data", path.join(root, "data")];
  const cli = (args: string[]) => runCli([...args, ...local]);

  it("adds a folder, lists, updates only what changed, finds chunks by their text, removes", async () => {
    const added = await cli(["knowledge", "add", docs, "--scope", "team:logistics", "--tag", "handbook"]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain("hours.txt → team/logistics: 1 chunk (1 new, 0 updated, 0 unchanged)");
    expect(added.stdout).toContain("returns.md → team/logistics: 2 chunks (2 new, 0 updated, 0 unchanged)");
    expect(added.stdout).toMatch(/try .*memory search QUERY --scope team\/logistics --project/);

    const ls = await cli(["knowledge", "ls"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/SCOPE\s+NAME\s+CHUNKS\s+CLASS\s+SUBJECT\s+UPDATED/);
    expect(ls.stdout).toMatch(/team\/logistics\s+hours\.txt\s+1\s+internal\s+-\s+\d+s ago/);
    expect(ls.stdout).toMatch(/team\/logistics\s+returns\.md\s+2\s+internal/);

    writeFileSync(
      path.join(docs, "returns.md"),
      "# Returns\n\nCustomers return items within 30 days.\n\n## Damaged items\n\nSend a photo within 7 days of delivery.\n",
    );
    const again = await cli([
      "knowledge",
      "add",
      path.join(docs, "returns.md"),
      "--scope",
      "team/logistics",
      "--tag",
      "handbook",
      "--json",
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual([
      { name: "returns.md", scope: "team/logistics", chunks: 2, added: 0, updated: 1, unchanged: 1, removed: 0 },
    ]);

    const search = await cli(["memory", "search", "photo of a damaged item", "--scope", "team/logistics", "--json"]);
    expect(search.code, search.stderr).toBe(0);
    const [top] = JSON.parse(search.stdout).items;
    expect(top).toMatchObject({
      kind: "knowledge",
      text: "Returns › Damaged items\nSend a photo within 7 days of delivery.",
      tags: ["handbook"],
      source: { kind: "knowledge", file: "returns.md", chunk: 1, heading: "Returns › Damaged items" },
    });
    expect(top.version).toBe(2);

    const rm = await cli(["knowledge", "rm", "hours.txt", "--scope", "team/logistics"]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toContain("removed hours.txt from team/logistics: 1 chunk (recorded in the audit log as knowledge.removed)");

    const after = await cli(["knowledge", "ls", "--json"]);
    expect(JSON.parse(after.stdout).map((d: { name: string }) => d.name)).toEqual(["returns.md"]);

    const audit = await cli(["audit", "list", "--kind", "knowledge.removed", "--json"]);
    expect(audit.code, audit.stderr).toBe(0);
    expect(JSON.parse(audit.stdout)[0]).toMatchObject({
      kind: "knowledge.removed",
      actor: "local",
      data: { name: "hours.txt", scope: "team/logistics", chunks: 1 },
    });
  });

  it("says what is wrong and how to fix it", async () => {
    const image = await cli(["knowledge", "add", path.join(docs, "logo.png"), "--scope", "workspace"]);
    expect(image.code).toBe(2);
    expect(image.stderr).toMatch(/logo\.png: only Markdown \(\.md, \.markdown\) and text \(\.txt\) files are read as knowledge$/m);

    const missing = await cli(["knowledge", "add", path.join(docs, "nope.md"), "--scope", "workspace"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.md: no such file or folder$/m);

    const scope = await cli(["knowledge", "add", path.join(docs, "hours.txt"), "--scope", "teams/finance"]);
    expect(scope.code).toBe(1);
    expect(scope.stderr).toMatch(/^error: "teams\/finance" is not a memory scope$/m);

    const name = await cli(["knowledge", "add", docs, "--scope", "workspace", "--name", "one.md"]);
    expect(name.code).toBe(2);
    expect(name.stderr).toMatch(/^error: --name names one document, but 2 files were given$/m);

    const unknown = await cli(["knowledge", "rm", "nope.md", "--scope", "workspace"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^error: there is no knowledge document "nope.md" in scope workspace of workspace acme$/m);
    expect(unknown.stderr).toMatch(/^hint: list documents with outpost knowledge ls/m);

    for (const r of [image, missing, scope, name, unknown]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
