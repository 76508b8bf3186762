/**
 * Memory over HTTP, against the real runtime on SQLite: each route, the mistakes a client makes (4xx with a hint),
 * paging, a fact superseded by the same subject and key (with its history), roles, another workspace's memory, and
 * erasure of a subject with its report and its audit entry.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, type Stack, startStack } from "./helpers.js";

let stack: Stack;
/** The admin's principal id (`key:<id>`): the author of what the admin writes. */
let adminId: string;
const as: Record<"builder" | "operator" | "auditor" | "viewer", { authorization: string }> = {} as never;
let globex: { authorization: string };

const call = (method: string, path: string, init: { body?: unknown; headers?: Record<string, string> } = {}) =>
  http(stack.url, method, path, init);
const remember = async (body: Record<string, unknown>, headers?: Record<string, string>) => {
  const res = await call("POST", "/v1/memory", { body, ...(headers ? { headers } : {}) });
  expect(res.status, res.text).toBe(201);
  return res.body;
};

beforeAll(async () => {
  stack = await startStack();
  const keys = (await call("GET", "/v1/keys")).body as { id: string; name: string }[];
  adminId = `key:${keys.find((k) => k.name === "admin")?.id}`;
  for (const role of ["builder", "operator", "auditor", "viewer"] as const) {
    const key = await call("POST", "/v1/keys", { body: { name: `${role}-1`, roles: [role] } });
    expect(key.status, key.text).toBe(201);
    as[role] = { authorization: `Bearer ${key.body.key}` };
  }
  expect((await call("POST", "/v1/workspaces", { body: { id: "globex" } })).status).toBe(201);
  const key = await call("POST", "/v1/keys", { body: { name: "globex-admin", roles: ["admin"], workspace: "globex" } });
  globex = { authorization: `Bearer ${key.body.key}` };
});
afterAll(async () => {
  await stack?.close();
});

