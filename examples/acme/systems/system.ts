/**
 * What Acme's three business systems share: where their database lives, how it is opened and
 * seeded, how a tool is registered (reads vs. idempotent writes), how results and business-rule
 * errors look, and how the stdio process starts and stops.
 *
 * Idempotency: a write reads its key from the request's `_meta["outpost/idempotency_key"]` (the
 * SDK hands the request's `_meta` to the tool handler as `extra._meta`). The key, the tool, a hash
 * of the arguments and the result are stored in the `idempotency` table in the same transaction
 * as the write itself, so a repeat returns the first result and changes nothing. A write without
 * a key is simply not de-duplicated.
 */
import { createHash } from "node:crypto";
import { mkdirSync, realpathSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import Database from "better-sqlite3";
import { z } from "zod";
import { SEED_VERSION } from "./seed.js";

export type Db = Database.Database;
export type SystemName = "helpdesk" | "warehouse" | "ledger";

export const IDEMPOTENCY_META_KEY = "outpost/idempotency_key";

/** A business rule said no: the caller gets `isError: true` with this message, never a stack trace. */
export class BusinessError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "BusinessError";
  }
}

// ---------------------------------------------------------------------------------------------
// Files and databases

/** `--db <path>` (or `--db=<path>`), else `$OUTPOST_DATA_DIR/acme/<system>.db`, else `./.outpost/acme/<system>.db`. */
export function databasePath(
  system: SystemName,
  argv: readonly string[] = process.argv.slice(2),
  env = process.env,
  cwd = process.cwd(),
): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--db" && argv[i + 1]) return path.resolve(cwd, argv[i + 1]);
    if (argv[i].startsWith("--db=")) return path.resolve(cwd, argv[i].slice("--db=".length));
  }
  const dataDir = env.OUTPOST_DATA_DIR ? path.resolve(cwd, env.OUTPOST_DATA_DIR) : path.resolve(cwd, ".outpost");
  return path.join(dataDir, "acme", `${system}.db`);
}

const COMMON_SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
  key TEXT PRIMARY KEY,
  tool TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  result TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`;

export interface OpenedDatabase {
  db: Db;
  /** True when this open created and seeded the database. */
  seeded: boolean;
  seedMs: number;
}

/**
 * Opens (creating the folder and file if needed) a system's database in WAL mode, and seeds it in
 * one immediate transaction on first open. Two processes opening a fresh file at once are safe:
 * the second waits for the first's transaction and then finds the seed in place.
 */
export function openSystemDatabase(system: SystemName, file: string, schema: string, seed: (db: Db) => void): OpenedDatabase {
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma("busy_timeout = 10000");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    const started = performance.now();
    const init = db.transaction((): boolean => {
      db.exec(COMMON_SCHEMA + schema);
      const version = db.prepare("SELECT value FROM meta WHERE key = 'seed_version'").get() as { value: string } | undefined;
      if (version) {
        if (version.value !== String(SEED_VERSION)) {
          throw new Error(
            `${file} was seeded by another version of Acme's ${system} (seed ${version.value}, this one is ${SEED_VERSION}); delete it to start afresh`,
          );
        }
        return false;
      }
      seed(db);
      db.prepare("INSERT INTO meta (key, value) VALUES ('seed_version', ?), ('system', ?), ('seed_rows', ?)").run(
        String(SEED_VERSION),
        system,
        JSON.stringify(tableCounts(db)),
      );
      return true;
    });
    const seeded = init.immediate();
    return { db, seeded, seedMs: Math.round(performance.now() - started) };
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Rows per table (except meta and idempotency): kept at seed time so writes since can be told apart. */
export function tableCounts(db: Db): Record<string, number> {
  const tables = db
    .prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('meta', 'idempotency') AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .all() as Array<{ name: string }>;
  return Object.fromEntries(tables.map(({ name }) => [name, (db.prepare(`SELECT COUNT(*) AS n FROM "${name}"`).get() as { n: number }).n]));
}

// ---------------------------------------------------------------------------------------------
// Small value helpers

/** Cents → dollars as a JSON number (14.95). */
export function money(cents: number): number {
  return Math.round(cents) / 100;
}

