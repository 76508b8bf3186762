/**
 * The memory store's contract, run on SQLite (test/memory/store.test.ts) and PostgreSQL (test/pg/memory.test.ts):
 * scopes, supersede and version history, read-your-writes, idempotent writes, isolation between scopes and
 * workspaces, classification and expiry filters, edits, forgetting, and erasure of a subject.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OutpostError } from "../../src/core/errors.js";
import { hashedEmbedder, MemoryStore, type MemoryStoreOptions } from "../../src/memory/index.js";
import type { Store } from "../../src/store/index.js";

const person = { kind: "person" as const };

/** `recall`: e.g. `{ threshold: 0 }`, so every vector search goes through the HNSW indexes (ann.ts). */
export function describeMemoryStore(name: string, open: () => Promise<Store>, recall?: MemoryStoreOptions["recall"]): void {
  describe(`memory store (${name})`, () => {
    let store: Store;
    let memory: MemoryStore;
    let n = 0;
    /** A fresh workspace per test: tests share the database. */
    const ws = () => `ws${++n}_${randomBytes(3).toString("hex")}`;
    beforeAll(async () => {
      store = await open();
      memory = new MemoryStore(store.domain, { embedder: hashedEmbedder(), recall });
    });
    afterAll(async () => {
      await store?.close();
    });

    const remember = (workspace: string, text: string, extra: Partial<Parameters<MemoryStore["remember"]>[0]> = {}) =>
      memory.remember({ workspace, scope: "team/finance", text, source: person, author: "key:k1", ...extra });

    it("finds what was just remembered, by words and by meaning (read-your-writes)", async () => {
      const w = ws();
      await remember(w, "Customer 1042 prefers refunds to store credit.", { subject: "customer:1042" });
      await remember(w, "The warehouse in Leeds closes at 18:00 on Fridays.");
      for (const mode of ["fts", "vector", "hybrid"] as const) {
        const hits = await memory.recall({
          workspace: w,
          text: "does 1042 want a refund or credit?",
          scopes: ["team/finance"],
          limit: 5,
          mode,
        });
        expect(hits[0]?.item.subject, mode).toBe("customer:1042");
      }
    });

    it("supersedes a fact with the same scope, subject and key, and keeps its history", async () => {
      const w = ws();
      const first = await remember(w, "Preferred carrier is DHL.", { subject: "customer:7", key: "preferred_carrier" });
      const second = await remember(w, "Preferred carrier is UPS.", {
        subject: "customer:7",
        key: "preferred_carrier",
        author: "agent:support",
      });
      expect(second.item.id).toBe(first.item.id);
      expect(second.item.version).toBe(2);
      expect(second.superseded).toMatchObject({ version: 1, text: "Preferred carrier is DHL.", supersededBy: "agent:support" });
      const history = await memory.history(w, first.item.id);
      expect(history.map((v) => [v.version, v.text])).toEqual([[1, "Preferred carrier is DHL."]]);
      const hits = await memory.recall({ workspace: w, text: "preferred carrier", scopes: ["team/finance"], limit: 5 });
      expect(hits.map((h) => h.item.text)).toEqual(["Preferred carrier is UPS."]);
      // Another subject, or another scope, with the same key is another fact.
      await remember(w, "Preferred carrier is FedEx.", { subject: "customer:8", key: "preferred_carrier" });
      await remember(w, "Preferred carrier is GLS.", { subject: "customer:7", key: "preferred_carrier", scope: "agent/support" });
      expect(await memory.list({ workspace: w, limit: 10 })).toHaveLength(3);
      // A person's writes are audited with them, each version.
      const written = (await outbox(w, "memory.written")).map((r) => JSON.parse(r.data).version).sort();
      expect(written).toEqual([1, 1, 1, 2]);
    });

    it("writes once per write key: a retried tool call finds its write done", async () => {
      const w = ws();
      const a = await remember(w, "Order 5 was reshipped.", { writeKey: "run_1.3.call_1" });
      const again = await remember(w, "Order 5 was reshipped.", { writeKey: "run_1.3.call_1" });
      expect(again).toMatchObject({ applied: false, item: { id: a.item.id, version: 1 } });
      // Also when the write superseded something and was superseded since.
      await remember(w, "v1", { key: "k", writeKey: "key-a" });
      await remember(w, "v2", { key: "k", writeKey: "key-b" });
      const retried = await remember(w, "v1", { key: "k", writeKey: "key-a" });
      expect(retried.applied).toBe(false);
      expect(retried.item.text).toBe("v2");
      expect(await memory.list({ workspace: w, limit: 10 })).toHaveLength(2);
    });

    it("concurrent writers of one key end with one item and every version in its history", async () => {
      const w = ws();
      await Promise.all(
        [1, 2, 3, 4, 5].map((i) => remember(w, `Credit limit is ${i}000.`, { subject: "customer:9", key: "credit_limit" })),
      );
      const items = await memory.list({ workspace: w, limit: 10 });
      expect(items).toHaveLength(1);
      expect(items[0].version).toBe(5);
      expect(await memory.history(w, items[0].id)).toHaveLength(4);
    });

    it("recalls only from the scopes asked for, and never from another workspace", async () => {
      const w = ws();
      const other = ws();
      await remember(w, "Finance closes the books on the 3rd working day.", { scope: "team/finance" });
      await remember(w, "Logistics closes the books never.", { scope: "team/logistics" });
      await remember(other, "Finance closes the books on the 5th working day.", { scope: "team/finance" });
      const hits = await memory.recall({ workspace: w, text: "when are the books closed", scopes: ["team/finance"], limit: 10 });
      expect(hits.map((h) => h.item.text)).toEqual(["Finance closes the books on the 3rd working day."]);
      expect(await memory.recall({ workspace: w, text: "books closed", scopes: [], limit: 10 })).toEqual([]);
      expect(await memory.get(other, hits[0].item.id)).toBeNull();
    });

    it("filters by subject, tags, kind, classification and expiry", async () => {
      const w = ws();
      await remember(w, "Invoice dispute about shipping fee.", { subject: "customer:1", tags: ["dispute"] });
      await remember(w, "Invoice dispute about VAT.", { subject: "customer:2", classification: "restricted" });
      await remember(w, "Invoice dispute policy: answer within 2 days.", { kind: "knowledge", tags: ["policy"] });
      await remember(w, "Invoice dispute about a lost parcel.", { expiresAt: Date.now() - 1 });
      const q = (extra: object) =>
        memory
          .recall({ workspace: w, text: "invoice dispute", scopes: ["team/finance"], limit: 10, ...extra })
          .then((h) => h.map((x) => x.item.text).sort());
      expect(await q({ subject: "customer:1" })).toEqual(["Invoice dispute about shipping fee."]);
      expect(await q({ tags: ["policy"] })).toEqual(["Invoice dispute policy: answer within 2 days."]);
      expect(await q({ kinds: ["knowledge"] })).toEqual(["Invoice dispute policy: answer within 2 days."]);
      expect(await q({ maxClassification: "confidential" })).not.toContain("Invoice dispute about VAT.");
      expect(await q({})).toContain("Invoice dispute about VAT.");
      expect(await q({})).not.toContain("Invoice dispute about a lost parcel.");
      // Retention removes what expired, and records it.
      expect(await memory.expire()).toBeGreaterThanOrEqual(1);
      expect((await memory.list({ workspace: w, limit: 10 })).map((i) => i.text)).not.toContain("Invoice dispute about a lost parcel.");
      expect(await outbox(w, "memory.expired")).toHaveLength(1);
    });

    it("a person's edit is a new version, audited; forgetting removes item and history", async () => {
      const w = ws();
      const { item } = await remember(w, "Customer 3 is on the gold tier.", { subject: "customer:3", key: "tier" });
      const edited = await memory.update(w, item.id, { text: "Customer 3 is on the silver tier.", tags: ["tier"] }, "key:editor");
      expect(edited).toMatchObject({ version: 2, author: "key:editor", tags: ["tier"], source: { kind: "person" } });
      expect((await memory.history(w, item.id))[0]).toMatchObject({ version: 1, text: "Customer 3 is on the gold tier." });
      expect(await outbox(w, "memory.edited")).toHaveLength(1);
      const found = await memory.recall({ workspace: w, text: "silver tier", scopes: ["team/finance"], limit: 5, mode: "fts" });
      expect(found.map((h) => h.item.id)).toEqual([item.id]);
      expect(await memory.forget(w, item.id, "key:editor")).toBe(true);
      expect(await memory.forget(w, item.id, "key:editor")).toBe(false);
      expect(await memory.get(w, item.id)).toBeNull();
      expect(await memory.history(w, item.id)).toEqual([]);
      expect(await memory.recall({ workspace: w, text: "silver tier", scopes: ["team/finance"], limit: 5 })).toEqual([]);
      expect(await outbox(w, "memory.forgotten")).toHaveLength(1);
    });

    it("erases everything about a subject — facts, knowledge, versions, cached context — and reports it", async () => {
      const w = ws();
      const other = ws();
      await remember(w, "Maria Lopez's monitor arrived cracked.", { subject: "customer:1042", key: "last_issue" });
      await remember(w, "Maria Lopez's replacement shipped.", { subject: "customer:1042", key: "last_issue" });
      await remember(w, "Letter from Maria Lopez about her refund.", { subject: "customer:1042", kind: "knowledge" });
      await remember(w, "Customer 1043 likes email.", { subject: "customer:1043" });
      await remember(other, "Someone else's customer 1042.", { subject: "customer:1042" });
      await store.domain.write((trx) =>
        trx
          .insertInto("context_entities")
          .values({
            workspace: w,
            type: "customer",
            entity_id: "1042",
            subject: "customer:1042",
            data: "{}",
            classification: "restricted",
            source: "{}",
            fetched_at: Date.now(),
          })
          .execute(),
      );
      const report = await memory.eraseSubject(w, "customer:1042", "key:dpo");
      expect(report).toMatchObject({ subject: "customer:1042", items: 1, knowledgeChunks: 1, versions: 1, contextEntities: 1 });
      expect(report.ids).toHaveLength(2);
      expect(await memory.list({ workspace: w, subject: "customer:1042", limit: 10 })).toEqual([]);
      for (const mode of ["fts", "vector"] as const) {
        const hits = await memory.recall({ workspace: w, text: "Maria Lopez monitor", scopes: ["team/finance"], limit: 10, mode });
        expect(hits.map((h) => h.item.subject)).not.toContain("customer:1042");
      }
      const left = await store.domain.db.selectFrom("memory_versions").selectAll().where("workspace", "=", w).execute();
      expect(left).toEqual([]);
      expect(await memory.list({ workspace: w, limit: 10 })).toHaveLength(1);
      expect(await memory.list({ workspace: other, limit: 10 })).toHaveLength(1);
      const [entry] = await outbox(w, "memory.erased");
      expect(JSON.parse(entry.data)).toMatchObject({ subject: "customer:1042", items: 1, knowledge_chunks: 1, context_entities: 1 });
    });

    it("refuses bad input with what to fix, writing nothing", async () => {
      const w = ws();
      const bad = async (p: Promise<unknown>) => {
        const err = await p.then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(OutpostError);
        return err as OutpostError;
      };
      expect((await bad(remember(w, "   "))).message).toContain("needs text");
      expect((await bad(remember(w, "x", { subject: "customer 1042; drop table" }))).hint).toContain("customer:1042");
      expect((await bad(remember(w, "x", { tags: ["has space"] }))).message).toContain("is not a tag");
      expect((await bad(remember(w, "x", { scope: "team" }))).message).toContain("team");
      expect((await bad(remember(w, "x", { scope: "galaxy/far" }))).hint).toContain("team/finance");
      expect((await bad(remember(w, "y".repeat(20_000)))).code).toBe("payload_too_large");
      expect((await bad(memory.update(w, "mem_nope", { text: "z" }, "key:x"))).code).toBe("not_found");
      expect(await memory.list({ workspace: w, limit: 10 })).toEqual([]);
    });

    it("lists newest first, a page at a time", async () => {
      const w = ws();
      for (let i = 0; i < 5; i++) await remember(w, `Fact number ${i}.`);
      const first = await memory.list({ workspace: w, limit: 2 });
      const second = await memory.list({ workspace: w, limit: 2, before: first[1].id });
      const third = await memory.list({ workspace: w, limit: 2, before: second[1].id });
      expect([...first, ...second, ...third].map((i) => i.text)).toEqual([4, 3, 2, 1, 0].map((i) => `Fact number ${i}.`));
    });

    const policy = (refundDays: number) =>
      [
        "# Refund policy",
        "Acme refunds orders that arrive damaged or never arrive.",
        "## Damaged items",
        `Report damage within ${refundDays} days of delivery with a photo; the refund includes shipping.`,
        "## Goodwill",
        "Goodwill credits up to 20 USD need no approval.",
      ].join("\n\n");

    it("ingests a document as knowledge chunks with their headings, recalled like memory", async () => {
      const w = ws();
      const r = await memory.ingest({
        workspace: w,
        scope: "workspace",
        name: "refund-policy.md",
        text: policy(30),
        format: "markdown",
        author: "local",
      });
      expect(r).toEqual({ name: "refund-policy.md", scope: "workspace", chunks: 3, added: 3, updated: 0, unchanged: 0, removed: 0 });
      const hits = await memory.recall({ workspace: w, text: "how long to report a damaged parcel", scopes: ["workspace"], limit: 3 });
      expect(hits[0]?.item).toMatchObject({
        kind: "knowledge",
        key: "refund-policy.md#1",
        source: { kind: "knowledge", file: "refund-policy.md", chunk: 1, heading: "Refund policy › Damaged items" },
      });
      expect(hits[0]?.item.text).toMatch(/^Refund policy › Damaged items\nReport damage within 30 days/);
      const docs = await memory.documents(w);
      expect(docs).toMatchObject([{ name: "refund-policy.md", scope: "workspace", chunks: 3, classification: "internal" }]);
      expect(await outbox(w, "knowledge.ingested")).toHaveLength(1);
    });

    it("re-ingesting changes only what changed, keeps the old text in history, and drops chunks past the end", async () => {
      const w = ws();
      const ingest = (text: string) =>
        memory.ingest({ workspace: w, scope: "team/finance", name: "policy.md", text, format: "markdown", author: "local" });
      await ingest(policy(30));
      expect(await ingest(policy(30))).toMatchObject({ added: 0, updated: 0, unchanged: 3, removed: 0 });
      expect(await outbox(w, "knowledge.ingested")).toHaveLength(1);
      expect(await ingest(policy(14))).toMatchObject({ added: 0, updated: 1, unchanged: 2, removed: 0 });
      const [damaged] = (await memory.list({ workspace: w, kind: "knowledge", limit: 10 })).filter((i) => i.key === "policy.md#1");
      expect(damaged?.text).toContain("within 14 days");
      expect((await memory.history(w, damaged?.id as string)).map((v) => v.text.includes("within 30 days"))).toEqual([true]);
      expect(await ingest("# Refund policy\n\nOnly this now.")).toMatchObject({ chunks: 1, updated: 1, removed: 2 });
      const fts = await memory.recall({ workspace: w, text: "goodwill credits", scopes: ["team/finance"], limit: 5, mode: "fts" });
      expect(fts).toEqual([]);
      expect(await memory.removeDocument(w, "team/finance", "policy.md", "local")).toBe(1);
      expect(await memory.documents(w)).toEqual([]);
      expect(await outbox(w, "knowledge.removed")).toHaveLength(1);
    });

    it("keeps documents of the same name apart by scope and workspace, and refuses an empty one", async () => {
      const w = ws();
      const other = ws();
      const doc = (workspace: string, scope: string, text: string) =>
        memory.ingest({ workspace, scope, name: "terms.txt", text, format: "text", author: "local" });
      await doc(w, "team/logistics", "Carrier claims are filed within 9 days.");
      await doc(w, "team/finance", "Invoices are due in 30 days.");
      await doc(other, "team/logistics", "Carrier claims are filed within 60 days.");
      const hits = await memory.recall({ workspace: w, text: "carrier claims filed", scopes: ["team/logistics"], limit: 5 });
      expect(hits.map((h) => h.item.text)).toEqual(["Carrier claims are filed within 9 days."]);
      expect((await memory.documents(w)).map((d) => d.scope)).toEqual(["team/finance", "team/logistics"]);
      const err = await memory
        .ingest({ workspace: w, scope: "team/finance", name: "empty.md", text: " \n\n ", format: "markdown", author: "local" })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OutpostError);
      expect((err as OutpostError).message).toContain("empty.md: the document has no text");
      const bad = await memory
        .ingest({ workspace: w, scope: "team/finance", name: "a#b", text: "x", format: "text", author: "local" })
        .catch((e: unknown) => e);
      expect((bad as OutpostError).message).toContain("is not a document name");
    });

    it("keeps what is written while the embedder fails, finds it by full text, and embeds it once it answers", async () => {
      const w = ws();
      const inner = hashedEmbedder();
      let down = false;
      const failures: unknown[] = [];
      const flaky = new MemoryStore(store.domain, {
        embedder: {
          id: inner.id,
          dimensions: inner.dimensions,
          embed: (texts) => (down ? Promise.reject(new OutpostError("unavailable", "embedder down")) : inner.embed(texts)),
        },
        onEmbedFailure: (err) => failures.push(err),
        recall,
      });
      const vectorOf = async (id: string) =>
        store.domain.db
          .selectFrom("memory_vectors as v")
          .innerJoin("memory_items as i", "i.num", "v.num")
          .select("v.embedder")
          .where("i.id", "=", id)
          .executeTakeFirst();
      const ask = (text: string, mode: "fts" | "vector" | "hybrid") =>
        flaky.recall({ workspace: w, text, scopes: ["team/finance"], limit: 5, mode });
      const edited = await flaky.remember({
        workspace: w,
        scope: "team/finance",
        text: "Invoices go out on the 1st.",
        source: person,
        author: "local",
      });
      expect(await vectorOf(edited.item.id)).toBeDefined();

      down = true;
      const written = await flaky.remember({
        workspace: w,
        scope: "team/finance",
        text: "Refunds above 500 EUR need the controller.",
        source: person,
        author: "local",
      });
      await flaky.update(w, edited.item.id, { text: "Invoices go out on the 3rd working day." }, "local");
      expect(failures).toHaveLength(2);
      expect(await vectorOf(written.item.id)).toBeUndefined();
      // The old text's vector must not stand for the new text.
      expect(await vectorOf(edited.item.id)).toBeUndefined();
      expect((await ask("refunds controller", "hybrid")).map((h) => h.item.id)).toEqual([written.item.id]);
      await expect(ask("refunds controller", "vector")).rejects.toThrow("embedder down");
      await expect(flaky.embedMissing()).rejects.toThrow("embedder down");

      down = false;
      expect(await flaky.embedMissing()).toBeGreaterThanOrEqual(2);
      expect(await vectorOf(written.item.id)).toEqual({ embedder: inner.id });
      expect(await vectorOf(edited.item.id)).toEqual({ embedder: inner.id });
      expect((await ask("refunds above 500 EUR need the controller", "vector"))[0]?.item.id).toBe(written.item.id);
      expect((await ask("invoices 3rd working day", "vector"))[0]?.item.id).toBe(edited.item.id);
      // Nothing left to do until the embedder fails again.
      expect(await flaky.embedMissing()).toBe(0);
    });

    const outbox = (workspace: string, kind: string) =>
      store.domain.db
        .selectFrom("audit_outbox")
        .selectAll()
        .where("workspace", "=", workspace)
        .where("kind", "=", kind)
        .execute()
        .then(async (rows) =>
          rows.length > 0
            ? rows
            : store.domain.db
                .selectFrom("audit_log")
                .select(["data", "kind"])
                .where("workspace", "=", workspace)
                .where("kind", "=", kind)
                .execute(),
        );
  });
}