describe("memory over HTTP", () => {
  it("remembers a fact as the caller (source: a person) and reads it back with its view", async () => {
    const created = await remember({
      text: "Maria prefers delivery by DHL, never on Saturdays.",
      scope: "team:logistics",
      subject: "customer:1042",
      tags: ["delivery", "preference"],
      classification: "confidential",
    });
    expect(created).toMatchObject({
      scope: "team/logistics", // normalised
      kind: "fact",
      subject: "customer:1042",
      key: null,
      text: "Maria prefers delivery by DHL, never on Saturdays.",
      tags: ["delivery", "preference"],
      classification: "confidential",
      source: { kind: "person" },
      author: adminId,
      version: 1,
      expires_at: null,
      superseded: null,
    });
    expect(created.id).toMatch(/^mem_/);
    expect(Date.parse(created.created_at)).toBe(Date.parse(created.updated_at));

    const read = await call("GET", `/v1/memory/${created.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: created.id, source: { kind: "person" }, author: adminId, history: [] });
  });

  it("a fact with the same subject and key supersedes the current one; the item shows who replaced what, when", async () => {
    const first = await remember({
      text: "Preferred carrier: UPS",
      scope: "agent/shipments",
      subject: "customer:2001",
      key: "preferred_carrier",
    });
    const second = await remember(
      { text: "Preferred carrier: DHL", scope: "agent/shipments", subject: "customer:2001", key: "preferred_carrier" },
      as.operator,
    );
    expect(second.id).toBe(first.id);
    expect(second.version).toBe(2);
    expect(second.superseded).toMatchObject({ version: 1, text: "Preferred carrier: UPS", author: adminId });
    const operatorId = second.author as string;
    expect(operatorId).toMatch(/^key:/);
    expect(operatorId).not.toBe(adminId);

    // The same key in another scope, or for another subject, is another fact.
    const elsewhere = await remember({
      text: "Preferred carrier: GLS",
      scope: "agent/inventory",
      subject: "customer:2001",
      key: "preferred_carrier",
    });
    expect(elsewhere.id).not.toBe(first.id);
    expect(elsewhere.superseded).toBeNull();

    const edited = await call("PATCH", `/v1/memory/${first.id}`, {
      body: { tags: ["carrier"], classification: "internal" },
      headers: as.builder,
    });
    expect(edited.status, edited.text).toBe(200);
    expect(edited.body).toMatchObject({
      id: first.id,
      version: 3,
      text: "Preferred carrier: DHL",
      tags: ["carrier"],
      source: { kind: "person" },
    });

    const shown = (await call("GET", `/v1/memory/${first.id}`)).body;
    expect(shown.version).toBe(3);
    expect(shown.history.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    expect(shown.history[0]).toMatchObject({ text: "Preferred carrier: DHL", author: operatorId, superseded_by: edited.body.author });
    expect(shown.history[1]).toMatchObject({ text: "Preferred carrier: UPS", author: adminId, superseded_by: operatorId });
    for (const v of shown.history) {
      expect(Date.parse(v.superseded_at)).toBeGreaterThanOrEqual(Date.parse(v.written_at));
    }
  });

  it("edits text and expiry; expires_at null clears it", async () => {
    const item = await remember({ text: "Warehouse B closes early in December", scope: "workspace", expires_at: "2099-01-01T00:00:00Z" });
    expect(item.expires_at).toBe("2099-01-01T00:00:00.000Z");
    const edited = await call("PATCH", `/v1/memory/${item.id}`, {
      body: { text: "Warehouse B closes at 3 pm in December", expires_at: null },
    });
    expect(edited.status, edited.text).toBe(200);
    expect(edited.body).toMatchObject({ text: "Warehouse B closes at 3 pm in December", expires_at: null, version: 2 });
  });

  it("lists newest first, a page at a time, and filters by scope, subject, tag and kind", async () => {
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      ids.push((await remember({ text: `Paging fact number ${i}`, scope: "session/ses_paging", tags: i % 2 ? ["odd_one"] : ["even"] })).id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await call("GET", `/v1/memory?scope=session/ses_paging&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status, res.text).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((i: { id: string }) => i.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual([...ids].reverse());
    expect(pages).toBe(3);

    const odd = (await call("GET", "/v1/memory?scope=session/ses_paging&tag=odd_one")).body.items.map((i: { id: string }) => i.id);
    expect(odd).toEqual([ids[4], ids[2], ids[0]]);
    const about = (await call("GET", "/v1/memory?subject=customer:2001")).body.items;
    expect(about.length).toBe(2);
    expect(about.every((i: { subject: string }) => i.subject === "customer:2001")).toBe(true);
    expect((await call("GET", "/v1/memory?kind=knowledge")).body.items).toEqual([]);
    const all = (await call("GET", "/v1/memory", { headers: as.auditor })).body;
    expect(all.items.length).toBeGreaterThanOrEqual(9);
  });

  it("searches every scope that holds memory by default, or the scopes named (repeated or a comma list)", async () => {
    const hit = await call("GET", `/v1/memory/search?q=${encodeURIComponent("which carrier does the customer prefer")}`);
    expect(hit.status, hit.text).toBe(200);
    expect(hit.body.scopes).toEqual(expect.arrayContaining(["agent/shipments", "agent/inventory", "team/logistics", "workspace"]));
    const texts = hit.body.items.map((h: { text: string }) => h.text);
    expect(texts).toContain("Preferred carrier: DHL");
    expect(hit.body.items[0]).toMatchObject({ id: expect.stringMatching(/^mem_/), source: expect.any(Object) });
    expect(typeof hit.body.items[0].score).toBe("number");

    const one = (await call("GET", "/v1/memory/search?q=preferred+carrier&scope=agent/inventory")).body;
    expect(one.scopes).toEqual(["agent/inventory"]);
    expect(one.items.map((h: { text: string }) => h.text)).toEqual(["Preferred carrier: GLS"]);

    const both = (await call("GET", "/v1/memory/search?q=preferred+carrier&scope=agent/inventory,agent:shipments&mode=fts")).body;
    expect(both.scopes).toEqual(["agent/inventory", "agent/shipments"]);
    expect(both.items.map((h: { text: string }) => h.text).sort()).toEqual(["Preferred carrier: DHL", "Preferred carrier: GLS"]);
    const repeated = (await call("GET", "/v1/memory/search?q=preferred+carrier&scope=agent/inventory&scope=agent/shipments&mode=fts")).body;
    expect(repeated.items.length).toBe(2);

    const bySubject = (await call("GET", "/v1/memory/search?q=delivery&subject=customer:1042&tag=preference", { headers: as.auditor }))
      .body;
    expect(bySubject.items.map((h: { subject: string }) => h.subject)).toEqual(["customer:1042"]);
  });

  it("answers a client's mistakes with a 4xx that says what and how to fix it", async () => {
    const cases: [string, string, unknown, number, RegExp, RegExp][] = [
      ["POST", "/v1/memory", { text: "x" }, 400, /body\.scope: required/, /send \{"text": .*"scope"/],
      ["POST", "/v1/memory", { text: "x", scope: "teams/finance" }, 400, /"teams\/finance" is not a memory scope/, /team\/<team>/],
      ["POST", "/v1/memory", { text: "x", scope: "team/" }, 400, /needs the team it belongs to/, /e\.g\. team\/finance/],
      ["POST", "/v1/memory", { text: "x", scope: "workspace", subject: "customer 1042" }, 400, /is not a subject/, /customer:1042/],
      ["POST", "/v1/memory", { text: "   ", scope: "workspace" }, 400, /needs text/, /text/],
      [
        "POST",
        "/v1/memory",
        { text: "x", scope: "workspace", classification: "secret" },
        400,
        /body\.classification: must be one of/,
        /send/,
      ],
      ["POST", "/v1/memory", { text: "x", scope: "workspace", colour: "red" }, 400, /body\.colour: unknown field/, /send/],
      ["POST", "/v1/memory", { text: "x", scope: "workspace", tags: ["no spaces"] }, 400, /is not a tag/, /letters, digits/],
      ["POST", "/v1/memory", { text: "x", scope: "workspace", expires_at: "2001-01-01T00:00:00Z" }, 400, /not in the future/, /later time/],
      ["POST", "/v1/memory", { text: "a\u0000b", scope: "workspace" }, 400, /NUL/, /remove it/],
      ["POST", "/v1/memory", { text: "x".repeat(16_001), scope: "workspace" }, 413, /limited to 16000 characters/, /the fact itself/],
      ["PATCH", "/v1/memory/mem_nope", {}, 400, /needs something to change/, /text, tags, classification, expires_at/],
      ["PATCH", "/v1/memory/mem_nope", { text: "y" }, 404, /memory item "mem_nope" does not exist in workspace acme/, /outpost memory ls/],
      ["GET", "/v1/memory/mem_nope", undefined, 404, /does not exist/, /GET \/v1\/memory/],
      ["DELETE", "/v1/memory/mem_nope", undefined, 404, /does not exist/, /outpost memory ls/],
      ["GET", "/v1/memory?limit=0", undefined, 400, /query\.limit/, /query parameters/],
      ["GET", "/v1/memory?cursor=mem_gone", undefined, 400, /cursor "mem_gone" is not an item/, /next_cursor/],
      ["GET", "/v1/memory?scope=nowhere", undefined, 400, /not a memory scope/, /team\/finance/],
      ["GET", "/v1/memory/search", undefined, 400, /query\.q: required/, /query parameters/],
      ["GET", "/v1/memory/search?q=x&mode=psychic", undefined, 400, /query\.mode: must be one of/, /query parameters/],
      ["POST", "/v1/memory/erase", {}, 400, /body\.subject: required/, /customer:1042/],
      ["POST", "/v1/memory/erase", { subject: "everyone!" }, 400, /is not a subject/, /type:id/],
    ];
    for (const [method, path, body, status, message, hint] of cases) {
      const res = await call(method, path, body !== undefined ? { body } : {});
      const what = `${method} ${path} ${JSON.stringify(body)?.slice(0, 80)}: ${res.text.slice(0, 300)}`;
      expect(res.status, what).toBe(status);
      expect(res.body.error.message, what).toMatch(message);
      expect(res.body.error.hint, what).toMatch(hint);
      expect(res.text, what).not.toMatch(/\n\s+at /);
    }
  });

  it("forgets an item and its history (204), recorded in the audit log", async () => {
    const item = await remember({ text: "Temporary note", scope: "workspace", subject: "order:7", key: "note" });
    await remember({ text: "Temporary note, revised", scope: "workspace", subject: "order:7", key: "note" });
    const gone = await call("DELETE", `/v1/memory/${item.id}`, { headers: as.operator });
    expect(gone.status, gone.text).toBe(204);
    expect(gone.text).toBe("");
    expect((await call("GET", `/v1/memory/${item.id}`)).status).toBe(404);
    expect((await call("DELETE", `/v1/memory/${item.id}`)).status).toBe(404);
    // A new fact with that subject and key starts again at version 1.
    expect((await remember({ text: "A new note", scope: "workspace", subject: "order:7", key: "note" })).version).toBe(1);

    expect((await call("GET", "/v1/audit/verify")).body.ok).toBe(true); // chains what is pending
    const entries = (await call("GET", "/v1/audit?kind=memory.forgotten")).body.items;
    expect(entries.find((e: { data: { id: string } }) => e.data.id === item.id)).toMatchObject({
      data: { id: item.id, scope: "workspace", subject: "order:7" },
    });
  });

  it("lets builders and operators write, auditors read, and nobody but admins erase; viewers see no memory", async () => {
    const item = await remember({ text: "Role check", scope: "workspace" }, as.builder);
    const status = async (who: { authorization: string }, method: string, path: string, body?: unknown) =>
      (await call(method, path, { headers: who, ...(body !== undefined ? { body } : {}) })).status;

    for (const path of ["/v1/memory", "/v1/memory/search?q=role", `/v1/memory/${item.id}`]) {
      for (const who of [as.builder, as.operator, as.auditor]) expect(await status(who, "GET", path), path).toBe(200);
      const refused = await call("GET", path, { headers: as.viewer });
      expect(refused.status).toBe(403);
      expect(refused.body.error.message).toMatch(/needs the role builder or operator or auditor; viewer-1 has viewer/);
      expect(refused.body.error.hint).toMatch(/outpost keys create/);
    }
    const write = await call("POST", "/v1/memory", { headers: as.auditor, body: { text: "x", scope: "workspace" } });
    expect(write.status).toBe(403);
    expect(write.body.error.message).toMatch(/needs the role builder or operator; auditor-1 has auditor/);
    expect(await status(as.viewer, "PATCH", `/v1/memory/${item.id}`, { text: "y" })).toBe(403);
    expect(await status(as.auditor, "DELETE", `/v1/memory/${item.id}`)).toBe(403);
    for (const who of [as.builder, as.operator, as.auditor, as.viewer]) {
      const erase = await call("POST", "/v1/memory/erase", { headers: who, body: { subject: "customer:1042" } });
      expect(erase.status).toBe(403);
      expect(erase.body.error.message).toMatch(/needs the role admin/);
    }
    expect((await call("GET", `/v1/memory/${item.id}`)).body.version).toBe(1); // nothing refused was done
    expect((await call("GET", "/v1/memory/search?q=delivery&subject=customer:1042")).body.items.length).toBe(1);
  });

  it("keeps each workspace's memory to itself: another workspace's item is not found", async () => {
    const acme = await remember({ text: "Acme's secret supplier is Initech", scope: "team/purchasing", subject: "supplier:9", key: "who" });
    const mine = await call("POST", "/v1/memory", {
      headers: globex,
      body: { text: "Globex's own supplier note", scope: "team/purchasing", subject: "supplier:9", key: "who" },
    });
    expect(mine.status, mine.text).toBe(201);
    expect(mine.body.id).not.toBe(acme.id);
    expect(mine.body.superseded).toBeNull();

    for (const [method, body] of [["GET"], ["PATCH", { text: "mine now" }], ["DELETE"]] as const) {
      const res = await call(method, `/v1/memory/${acme.id}`, { headers: globex, ...(body ? { body } : {}) });
      expect(res.status, `${method}: ${res.text}`).toBe(404);
      expect(res.body.error.message).toMatch(/does not exist in workspace globex/);
    }
    const listed = (await call("GET", "/v1/memory", { headers: globex })).body;
    expect(listed.items.map((i: { id: string }) => i.id)).toEqual([mine.body.id]);
    const searched = (await call("GET", "/v1/memory/search?q=secret+supplier+Initech", { headers: globex })).body;
    expect(searched.scopes).toEqual(["team/purchasing"]);
    expect(JSON.stringify(searched)).not.toContain("Initech");
    const cursor = await call("GET", `/v1/memory?cursor=${acme.id}`, { headers: globex });
    expect(cursor.status).toBe(400);
    const erased = (await call("POST", "/v1/memory/erase", { headers: globex, body: { subject: "supplier:9" } })).body;
    expect(erased).toMatchObject({ items: 1, ids: [mine.body.id] });

    const still = (await call("GET", `/v1/memory/${acme.id}`)).body;
    expect(still).toMatchObject({ text: "Acme's secret supplier is Initech", version: 1 });
  });

  it("erases everything about a subject: items, knowledge chunks, versions, cached context; reports it and audits it", async () => {
    const subject = "customer:3003";
    const fact = await remember({
      text: "Ana's parcel goes to the neighbour at no. 12",
      scope: "team/logistics",
      subject,
      key: "drop_off",
    });
    await remember({ text: "Ana's parcel goes to the post office", scope: "team/logistics", subject, key: "drop_off" });
    const other = await remember({ text: "Ana asked about a refund", scope: "agent/refunds", subject });
    const untouched = await remember({ text: "Another customer's note", scope: "team/logistics", subject: "customer:3004" });
    const chunk = await stack.outpost.memory.remember({
      workspace: "acme",
      scope: "workspace",
      kind: "knowledge",
      subject,
      text: "Contract of customer 3003: monthly invoicing",
      source: { kind: "knowledge", file: "knowledge/contracts.md", chunk: 0 },
      author: "local",
    });
    // A cached business entity of the subject, as the context cache writes it.
    await stack.outpost.store.domain.write((trx) =>
      trx
        .insertInto("context_entities")
        .values({
          workspace: "acme",
          type: "customer",
          entity_id: "3003",
          subject,
          data: JSON.stringify({ name: "Ana" }),
          classification: "restricted",
          source: JSON.stringify({ tool: "helpdesk.get_customer" }),
          fetched_at: Date.now(),
        })
        .execute(),
    );

    const res = await call("POST", "/v1/memory/erase", { body: { subject } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({
      subject,
      items: 2,
      knowledge_chunks: 1,
      versions: 1,
      context_entities: 1,
      ids: expect.arrayContaining([fact.id, other.id, chunk.item.id]),
    });
    expect(res.body.ids.length).toBe(3);
    for (const id of [fact.id, other.id, chunk.item.id]) expect((await call("GET", `/v1/memory/${id}`)).status).toBe(404);
    expect((await call("GET", `/v1/memory?subject=${subject}`)).body.items).toEqual([]);
    expect((await call("GET", `/v1/memory/search?q=Ana+parcel&subject=${subject}`)).body.items).toEqual([]);
    expect((await call("GET", `/v1/memory/${untouched.id}`)).status).toBe(200);

    expect((await call("GET", "/v1/audit/verify", { headers: as.auditor })).body.ok).toBe(true);
    const audit = await call("GET", "/v1/audit?kind=memory.erased", { headers: as.auditor });
    expect(audit.status).toBe(200);
    const entry = audit.body.items.find((e: { data: { subject: string } }) => e.data.subject === subject);
    expect(entry).toMatchObject({
      kind: "memory.erased",
      actor: adminId,
      data: { subject, items: 2, knowledge_chunks: 1, versions: 1, context_entities: 1 },
    });
    expect(entry.data.ids.sort()).toEqual([...res.body.ids].sort());

    // Erasing again finds nothing, and says so.
    expect((await call("POST", "/v1/memory/erase", { body: { subject } })).body).toMatchObject({ items: 0, versions: 0, ids: [] });
  });

  it("keeps documents as knowledge: ingest reports what changed, lists, searches, removes; roles and workspaces hold", async () => {
    const doc = {
      name: "returns.md",
      scope: "team:support",
      text: "# Returns\n\nWithin 30 days of delivery.\n\n## Damaged items\n\nA photo is enough; keep the item.\n",
      tags: ["policy"],
    };
    const first = await call("POST", "/v1/knowledge", { headers: as.builder, body: doc });
    expect(first.status, first.text).toBe(201);
    expect(first.body).toEqual({ name: "returns.md", scope: "team/support", chunks: 2, added: 2, updated: 0, unchanged: 0, removed: 0 });
    const same = await call("POST", "/v1/knowledge", { headers: as.operator, body: doc });
    expect(same.body).toMatchObject({ added: 0, updated: 0, unchanged: 2, removed: 0 });
    const shorter = await call("POST", "/v1/knowledge", { body: { ...doc, text: "# Returns\n\nWithin 14 days of delivery.\n" } });
    expect(shorter.body).toMatchObject({ chunks: 1, added: 0, updated: 1, unchanged: 0, removed: 1 });

    const listed = await call("GET", "/v1/knowledge?scope=team/support", { headers: as.auditor });
    expect(listed.status, listed.text).toBe(200);
    expect(listed.body.documents).toEqual([
      {
        name: "returns.md",
        scope: "team/support",
        chunks: 1,
        classification: "internal",
        subject: null,
        tags: ["policy"],
        updated_at: expect.any(String),
      },
    ]);
    const hits = (await call("GET", "/v1/memory/search?q=returns+within+days&scope=team/support")).body.items;
    expect(hits[0]).toMatchObject({
      kind: "knowledge",
      text: "Returns\nWithin 14 days of delivery.",
      version: 2,
      source: { kind: "knowledge", file: "returns.md", chunk: 0, heading: "Returns" },
      author: adminId,
    });

    // Another workspace sees none of it, and cannot remove it.
    expect((await call("GET", "/v1/knowledge", { headers: globex })).body.documents).toEqual([]);
    const theirs = await call("DELETE", "/v1/knowledge?scope=team/support&name=returns.md", { headers: globex });
    expect(theirs.status).toBe(404);
    expect(theirs.body.error.message).toMatch(/no knowledge document "returns.md" in scope team\/support of workspace globex/);

    expect((await call("POST", "/v1/knowledge", { headers: as.auditor, body: doc })).status).toBe(403);
    expect((await call("GET", "/v1/knowledge", { headers: as.viewer })).status).toBe(403);
    expect((await call("DELETE", "/v1/knowledge?scope=team/support&name=returns.md", { headers: as.auditor })).status).toBe(403);

    const removed = await call("DELETE", "/v1/knowledge?scope=team/support&name=returns.md", { headers: as.builder });
    expect(removed.status, removed.text).toBe(200);
    expect(removed.body).toEqual({ name: "returns.md", scope: "team/support", chunks: 1 });
    expect((await call("GET", "/v1/knowledge?scope=team/support")).body.documents).toEqual([]);
    const audit = (await call("GET", "/v1/audit?kind=knowledge.ingested", { headers: as.auditor })).body.items;
    // Three ingests, one of which changed nothing and is not recorded.
    expect(audit.filter((e: { data: { name: string } }) => e.data.name === "returns.md")).toHaveLength(2);
  });

  it("answers a mistaken knowledge request with a 4xx that says what and how to fix it, keeping what was there", async () => {
    const bad = async (method: string, path: string, body?: unknown) => {
      const res = await call(method, path, body !== undefined ? { body } : {});
      expect(res.status, res.text).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.body.error.hint, res.text).toBeTruthy();
      return res;
    };
    const scope = await bad("POST", "/v1/knowledge", { name: "a.md", scope: "teams/x", text: "Hello" });
    expect(scope.body.error.message).toMatch(/"teams\/x" is not a memory scope/);
    const blank = await bad("POST", "/v1/knowledge", { name: "a.md", scope: "workspace", text: "   \n\n  " });
    expect(blank.body.error.message).toMatch(/a\.md: the document has no text/);
    const format = await bad("POST", "/v1/knowledge", { name: "a.md", scope: "workspace", text: "x", format: "pdf" });
    expect(format.status).toBe(400);
    const missing = await bad("DELETE", "/v1/knowledge?scope=workspace");
    expect(missing.status).toBe(400);
    const huge = await bad("POST", "/v1/knowledge", { name: "big.txt", scope: "workspace", text: "word ".repeat(400_001) });
    expect(huge.status).toBe(413);
    expect(huge.body.error.message).toMatch(/big\.txt: a document is limited to 2000000 characters \(got 2000005\)/);
    expect((await call("GET", "/v1/knowledge?scope=workspace")).body.documents).toEqual([]);
  });

  it("shows people the business entities agents looked up: newest first, one by type and id, readers only, this workspace only", async () => {
    const fetchedAt = Date.now() - 90_000;
    for (const [id, at] of [
      ["C-7", fetchedAt],
      ["C-8", fetchedAt + 1_000],
    ] as const) {
      await stack.outpost.context.cache.put("acme", {
        type: "customer",
        id,
        subject: `customer:${id}`,
        data: { name: `Customer ${id}`, tier: "gold" },
        classification: "restricted",
        source: { tool: "helpdesk.get_customer", run_id: "run_ctx1", agent: "support" },
        fetchedAt: at,
      });
    }
    const list = await call("GET", "/v1/context?type=customer", { headers: as.auditor });
    expect(list.status, list.text).toBe(200);
    expect(list.body.entities.map((e: { id: string }) => e.id)).toEqual(["C-8", "C-7"]);
    const one = await call("GET", "/v1/context/customer/C-7", { headers: as.operator });
    expect(one.status, one.text).toBe(200);
    expect(one.body).toEqual({
      type: "customer",
      id: "C-7",
      subject: "customer:C-7",
      data: { name: "Customer C-7", tier: "gold" },
      classification: "restricted",
      source: {
        tool: "helpdesk.get_customer",
        fetched_at: new Date(fetchedAt).toISOString(),
        age_seconds: expect.any(Number),
        fetched_by: "agent:support (run run_ctx1)",
        run_id: "run_ctx1",
      },
      // The shop project declares no entity types: nothing says how long this copy is served.
      fresh_until: null,
      expired: true,
    });
    expect(one.body.source.age_seconds).toBeGreaterThanOrEqual(90);

    const missing = await call("GET", "/v1/context/customer/C-9");
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toBe("no agent of workspace acme has looked up customer C-9 (or it was erased)");
    expect(missing.body.error.hint).toMatch(/outpost context ls/);
    expect((await call("GET", "/v1/context?limit=0")).status).toBe(400);
    // Cached entities hold customers' data: viewers see none, nor does another workspace.
    expect((await call("GET", "/v1/context", { headers: as.viewer })).status).toBe(403);
    expect((await call("GET", "/v1/context/customer/C-7", { headers: as.viewer })).status).toBe(403);
    expect((await call("GET", "/v1/context", { headers: globex })).body).toEqual({ entities: [] });
    expect((await call("GET", "/v1/context/customer/C-7", { headers: globex })).status).toBe(404);
    // Erasing the subject removes what agents were served.
    expect((await call("POST", "/v1/memory/erase", { body: { subject: "customer:C-7" } })).body.context_entities).toBe(1);
    expect((await call("GET", "/v1/context")).body.entities.map((e: { id: string }) => e.id)).not.toContain("C-7");
  });

  it("documents every memory route in the OpenAPI document", async () => {
    const doc = (await call("GET", "/openapi.json")).body;
    expect(Object.keys(doc.paths["/v1/memory"]).sort()).toEqual(["get", "post"]);
    expect(Object.keys(doc.paths["/v1/memory/{id}"]).sort()).toEqual(["delete", "get", "patch"]);
    expect(doc.paths["/v1/memory/search"].get.tags).toEqual(["memory"]);
    expect(doc.paths["/v1/memory/erase"].post.tags).toEqual(["memory"]);
    expect(Object.keys(doc.paths["/v1/knowledge"]).sort()).toEqual(["delete", "get", "post"]);
    expect(doc.paths["/v1/context"].get.tags).toEqual(["memory"]);
    expect(doc.paths["/v1/context/{type}/{id}"].get.responses["200"].content["application/json"].schema.required).toContain("fresh_until");
  });
});