/** Dollars from a tool's input → cents; refuses fractions of a cent and non-positive amounts. */
export function toCents(amount: number, field = "amount"): number {
  const cents = Math.round(amount * 100);
  if (!Number.isFinite(amount) || Math.abs(cents - amount * 100) > 1e-6) {
    throw new BusinessError("invalid_amount", `${field} ${amount} has more than two decimals; give it in dollars and cents, like 14.95`);
  }
  if (cents <= 0) throw new BusinessError("invalid_amount", `${field} must be more than 0.00 (got ${amount})`);
  return cents;
}

export function now(): string {
  return `${new Date().toISOString().slice(0, 19)}Z`;
}

/** Next id in a sequence: `PREFIX-00001` style, from the highest one in `table.column`. */
export function nextId(db: Db, table: string, column: string, prefix: string, width = 5): string {
  const row = db
    .prepare(`SELECT MAX(CAST(SUBSTR(${column}, ?) AS INTEGER)) AS n FROM ${table} WHERE ${column} LIKE ?`)
    .get(prefix.length + 1, `${prefix}%`) as {
    n: number | null;
  };
  return `${prefix}${String((row.n ?? 0) + 1).padStart(width, "0")}`;
}

/** Accepts "105708", "#105708", " 105708 " and "order 105708". */
export function normalizeNumber(value: string): string {
  return value
    .trim()
    .replace(/^(order|#)\s*/i, "")
    .replace(/^#/, "");
}

/** Accepts "T-51501", "t-51501", "51501", "#51501" for prefix "T-". */
export function normalizePrefixed(value: string, prefix: string): string {
  const v = value.trim().replace(/^#/, "").toUpperCase();
  return /^\d+$/.test(v) ? `${prefix}${v}` : v;
}

// ---------------------------------------------------------------------------------------------
// Tools

type Shape = Record<string, z.ZodType>;
type Args<S extends Shape> = z.infer<z.ZodObject<S>>;

interface ToolSpec<S extends Shape> {
  title: string;
  description: string;
  input: S;
}

interface ToolExtra {
  _meta?: Record<string, unknown>;
}

function ok(value: object, replayed = false): CallToolResult {
  return {
    content: [{ type: "text", text: JSON.stringify(value) }],
    structuredContent: value as Record<string, unknown>,
    ...(replayed ? { _meta: { "outpost/replayed": true } } : {}),
  };
}

function failure(code: string, message: string): CallToolResult {
  return { content: [{ type: "text", text: message }], structuredContent: { error: { code, message } }, isError: true };
}

/** Registers a system's tools on an MCP server: reads run as they are, writes inside an idempotent transaction. */
export class SystemTools {
  readonly names: string[] = [];
  private readonly findKey;
  private readonly saveKey;

  constructor(
    readonly server: McpServer,
    readonly db: Db,
    private readonly system: SystemName,
    private readonly log: (message: string) => void,
  ) {
    this.findKey = db.prepare("SELECT tool, request_hash, result FROM idempotency WHERE key = ?");
    this.saveKey = db.prepare("INSERT INTO idempotency (key, tool, request_hash, result, created_at) VALUES (?, ?, ?, ?, ?)");
  }

  /** A tool that only reads: annotated `readOnlyHint: true`. */
  read<S extends Shape>(name: string, spec: ToolSpec<S>, run: (args: Args<S>) => object): void {
    this.names.push(name);
    this.server.registerTool(
      name,
      {
        title: spec.title,
        description: spec.description,
        inputSchema: spec.input,
        annotations: { title: spec.title, readOnlyHint: true, openWorldHint: false },
      },
      ((args: Args<S>) => this.guard(name, () => ok(run(args)))) as never,
    );
  }

  /** A tool that writes: one immediate transaction, de-duplicated by `_meta["outpost/idempotency_key"]`. */
  write<S extends Shape>(name: string, spec: ToolSpec<S>, run: (args: Args<S>) => object): void {
    this.names.push(name);
    const transaction = this.db.transaction((args: Args<S>, key: string | undefined): { result: object; replayed: boolean } => {
      const requestHash = createHash("sha256").update(JSON.stringify(args)).digest("hex");
      if (key !== undefined) {
        const prior = this.findKey.get(key) as { tool: string; request_hash: string; result: string } | undefined;
        if (prior) {
          if (prior.tool !== name) {
            throw new BusinessError(
              "idempotency_key_reused",
              `idempotency key "${key}" was already used for ${prior.tool}, not ${name}; use a new key`,
            );
          }
          if (prior.request_hash !== requestHash) {
            throw new BusinessError(
              "idempotency_key_reused",
              `idempotency key "${key}" was already used for a ${name} call with different arguments; use a new key`,
            );
          }
          return { result: JSON.parse(prior.result) as object, replayed: true };
        }
      }
      const result = run(args);
      if (key !== undefined) this.saveKey.run(key, name, requestHash, JSON.stringify(result), now());
      return { result, replayed: false };
    });
    this.server.registerTool(
      name,
      {
        title: spec.title,
        description: `${spec.description} Idempotent when called with _meta["${IDEMPOTENCY_META_KEY}"]: a repeat with the same key returns the first result and changes nothing.`,
        inputSchema: spec.input,
        annotations: { title: spec.title, readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
      },
      ((args: Args<S>, extra: ToolExtra) =>
        this.guard(name, () => {
          const raw = extra._meta?.[IDEMPOTENCY_META_KEY];
          const key = typeof raw === "string" && raw !== "" ? raw : undefined;
          const { result, replayed } = transaction.immediate(args, key);
          if (replayed) this.log(`${name}: replayed idempotency key ${key}`);
          return ok(result, replayed);
        })) as never,
    );
  }

  private guard(name: string, body: () => CallToolResult): CallToolResult {
    try {
      return body();
    } catch (error) {
      if (error instanceof BusinessError) return failure(error.code, error.message);
      this.log(`${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      return failure(
        "internal_error",
        `${name} failed inside Acme's ${this.system}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
}

/** Common zod pieces with descriptions the model sees. */
export const page = {
  limit: z.number().int().min(1).max(100).default(20).describe("How many to return (1–100, default 20)."),
  offset: z.number().int().min(0).default(0).describe("How many to skip, for paging (default 0)."),
};

// ---------------------------------------------------------------------------------------------
// The process

export interface SystemDefinition {
  system: SystemName;
  version: string;
  instructions: string;
  open: (file: string) => OpenedDatabase;
  register: (tools: SystemTools) => void;
}

/** True when `moduleUrl` is the script node was started with (`node --import tsx <file>`). */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(path.resolve(script)) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}

/** Runs a system as an MCP server over stdio. stdout is the protocol; every log line goes to stderr. */
export async function runSystem(definition: SystemDefinition): Promise<void> {
  const name = `acme-${definition.system}`;
  // When Outpost dies (even by SIGKILL) the pipes close: a failed log write must neither throw nor loop.
  process.stderr.on("error", () => undefined);
  process.stdout.on("error", () => shutdown("stdout closed"));
  const log = (message: string) => {
    if (process.stderr.writable) process.stderr.write(`[${name}] ${message}\n`);
  };
  let opened: OpenedDatabase;
  const file = databasePath(definition.system);
  try {
    opened = definition.open(file);
  } catch (error) {
    log(`cannot open ${file}: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  const { db } = opened;
  const server = new McpServer({ name, version: definition.version }, { instructions: definition.instructions });
  const tools = new SystemTools(server, db, definition.system, log);
  definition.register(tools);

  let closing = false;
  function shutdown(why: string, code = 0) {
    if (closing) return;
    closing = true;
    log(`stopping (${why})`);
    setTimeout(() => process.exit(code), 2_000).unref(); // whatever happens to the close below
    server
      .close()
      .catch(() => undefined)
      .finally(() => {
        db.close();
        process.exit(code);
      });
  }
  process.stdin.on("end", () => shutdown("stdin closed"));
  process.stdin.on("close", () => shutdown("stdin closed"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("uncaughtException", (error) => {
    log(`unexpected error: ${error.stack ?? error.message}`);
    shutdown("unexpected error", 1);
  });
  server.server.onclose = () => shutdown("connection closed");

  await server.connect(new StdioServerTransport());
  log(`ready: ${tools.names.length} tools, database ${file}${opened.seeded ? ` (seeded in ${opened.seedMs} ms)` : ""}`);
}
