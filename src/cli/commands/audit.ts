/**
 * `outpost audit verify | list` and `outpost report`: read the audit chain of the local store (the data folder,
 * or OUTPOST_DATABASE_URL) without starting the runtime. They only read: entries still in the outbox are chained
 * by the running Outpost, and are counted, not verified.
 */

import type { KeyObject } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { OutpostError } from "../../core/errors.js";
import type { Store } from "../../store/types.js";
import { DEFAULT_DATA_DIR } from "../connect.js";
import { Exit, UsageError } from "../errors.js";
import { out, table, truncate } from "../output.js";
import { parseLimit } from "./runs.js";

interface LocalOptions {
  project?: string;
  data?: string;
  workspace?: string;
  publicKey?: string;
}

function addLocalOptions(cmd: Command): Command {
  return cmd
    .option("--project <dir>", "project folder (its outpost.yaml names the workspace)", ".")
    .option("--data <dir>", "local data folder (or set OUTPOST_DATABASE_URL)", DEFAULT_DATA_DIR)
    .option("--workspace <name>", "workspace to read (default: the project's)");
}

function addKeyOption(cmd: Command): Command {
  return cmd.option("--public-key <file>", "Ed25519 public key (PEM) checkpoints are verified with (default: DATA/audit-signing.pub)");
}

async function workspaceOf(opts: LocalOptions): Promise<string> {
  if (opts.workspace) return opts.workspace;
  const projectDir = path.resolve(opts.project ?? ".");
  if (!existsSync(path.join(projectDir, "outpost.yaml"))) {
    throw new UsageError(
      `no Outpost project in ${projectDir} (no outpost.yaml)`,
      "name one with --project DIR, or the workspace with --workspace NAME",
    );
  }
  const { loadProject } = await import("../../definitions/index.js");
  return (await loadProject(projectDir)).workspace;
}

async function withStore<T>(opts: LocalOptions, fn: (store: Store, workspace: string, dataDir: string) => Promise<T>): Promise<T> {
  const workspace = await workspaceOf(opts);
  const dataDir = path.resolve(opts.data ?? DEFAULT_DATA_DIR);
  const databaseUrl = process.env.OUTPOST_DATABASE_URL || undefined;
  if (!databaseUrl && !existsSync(path.join(dataDir, "outpost.db"))) {
    throw new OutpostError(
      "not_found",
      `there is no Outpost data in ${dataDir}`,
      "pass --data DIR, or set OUTPOST_DATABASE_URL for PostgreSQL",
    );
  }
  const { openStore } = await import("../../store/index.js");
  const store = await openStore({ dataDir, databaseUrl });
  try {
    return await fn(store, workspace, dataDir);
  } finally {
    await store.close();
  }
}

/** --public-key FILE, else the key OUTPOST_AUDIT_SIGNING_KEY signs with, else the data folder's audit-signing.pub. */
async function publicKeyFor(opts: LocalOptions, dataDir: string): Promise<KeyObject> {
  const { parsePublicKey, PUBLIC_KEY_FILE } = await import("../../security/audit/index.js");
  const file = opts.publicKey ?? (process.env.OUTPOST_AUDIT_SIGNING_KEY ? undefined : path.join(dataDir, PUBLIC_KEY_FILE));
  if (file === undefined)
    return parsePublicKey((process.env.OUTPOST_AUDIT_SIGNING_KEY ?? "").replace(/\\n/g, "\n"), "OUTPOST_AUDIT_SIGNING_KEY");
  if (!existsSync(file)) {
    throw new OutpostError(
      "not_found",
      `no audit public key at ${file}`,
      "pass --public-key FILE (the audit-signing.pub written beside the signing key), or set OUTPOST_AUDIT_SIGNING_KEY",
    );
  }
  return parsePublicKey(readFileSync(file, "utf8"), file);
}

