/**
 * The memory store: items in scopes with their version history, over the same database as runs (both drivers,
 * through `DomainStorage`). An item, its full-text entry and its vector are written in one transaction, so what an
 * agent remembers is found by the very next recall (read-your-writes). A write carrying an idempotency key (a tool
 * call's) is done once: the same key again answers with the first write's result.
 */
import { type Kysely, type Selectable, sql, type Transaction } from "kysely";
import { OutpostError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import type { Classification } from "../definitions/types.js";
import { appendToOutbox } from "../security/audit/outbox.js";
import { classificationLevel } from "../security/types.js";
import type { Database, MemoryItemsTable, MemoryVersionsTable } from "../store/schema.js";
import type { DomainStorage } from "../store/types.js";
import type { Embedder } from "./embedding.js";
import { chunkDocument } from "./knowledge.js";
import { ftsBody, metaToken } from "./query.js";
import { type Recaller, type RecallOptions, sqlRecaller } from "./recall.js";
import { normalizeScope } from "./scopes.js";
import type {
  ErasureReport,
  IngestReport,
  KnowledgeDocument,
  KnowledgeDocumentInput,
  ListMemoryFilter,
  MemoryItem,
  MemoryPatch,
  MemorySource,
  MemoryVersion,
  RecallHit,
  RecallQuery,
  RememberInput,
  RememberResult,
} from "./types.js";
import { toBlob } from "./vector-index.js";

export const MAX_TEXT = 16_000;
const MAX_TAGS = 20;
const TAG = /^[\p{L}\p{N}_.:/-]{1,64}$/u;
const SUBJECT = /^[\p{L}\p{N}_.:@/-]{1,200}$/u;
export const CLASSIFICATIONS: readonly Classification[] = ["public", "internal", "confidential", "restricted"];

type ItemRow = Selectable<MemoryItemsTable>;

export interface MemoryStoreOptions {
  embedder: Embedder;
  /** Vector recall: the similarity floor and the in-process HNSW indexes (thresholds, catch-up, memory cap). */
  recall?: RecallOptions;
  /** Told when the embedder fails (a remote model down): the write goes on without a vector, recall by full text,
   * and `embedMissing` embeds the item later. Must not throw. */
  onEmbedFailure?: (err: unknown) => void;
}

/** Items embedded per batch by `embedMissing`. */
const EMBED_BATCH = 256;

export class MemoryStore {
  private readonly recaller: Recaller;
  /** Per workspace: true (it holds memory), or until when "none" stands. */
  private readonly holding = new Map<string, true | number>();

  /** Items may lack a vector of this embedder (true at start: it may be new, or an earlier process failed to embed). */
  private behind = true;
  private embedding: Promise<number> | null = null;

  constructor(
    private readonly storage: DomainStorage,
    private readonly options: MemoryStoreOptions,
  ) {
    this.recaller = sqlRecaller(storage, options.embedder, { ...options.recall, onEmbedFailure: (err) => this.embedFailed(err) });
  }

  private embedFailed(err: unknown): void {
    this.behind = true;
    this.options.onEmbedFailure?.(err);
  }

  /** One vector per text, or none at all when the embedder fails: the items are written for full text now and
   * embedded later (`embedMissing`), so a model that is down loses no memory. */
  private async vectorsOf(texts: string[]): Promise<(Float32Array | undefined)[]> {
    if (texts.length === 0) return [];
    try {
      return await this.options.embedder.embed(texts);
    } catch (err) {
      this.embedFailed(err);
      return texts.map(() => undefined);
    }
  }

  /**
   * Embeds the items that have no vector of the current embedder — written while it was down, or before it was
   * configured (a vector of another embedder is replaced) — a batch at a time, oldest first. Runs at most once at a
   * time, and only when this process has reason to think items are missing one. Returns how many it embedded; throws
   * (leaving the rest for the next call) when the embedder fails.
   */
  embedMissing(): Promise<number> {
    if (!this.behind) return Promise.resolve(0);
    this.embedding ??= this.embedPass().finally(() => {
      this.embedding = null;
    });
    return this.embedding;
  }

  private async embedPass(): Promise<number> {
    const embedder = this.options.embedder;
    this.behind = false; // a failure during the pass sets it again
    let after = 0;
    let done = 0;
    for (;;) {
      const rows = await this.storage.db
        .selectFrom("memory_items as i")
        .leftJoin("memory_vectors as v", "v.num", "i.num")
        .select(["i.num", "i.workspace", "i.text", "i.updated_at"])
        .where("i.num", ">", after)
        .where((eb) => eb.or([eb("v.num", "is", null), eb("v.embedder", "!=", embedder.id)]))
        .orderBy("i.num")
        .limit(EMBED_BATCH)
        .execute();
      if (rows.length === 0) return done;
      let vectors: Float32Array[];
      try {
        vectors = await embedder.embed(rows.map((r) => r.text));
      } catch (err) {
        this.embedFailed(err);
        throw err;
      }
      await this.storage.write(async (trx) => {
        // Only items still as they were read: one edited since has been written with its own vector.
        const current = await trx
          .selectFrom("memory_items")
          .select(["num", "updated_at"])
          .where(
            "num",
            "in",
            rows.map((r) => Number(r.num)),
          )
          .execute();
        const at = new Map(current.map((r) => [Number(r.num), Number(r.updated_at)]));
        for (const [i, r] of rows.entries()) {
          if (at.get(Number(r.num)) === Number(r.updated_at)) await this.putVector(trx, r.workspace, Number(r.num), vectors[i]);
        }
      });
      done += rows.length;
      after = Number(rows[rows.length - 1].num);
      if (rows.length < EMBED_BATCH) return done;
    }
  }

  get embedder(): Embedder {
    return this.options.embedder;
  }

  /** Whether the workspace holds any memory at all: recall is skipped for one that holds none. A "yes" is kept (it
   * only costs a recall that finds nothing once everything is gone); a "no" for a moment, so another process's
   * first write is seen soon. */
  async hasItems(workspace: string): Promise<boolean> {
    const known = this.holding.get(workspace);
    if (known === true || (known !== undefined && Date.now() < known)) return known === true;
    const row = await this.storage.db
      .selectFrom("memory_items")
      .select("num")
      .where("workspace", "=", workspace)
      .limit(1)
      .executeTakeFirst();
    this.holding.set(workspace, row ? true : Date.now() + 1_000);
    return Boolean(row);
  }

  /** The scopes that hold items, by name: what a person's search covers when it names none. */
  async scopes(workspace: string): Promise<string[]> {
    const rows = await this.storage.db.selectFrom("memory_items").select("scope").distinct().where("workspace", "=", workspace).execute();
    return rows.map((r) => r.scope).sort();
  }

  /** Writes an item; with a key, supersedes the current item of the same scope, subject and key (keeping its history). */
  async remember(input: RememberInput): Promise<RememberResult> {
    const scope = normalizeScope(input.scope);
    const fields = checkFields({ ...input, scope });
    const [vector] = await this.vectorsOf([fields.text]);
    const attempt = () =>
      this.storage.write(async (trx) => {
        if (input.writeKey) {
          const done = await this.byWriteKey(trx, input.workspace, input.writeKey);
          if (done) return { item: done, superseded: null, applied: false };
        }
        return this.write(trx, input, fields, vector, Date.now());
      });
    for (let tries = 1; ; tries++) {
      try {
        return await attempt();
      } catch (err) {
        // Writers raced to create the same (scope, subject, key): the losers now supersede the winner.
        if (!isUniqueViolation(err) || tries >= 5) throw err;
      }
    }
  }

  /** PostgreSQL: the row is locked for the transaction, so concurrent supersedes queue instead of both archiving the
   * same version. (SQLite writes one transaction at a time.) */
  private locked<Q extends { forUpdate(): Q }>(query: Q): Q {
    return this.storage.kind === "postgres" ? query.forUpdate() : query;
  }

  async get(workspace: string, id: string): Promise<MemoryItem | null> {
    const row = await this.storage.db
      .selectFrom("memory_items")
      .selectAll()
      .where("workspace", "=", workspace)
      .where("id", "=", id)
      .executeTakeFirst();
    return row ? toItem(row) : null;
  }

  /** Earlier versions, newest first (the current one is `get`). */
  async history(workspace: string, id: string): Promise<MemoryVersion[]> {
    const rows = await this.storage.db
      .selectFrom("memory_versions")
      .selectAll()
      .where("workspace", "=", workspace)
      .where("item_id", "=", id)
      .orderBy("version", "desc")
      .execute();
    return rows.map(toVersion);
  }

  /** Items, most recently updated first. */
  async list(filter: ListMemoryFilter): Promise<MemoryItem[]> {
    let q = this.storage.db.selectFrom("memory_items").selectAll().where("workspace", "=", filter.workspace);
    if (filter.scopes) q = q.where("scope", "in", filter.scopes.length > 0 ? filter.scopes.map(normalizeScope) : [""]);
    if (filter.subject) q = q.where("subject", "=", filter.subject);
    if (filter.kind) q = q.where("kind", "=", filter.kind);
    // The tag as it stands in the JSON list, quotes included; `_` and `%` escaped (a tag may hold `_`).
    if (filter.tag) q = q.where(sql<boolean>`tags LIKE ${`%${JSON.stringify(filter.tag).replace(/[!%_]/g, "!$&")}%`} ESCAPE '!'`);
    if (filter.before) {
      const anchor = await this.storage.db
        .selectFrom("memory_items")
        .select(["updated_at", "num"])
        .where("workspace", "=", filter.workspace)
        .where("id", "=", filter.before)
        .executeTakeFirst();
      if (anchor) {
        q = q.where((eb) =>
          eb.or([eb("updated_at", "<", anchor.updated_at), eb.and([eb("updated_at", "=", anchor.updated_at), eb("num", "<", anchor.num)])]),
        );
      }
    }
    const rows = await q.orderBy("updated_at", "desc").orderBy("num", "desc").limit(filter.limit).execute();
    return rows.map(toItem).filter((i) => !filter.tag || i.tags.includes(filter.tag));
  }

  /** Full-text and vector search over the given scopes, fused (see recall.ts). */
  recall(query: RecallQuery): Promise<RecallHit[]> {
    return this.recaller.recall({ ...query, scopes: query.scopes.map(normalizeScope) });
  }

  /** A person's edit: a new version of the item (the old one kept in its history), recorded in the audit log. */
  async update(workspace: string, id: string, patch: MemoryPatch, by: string): Promise<MemoryItem> {
    const current = await this.get(workspace, id);
    if (!current) throw notFoundItem(id, workspace);
    const next = checkFields({
      workspace,
      scope: current.scope,
      kind: current.kind,
      subject: current.subject,
      key: current.key,
      text: patch.text ?? current.text,
      tags: patch.tags ?? current.tags,
      classification: patch.classification ?? current.classification,
      source: current.source,
      author: by,
    });
    const [vector] = await this.vectorsOf([next.text]);
    return this.storage.write(async (trx) => {
      const row = await this.locked(
        trx.selectFrom("memory_items").selectAll().where("workspace", "=", workspace).where("id", "=", id),
      ).executeTakeFirst();
      if (!row) throw notFoundItem(id, workspace);
      const now = Date.now();
      await this.archive(trx, row, now, by);
      const values = {
        text: next.text,
        tags: JSON.stringify(next.tags),
        classification: next.classification,
        source: JSON.stringify({ kind: "person" } satisfies MemorySource),
        author: by,
        version: row.version + 1,
        updated_at: now,
        expires_at: patch.expiresAt !== undefined ? patch.expiresAt : row.expires_at,
        write_key: null,
      };
      await trx.updateTable("memory_items").set(values).where("num", "=", row.num).execute();
      const updated = { ...row, ...values };
      await this.index(trx, updated, vector, true);
      await appendToOutbox(trx, workspace, [
        { kind: "memory.edited", actor: by, data: { id, scope: row.scope, subject: row.subject, version: values.version } },
      ]);
      return toItem(updated);
    });
  }

  /**
   * Removes an item and its history; false when there is none (already forgotten). A person's forget is recorded in
   * the audit log here; an agent's (a tool call, `audit: false`) is recorded by its run.
   */
  async forget(workspace: string, id: string, by: string, options: { audit?: boolean } = {}): Promise<boolean> {
    return this.storage.write(async (trx) => {
      const row = await trx
        .selectFrom("memory_items")
        .select(["num", "scope", "subject"])
        .where("workspace", "=", workspace)
        .where("id", "=", id)
        .executeTakeFirst();
      if (!row) return false;
      await this.remove(trx, workspace, [{ num: row.num, id }]);
      if (options.audit !== false) {
        await appendToOutbox(trx, workspace, [
          { kind: "memory.forgotten", actor: by, data: { id, scope: row.scope, subject: row.subject } },
        ]);
      }
      return true;
    });
  }

  /**
   * Erasure of everything about a subject: its memory items (facts and knowledge chunks, with every earlier
   * version) and its cached business context, in one transaction with the audit entry that records it.
   */
  async eraseSubject(workspace: string, subject: string, by: string): Promise<ErasureReport> {
    if (!SUBJECT.test(subject)) throw badSubject(subject);
    return this.storage.write(async (trx) => {
      const rows = await trx
        .selectFrom("memory_items")
        .select(["num", "id", "kind"])
        .where("workspace", "=", workspace)
        .where("subject", "=", subject)
        .execute();
      const versions = await trx
        .selectFrom("memory_versions")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("workspace", "=", workspace)
        .where((eb) => eb.or([eb("subject", "=", subject), eb("item_id", "in", rows.length > 0 ? rows.map((r) => r.id) : [""])]))
        .executeTakeFirstOrThrow();
      await this.remove(trx, workspace, rows);
      await trx.deleteFrom("memory_versions").where("workspace", "=", workspace).where("subject", "=", subject).execute();
      const context = await trx
        .deleteFrom("context_entities")
        .where("workspace", "=", workspace)
        .where("subject", "=", subject)
        .executeTakeFirst();
      const report: ErasureReport = {
        subject,
        items: rows.filter((r) => r.kind !== "knowledge").length,
        knowledgeChunks: rows.filter((r) => r.kind === "knowledge").length,
        versions: Number(versions.n),
        contextEntities: Number(context.numDeletedRows),
        ids: rows.map((r) => r.id),
      };
      await appendToOutbox(trx, workspace, [
        {
          kind: "memory.erased",
          actor: by,
          data: {
            subject,
            items: report.items,
            knowledge_chunks: report.knowledgeChunks,
            versions: report.versions,
            context_entities: report.contextEntities,
            ids: report.ids,
          },
        },
      ]);
      return report;
    });
  }

  /**
   * Keeps a document as knowledge chunks in a scope, replacing what an earlier ingest of the same name left there: a
   * chunk whose text changed gets a new version (the old one in its history), an unchanged one is left alone, and
   * chunks past the new end are removed. One transaction, with a `knowledge.ingested` audit entry: ingesting again
   * what is already there changes nothing and records nothing.
   */
  async ingest(doc: KnowledgeDocumentInput): Promise<IngestReport> {
    const scope = normalizeScope(doc.scope);
    const name = checkDocumentName(doc.name);
    const pieces = chunkDocument(doc.text, { format: doc.format, ...(doc.maxChars !== undefined ? { maxChars: doc.maxChars } : {}) });
    if (pieces.length === 0) {
      throw new OutpostError(
        "invalid_request",
        `${name}: the document has no text`,
        "add the document's text, or remove it with outpost knowledge rm",
      );
    }
    const inputs = pieces.map(
      (c): RememberInput => ({
        workspace: doc.workspace,
        scope,
        kind: "knowledge",
        subject: doc.subject ?? null,
        key: `${name}#${c.index}`,
        text: c.text,
        tags: doc.tags ?? [],
        ...(doc.classification ? { classification: doc.classification } : {}),
        source: { kind: "knowledge", file: name, chunk: c.index, ...(c.heading ? { heading: c.heading } : {}) },
        author: doc.author,
      }),
    );
    const fields = inputs.map((input) => checkFields(input));
    /** Whether chunk i differs from what the document holds now (new, or changed). */
    const differs = (existing: Awaited<ReturnType<typeof this.documentRows>>) => {
      const byKey = new Map(existing.map((r) => [r.key, r]));
      return fields.map((f, i) => {
        const row = byKey.get(f.key as string);
        return !(
          row &&
          row.text === f.text &&
          row.tags === JSON.stringify(f.tags) &&
          row.classification === f.classification &&
          row.subject === f.subject &&
          row.source === JSON.stringify(inputs[i]?.source)
        );
      });
    };
    // Embedded before the write transaction (a remote model must not hold the database's write lock): the chunks
    // that differ now. One that changes in between is written without a vector and embedded later.
    const before = differs(await this.documentRows(this.storage.db, doc.workspace, scope, name));
    const texts = [...new Set(fields.filter((_, i) => before[i]).map((f) => f.text))];
    const vectors = await this.vectorsOf(texts);
    const vectorOf = new Map(texts.map((t, i) => [t, vectors[i]]));
    return this.storage.write(async (trx) => {
      const existing = await this.documentRows(trx, doc.workspace, scope, name);
      const keys = new Set(existing.map((r) => r.key));
      const report: IngestReport = { name, scope, chunks: pieces.length, added: 0, updated: 0, unchanged: 0, removed: 0 };
      const now = Date.now();
      const changed = differs(existing);
      for (const [i, f] of fields.entries()) {
        if (!changed[i]) {
          report.unchanged++;
          continue;
        }
        if (keys.has(f.key as string)) report.updated++;
        else report.added++;
        await this.write(trx, inputs[i] as RememberInput, f, vectorOf.get(f.text), now);
      }
      const keep = new Set(fields.map((f) => f.key));
      const stale = existing.filter((r) => !keep.has(r.key));
      await this.remove(trx, doc.workspace, stale);
      report.removed = stale.length;
      if (report.added + report.updated + report.removed > 0) {
        await appendToOutbox(trx, doc.workspace, [{ kind: "knowledge.ingested", actor: doc.author, data: { ...report } }]);
      }
      return report;
    });
  }

  /** The documents kept as knowledge, by scope and name. */
  async documents(workspace: string, scopes?: string[]): Promise<KnowledgeDocument[]> {
    let query = this.storage.db
      .selectFrom("memory_items")
      .select(["scope", "key", "subject", "tags", "classification", "updated_at"])
      .where("workspace", "=", workspace)
      .where("kind", "=", "knowledge");
    if (scopes && scopes.length > 0) query = query.where("scope", "in", scopes.map(normalizeScope));
    const docs = new Map<string, KnowledgeDocument>();
    for (const r of await query.execute()) {
      const name = documentOf(r.key);
      if (name === null) continue;
      const id = `${r.scope}\u0000${name}`;
      const doc = docs.get(id);
      const updatedAt = Number(r.updated_at);
      if (!doc) {
        const classification = r.classification as Classification;
        docs.set(id, { name, scope: r.scope, chunks: 1, classification, subject: r.subject, tags: JSON.parse(r.tags), updatedAt });
        continue;
      }
      doc.chunks++;
      doc.updatedAt = Math.max(doc.updatedAt, updatedAt);
      if (classificationLevel(r.classification as Classification) > classificationLevel(doc.classification)) {
        doc.classification = r.classification as Classification;
      }
    }
    return [...docs.values()].sort((a, b) => a.scope.localeCompare(b.scope) || a.name.localeCompare(b.name));
  }

  /** Removes a document's chunks (and their histories) from a scope, audited; returns how many chunks went. */
  async removeDocument(workspace: string, scopeName: string, documentName: string, by: string): Promise<number> {
    const scope = normalizeScope(scopeName);
    const name = checkDocumentName(documentName);
    return this.storage.write(async (trx) => {
      const rows = await this.documentRows(trx, workspace, scope, name);
      if (rows.length === 0) return 0;
      await this.remove(trx, workspace, rows);
      await appendToOutbox(trx, workspace, [{ kind: "knowledge.removed", actor: by, data: { name, scope, chunks: rows.length } }]);
      return rows.length;
    });
  }

  /** A document's chunks in a scope: their keys are `<name>#<index>`. */
  private async documentRows(trx: Kysely<Database>, workspace: string, scope: string, name: string) {
    const pattern = `${name.replace(/[\\%_]/g, (c) => `\\${c}`)}#%`;
    const rows = await trx
      .selectFrom("memory_items")
      .select(["num", "id", "key", "text", "tags", "classification", "subject", "source"])
      .where("workspace", "=", workspace)
      .where("scope", "=", scope)
      .where("kind", "=", "knowledge")
      .where(sql<boolean>`key LIKE ${pattern} ESCAPE '\\'`)
      .execute();
    // LIKE is case-insensitive in SQLite: keep exactly this name's chunks.
    return rows
      .filter((r) => r.key !== null && documentOf(r.key) === name)
      .map((r) => ({ ...r, num: Number(r.num), key: r.key as string }));
  }

  /** Retention: removes items past their expiry (oldest first, a batch at a time); returns how many. */
  async expire(now = Date.now(), limit = 500): Promise<number> {
    const due = await this.storage.db
      .selectFrom("memory_items")
      .select(["num", "id", "workspace"])
      .where("expires_at", "is not", null)
      .where("expires_at", "<=", now)
      .orderBy("expires_at")
      .limit(limit)
      .execute();
    if (due.length === 0) return 0;
    const byWorkspace = new Map<string, { num: number; id: string }[]>();
    for (const d of due) byWorkspace.set(d.workspace, [...(byWorkspace.get(d.workspace) ?? []), d]);
    await this.storage.write(async (trx) => {
      for (const [workspace, rows] of byWorkspace) {
        await this.remove(trx, workspace, rows);
        await appendToOutbox(trx, workspace, [{ kind: "memory.expired", actor: "system", data: { ids: rows.map((r) => r.id) } }]);
      }
    });
    return due.length;
  }

  // ---- inside a write transaction ----------------------------------------------------------------------------

  /** Writes an item: a new one, or the next version of the current one with the same scope, subject and key. */
  private async write(
    trx: Transaction<Database>,
    input: RememberInput,
    fields: CheckedFields,
    vector: Float32Array | undefined,
    now: number,
  ): Promise<RememberResult> {
    const scope = fields.scope;
    const current =
      fields.key !== null
        ? await this.locked(
            trx
              .selectFrom("memory_items")
              .selectAll()
              .where("workspace", "=", input.workspace)
              .where("scope", "=", scope)
              .where(sql<boolean>`COALESCE(subject, '') = ${fields.subject ?? ""}`)
              .where("key", "=", fields.key),
          ).executeTakeFirst()
        : undefined;
    const values = {
      text: fields.text,
      tags: JSON.stringify(fields.tags),
      classification: fields.classification,
      source: JSON.stringify(input.source),
      author: input.author,
      expires_at: input.expiresAt ?? null,
      write_key: input.writeKey ?? null,
      updated_at: now,
    };
    if (current) {
      const superseded = await this.archive(trx, current, now, input.author);
      await trx
        .updateTable("memory_items")
        .set({ ...values, version: current.version + 1 })
        .where("num", "=", current.num)
        .execute();
      const row = { ...current, ...values, version: current.version + 1 };
      await this.index(trx, row, vector, true);
      await this.auditPersonWrite(trx, input, row.id, row.version);
      return { item: toItem(row), superseded, applied: true };
    }
    const row = {
      id: newId("mem", now),
      workspace: input.workspace,
      scope,
      kind: fields.kind,
      subject: fields.subject,
      key: fields.key,
      version: 1,
      created_at: now,
      ...values,
    };
    const { num } = await trx.insertInto("memory_items").values(row).returning("num").executeTakeFirstOrThrow();
    const full = { ...row, num: Number(num) };
    await this.index(trx, full, vector, false);
    await this.auditPersonWrite(trx, input, full.id, 1);
    return { item: toItem(full), superseded: null, applied: true };
  }

  /** A person's write is recorded with it (an agent's is recorded by its run: the tool call and its decision). */
  private async auditPersonWrite(trx: Transaction<Database>, input: RememberInput, id: string, version: number): Promise<void> {
    if (input.source.kind !== "person") return;
    await appendToOutbox(trx, input.workspace, [
      {
        kind: "memory.written",
        actor: input.author,
        data: { id, scope: normalizeScope(input.scope), subject: input.subject ?? null, version },
      },
    ]);
  }

  private async byWriteKey(trx: Transaction<Database>, workspace: string, key: string): Promise<MemoryItem | null> {
    const row = await trx
      .selectFrom("memory_items")
      .selectAll()
      .where("workspace", "=", workspace)
      .where("write_key", "=", key)
      .executeTakeFirst();
    if (row) return toItem(row);
    const earlier = await trx
      .selectFrom("memory_versions")
      .select("item_id")
      .where("workspace", "=", workspace)
      .where("write_key", "=", key)
      .executeTakeFirst();
    if (!earlier) return null;
    const current = await trx.selectFrom("memory_items").selectAll().where("id", "=", earlier.item_id).executeTakeFirst();
    return current ? toItem(current) : null;
  }

  private async archive(trx: Transaction<Database>, row: ItemRow, now: number, by: string): Promise<MemoryVersion> {
    const version = {
      item_id: row.id,
      version: row.version,
      workspace: row.workspace,
      scope: row.scope,
      subject: row.subject,
      key: row.key,
      text: row.text,
      tags: row.tags,
      classification: row.classification,
      source: row.source,
      author: row.author,
      written_at: row.updated_at,
      expires_at: row.expires_at,
      superseded_at: now,
      superseded_by: by,
      write_key: row.write_key,
    };
    await trx.insertInto("memory_versions").values(version).execute();
    return toVersion(version);
  }

  /** The item's full-text entry (SQLite; PostgreSQL derives its tsvector) and vector, replacing earlier ones. */
  private async index(trx: Transaction<Database>, row: ItemRow, vector: Float32Array | undefined, replace: boolean): Promise<void> {
    const num = Number(row.num);
    if (this.storage.kind === "sqlite") {
      if (replace) await sql`DELETE FROM memory_fts WHERE rowid = ${num}`.execute(trx);
      const meta = [
        metaToken("w", row.workspace),
        metaToken("c", row.workspace, row.scope),
        metaToken("k", row.workspace, row.kind),
        ...(row.subject ? [metaToken("s", row.workspace, row.subject)] : []),
      ].join(" ");
      await sql`INSERT INTO memory_fts (rowid, body, meta) VALUES (${num}, ${ftsBody(row.text, JSON.parse(row.tags), row.subject)}, ${meta})`.execute(
        trx,
      );
    }
    this.holding.set(row.workspace, true);
    if (vector) await this.putVector(trx, row.workspace, num, vector);
    // Without one (the embedder failed), an earlier text's vector must not stand for the new text.
    else if (replace) {
      await trx.deleteFrom("memory_vectors").where("num", "=", num).execute();
      this.recaller.noteDelete?.(row.workspace, num);
    }
  }

  private async putVector(trx: Transaction<Database>, workspace: string, num: number, vector: Float32Array): Promise<void> {
    const values = { num, workspace, embedder: this.options.embedder.id, vector: toBlob(vector) };
    await trx
      .insertInto("memory_vectors")
      .values(values)
      .onConflict((oc) => oc.column("num").doUpdateSet({ embedder: values.embedder, vector: values.vector }))
      .execute();
    this.recaller.noteWrite?.(workspace, num, vector);
  }

  private async remove(trx: Transaction<Database>, workspace: string, rows: { num: number; id: string }[]): Promise<void> {
    if (rows.length === 0) return;
    for (let i = 0; i < rows.length; i += 500) {
      const part = rows.slice(i, i + 500);
      const nums = part.map((r) => Number(r.num));
      const ids = part.map((r) => r.id);
      if (this.storage.kind === "sqlite") {
        for (const num of nums) await sql`DELETE FROM memory_fts WHERE rowid = ${num}`.execute(trx);
      }
      await trx.deleteFrom("memory_vectors").where("num", "in", nums).execute();
      await trx.deleteFrom("memory_versions").where("workspace", "=", workspace).where("item_id", "in", ids).execute();
      await trx.deleteFrom("memory_items").where("workspace", "=", workspace).where("num", "in", nums).execute();
      for (const num of nums) this.recaller.noteDelete?.(workspace, num);
    }
  }
}

interface CheckedFields {
  scope: string;
  kind: "fact" | "knowledge";
  subject: string | null;
  key: string | null;
  text: string;
  tags: string[];
  classification: Classification;
}

/** Bad input is refused with what to change; nothing is written. */
function checkFields(input: RememberInput & { scope: string }): CheckedFields {
  const text = typeof input.text === "string" ? input.text.trim() : "";
  if (text === "") throw new OutpostError("invalid_request", "a memory needs text", "say what to remember in `text`");
  if (text.length > MAX_TEXT) {
    throw new OutpostError(
      "payload_too_large",
      `a memory's text is limited to ${MAX_TEXT} characters (got ${text.length})`,
      "remember the fact itself, not a document; add documents as knowledge (outpost knowledge add)",
    );
  }
  const subject = input.subject?.trim() || null;
  if (subject !== null && !SUBJECT.test(subject)) throw badSubject(subject);
  const key = input.key?.trim() || null;
  if (key !== null && (key.length > 200 || !/^[^\p{Cc}]+$/u.test(key))) {
    throw new OutpostError("invalid_request", "a memory key is at most 200 printable characters", 'e.g. "preferred_carrier"');
  }
  const tags = [...new Set((input.tags ?? []).map((t) => String(t).trim()).filter(Boolean))];
  if (tags.length > MAX_TAGS) throw new OutpostError("invalid_request", `at most ${MAX_TAGS} tags per memory (got ${tags.length})`);
  const badTag = tags.find((t) => !TAG.test(t));
  if (badTag !== undefined) {
    throw new OutpostError("invalid_request", `"${badTag.slice(0, 70)}" is not a tag`, "tags are up to 64 letters, digits, _ . : / -");
  }
  const classification = input.classification ?? "internal";
  if (!CLASSIFICATIONS.includes(classification)) {
    throw new OutpostError("invalid_request", `"${classification}" is not a classification`, `use one of ${CLASSIFICATIONS.join(", ")}`);
  }
  return { scope: input.scope, kind: input.kind ?? "fact", subject, key, text, tags, classification };
}

export const atMost = (max: Classification | undefined): Classification[] =>
  max ? CLASSIFICATIONS.filter((c) => classificationLevel(c) <= classificationLevel(max)) : [...CLASSIFICATIONS];

const badSubject = (subject: string) =>
  new OutpostError(
    "invalid_request",
    `"${subject.slice(0, 70)}" is not a subject`,
    "a subject names what a memory is about, as type:id, e.g. customer:1042 or order:105708",
  );

const notFoundItem = (id: string, workspace: string) =>
  new OutpostError("not_found", `memory item "${id}" does not exist in workspace ${workspace}`, "list items with outpost memory ls");

function isUniqueViolation(err: unknown): boolean {
  const code = String((err as { code?: unknown })?.code ?? "");
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE";
}

export function toItem(row: ItemRow | (Omit<ItemRow, "num"> & { num: number })): MemoryItem {
  return {
    id: row.id,
    workspace: row.workspace,
    scope: row.scope,
    kind: row.kind as MemoryItem["kind"],
    subject: row.subject,
    key: row.key,
    text: row.text,
    tags: JSON.parse(row.tags) as string[],
    classification: row.classification as Classification,
    source: JSON.parse(row.source) as MemorySource,
    author: row.author,
    version: row.version,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
  };
}

function toVersion(row: Selectable<MemoryVersionsTable>): MemoryVersion {
  return {
    itemId: row.item_id,
    version: row.version,
    scope: row.scope,
    subject: row.subject,
    key: row.key,
    text: row.text,
    tags: JSON.parse(row.tags) as string[],
    classification: row.classification as Classification,
    source: JSON.parse(row.source) as MemorySource,
    author: row.author,
    writtenAt: Number(row.written_at),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    supersededAt: Number(row.superseded_at),
    supersededBy: row.superseded_by,
  };
}

/** `refund-policy.md#3` → `refund-policy.md`. */
function documentOf(key: string | null): string | null {
  if (key === null) return null;
  const at = key.lastIndexOf("#");
  return at > 0 && /^\d+$/.test(key.slice(at + 1)) ? key.slice(0, at) : null;
}

function checkDocumentName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === "" || trimmed.length > 180 || !/^[^\p{Cc}#]+$/u.test(trimmed)) {
    throw new OutpostError(
      "invalid_request",
      `"${trimmed.slice(0, 70)}" is not a document name`,
      'a document name is up to 180 printable characters without "#" (e.g. refund-policy.md)',
    );
  }
  return trimmed;
}