/** "30d", "12h", "45m", or a date (2026-11-01, ISO time) → epoch ms. */
export function parseSince(value: string, now = Date.now()): number {
  const rel = /^(\d+)\s*([dhm])$/.exec(value.trim());
  if (rel) return now - Number(rel[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[rel[2] as "d" | "h" | "m"];
  const at = Date.parse(value);
  if (Number.isNaN(at))
    throw new UsageError(`--since "${value}" is neither a duration nor a date`, "use e.g. --since 30d, 12h, or 2026-11-01");
  return at;
}

export function registerAudit(program: Command): void {
  const audit = program.command("audit").description("verify and read the tamper-evident audit log");

  const verify = audit
    .command("verify")
    .description("check the whole chain and its signed checkpoints; exit 1 naming the first bad entry")
    .option("--json", "print the result as JSON");
  addKeyOption(addLocalOptions(verify)).action(async (opts: LocalOptions & { json?: boolean }) => {
    await withStore(opts, async (store, workspace, dataDir) => {
      const { pendingAudit, verifyAudit } = await import("../../security/audit/index.js");
      const publicKey = await publicKeyFor(opts, dataDir);
      const v = await verifyAudit(store, workspace, { publicKey });
      const pending = await pendingAudit(store, workspace);
      if (opts.json) out.line(JSON.stringify({ workspace, ...v, pending }, null, 2));
      else if (v.ok) {
        const cp = v.lastCheckpoint
          ? `last signed checkpoint at seq ${v.lastCheckpoint.seq} (key ${v.lastCheckpoint.keyId})`
          : "no signed checkpoint yet";
        out.line(
          `${out.green("ok")}: workspace ${workspace}, ${v.entries} entries, chain intact, ${v.checkpoints} checkpoints verified; ${cp}`,
        );
        if (pending > 0) out.line(out.dim(`${pending} entries still wait in the outbox (chained by the running Outpost)`));
      } else if (v.problem) {
        out.line(
          `${out.red("TAMPERED")}: workspace ${workspace}, first bad entry seq ${v.problem.seq} (${v.problem.kind}): ${v.problem.message}`,
        );
        out.line(`${v.entries} entries before it verified; the log ends at seq ${v.lastSeq}`);
      }
      if (!v.ok) throw new Exit(1);
    });
  });

  const list = audit
    .command("list")
    .alias("ls")
    .description("chained audit entries, newest first")
    .option("--kind <kind>", "only entries of this kind (e.g. policy.decision)")
    .option("--run <id>", "only entries of this run")
    .option("--limit <n>", "how many entries", "50")
    .option("--json", "print JSON");
  addLocalOptions(list).action(async (opts: LocalOptions & { kind?: string; run?: string; limit?: string; json?: boolean }) => {
    const limit = parseLimit(opts.limit, 50);
    await withStore(opts, async (store, workspace) => {
      const { listAudit } = await import("../../security/audit/index.js");
      const entries = await listAudit(store, workspace, { kind: opts.kind, runId: opts.run, limit });
      if (opts.json) {
        out.line(JSON.stringify(entries, null, 2));
        return;
      }
      if (entries.length === 0) {
        out.line(out.dim("no audit entries"));
        return;
      }
      out.line(
        table(
          ["SEQ", "TIME", "KIND", "ACTOR", "RUN", "DATA"],
          entries.map((e) => [
            String(e.seq),
            new Date(e.at).toISOString(),
            e.kind,
            e.actor,
            e.runId ?? "",
            truncate(JSON.stringify(e.data), 60),
          ]),
        ),
      );
    });
  });

  const report = program
    .command("report")
    .description("write a transparency report (report.md and report.json) from the verified audit log")
    .option("--agent <name>", "only this agent")
    .requiredOption("--since <when>", "start of the period: 30d, 12h, or a date")
    .option("--until <when>", "end of the period (default: now)")
    .option("--out <dir>", "folder for report.md and report.json", ".");
  addKeyOption(addLocalOptions(report)).action(
    async (opts: LocalOptions & { agent?: string; since: string; until?: string; out: string }) => {
      const now = Date.now();
      const since = parseSince(opts.since, now);
      const until = opts.until ? parseSince(opts.until, now) : now;
      await withStore(opts, async (store, workspace, dataDir) => {
        const { buildReport } = await import("../../security/audit/index.js");
        const publicKey = await publicKeyFor(opts, dataDir);
        const { json, markdown } = await buildReport(store, workspace, { agent: opts.agent, since, until, publicKey });
        const dir = path.resolve(opts.out);
        mkdirSync(dir, { recursive: true });
        writeFileSync(path.join(dir, "report.md"), markdown);
        writeFileSync(path.join(dir, "report.json"), `${JSON.stringify(json, null, 2)}\n`);
        const state = json.verification.ok ? out.green("verified") : out.red(`NOT VERIFIED from seq ${json.verification.problem?.seq}`);
        out.line(
          `${state}: ${json.entries} entries, spend $${json.spendUsd.toFixed(2)}; wrote ${path.join(dir, "report.md")} and report.json`,
        );
        if (!json.verification.ok) throw new Exit(1);
      });
    },
  );
}
