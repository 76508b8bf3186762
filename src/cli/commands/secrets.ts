/**
 * `outpost secrets set NAME | list | delete NAME`: the vault of the project's workspace, on the local store
 * (--project/--data, OUTPOST_DATABASE_URL) or on a server (--server, OUTPOST_API_KEY). A value is read from stdin
 * (hidden when typed) or from an environment variable (--from-env VAR), never from an argument: arguments end up in
 * shell history and in `ps`.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { OutpostError } from "../../core/errors.js";
import { addConnectionOptions, type ConnectionOptions, DEFAULT_DATA_DIR } from "../connect.js";
import { UsageError } from "../errors.js";
import { age, out, table } from "../output.js";

interface SecretRow {
  name: string;
  updated_at: string;
  updated_by: string | null;
}

/** What the commands need from a vault, local or remote. */
interface VaultAccess {
  set(name: string, value: string): Promise<{ created: boolean }>;
  list(): Promise<SecretRow[]>;
  delete(name: string): Promise<boolean>;
  where: string;
}

export function registerSecrets(program: Command): void {
  const secrets = program.command("secrets").description("store credentials for connections (referenced as secret://NAME)");

  const set = secrets
    .command("set")
    .description("store or replace a secret; the value comes from stdin (or --from-env VAR), never from an argument")
    .argument("<name>", "secret name (letters, digits, _ . -)")
    .option("--from-env <var>", "read the value from this environment variable");
  addConnectionOptions(set).action(async (name: string, opts: ConnectionOptions & { fromEnv?: string }) => {
    const value = opts.fromEnv !== undefined ? fromEnv(opts.fromEnv) : await fromStdin(name);
    await withVault(opts, async (vault) => {
      const { created } = await vault.set(name, value);
      out.line(`${created ? "stored" : "replaced"} secret ${name} (${vault.where}); reference it as secret://${name}`);
    });
  });

  const list = secrets
    .command("list")
    .alias("ls")
    .description("list secret names and when they changed (never values)")
    .option("--json", "print JSON");
  addConnectionOptions(list).action(async (opts: ConnectionOptions & { json?: boolean }) => {
    await withVault(opts, async (vault) => {
      const rows = await vault.list();
      if (opts.json) return out.line(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return out.line(out.dim("no secrets yet (outpost secrets set NAME)"));
      out.line(
        table(
          ["NAME", "UPDATED", "BY"],
          rows.map((r) => [r.name, age(r.updated_at), r.updated_by ?? "-"]),
        ),
      );
    });
  });

  const del = secrets.command("delete").alias("rm").description("delete a secret").argument("<name>", "secret name");
  addConnectionOptions(del).action(async (name: string, opts: ConnectionOptions) => {
    await withVault(opts, async (vault) => {
      if (!(await vault.delete(name))) {
        throw new OutpostError("not_found", `secret "${name}" does not exist (${vault.where})`, "list them with: outpost secrets list");
      }
      out.line(`deleted secret ${name}`);
    });
  });
}

function fromEnv(variable: string): string {
  const value = process.env[variable];
  if (!value)
    throw new UsageError(
      `the environment variable ${variable} is not set or empty`,
      `export ${variable}=… first, or pipe the value on stdin`,
    );
  return value;
}

/** Piped: all of stdin less one final line break. Typed: one hidden line. */
async function fromStdin(name: string): Promise<string> {
  const stdin = process.stdin;
  let value: string;
  if (stdin.isTTY) {
    process.stderr.write(`value of ${name} (hidden): `);
    value = await new Promise<string>((resolve, reject) => {
      let text = "";
      stdin.setRawMode(true);
      stdin.setEncoding("utf8");
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === "\r" || ch === "\n" || ch === "\u0004") return finish();
          if (ch === "\u0003") return finish(new UsageError("cancelled"));
          if (ch === "\u007f" || ch === "\b") text = text.slice(0, -1);
          else text += ch;
        }
      };
      const finish = (error?: Error) => {
        stdin.off("data", onData);
        stdin.setRawMode(false);
        stdin.pause();
        process.stderr.write("\n");
        if (error) reject(error);
        else resolve(text);
      };
      stdin.on("data", onData);
      stdin.resume();
    });
  } else {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(chunk as Buffer);
    value = Buffer.concat(chunks)
      .toString("utf8")
      .replace(/\r?\n$/, "");
  }
  if (!value) {
    throw new UsageError(
      `no value for secret ${name} on stdin`,
      `pipe it in (e.g. outpost secrets set ${name} < token.txt) or use --from-env VAR`,
    );
  }
  return value;
}

async function withVault(opts: ConnectionOptions, fn: (vault: VaultAccess) => Promise<void>): Promise<void> {
  const server = opts.server ?? process.env.OUTPOST_SERVER;
  if (server) return fn(remoteVault(server.replace(/\/+$/, "")));

  const projectDir = path.resolve(opts.project ?? ".");
  if (!existsSync(path.join(projectDir, "outpost.yaml"))) {
    throw new OutpostError(
      "not_found",
      `no Outpost project in ${projectDir} (no outpost.yaml), and no server named`,
      "name a project with --project DIR, or talk to a running Outpost with --server URL (or set OUTPOST_SERVER)",
    );
  }
  const { loadProject } = await import("../../definitions/index.js");
  const { openStore } = await import("../../store/index.js");
  const { Vault } = await import("../../security/vault/index.js");
  const { workspace } = await loadProject(projectDir);
  const dataDir = path.resolve(opts.data ?? DEFAULT_DATA_DIR);
  const databaseUrl = process.env.OUTPOST_DATABASE_URL || undefined;
  const store = await openStore({ dataDir, ...(databaseUrl ? { databaseUrl } : {}) });
  try {
    const vault = Vault.open(store.domain, { dataDir });
    await fn({
      where: `workspace ${workspace}, ${databaseUrl ? "PostgreSQL" : dataDir}`,
      set: (name, value) => vault.set(workspace, name, value, "local"),
      list: async () =>
        (await vault.list(workspace)).map((s) => ({
          name: s.name,
          updated_at: new Date(s.updatedAt).toISOString(),
          updated_by: s.updatedBy,
        })),
      delete: (name) => vault.delete(workspace, name, "local"),
    });
  } finally {
    await store.close();
  }
}

function remoteVault(base: string): VaultAccess {
  const apiKey = process.env.OUTPOST_API_KEY;
  const request = async (method: string, route: string, body?: unknown): Promise<Response> => {
    let response: Response;
    try {
      response = await fetch(`${base}${route}`, {
        method,
        headers: { ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      throw new OutpostError(
        "unavailable",
        `cannot reach the Outpost server at ${base}: ${(err as Error).message}`,
        "is it running (outpost up)?",
      );
    }
    if (response.ok || response.status === 404) return response;
    const answer = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string; hint?: string } } | null;
    const status = response.status;
    const code = status === 401 ? "unauthorized" : status === 403 ? "forbidden" : status === 400 ? "invalid_request" : "unavailable";
    throw new OutpostError(code, answer?.error?.message ?? `the server answered HTTP ${status}`, answer?.error?.hint);
  };
  return {
    where: base,
    async set(name, value) {
      const response = await request("PUT", `/v1/secrets/${encodeURIComponent(name)}`, { value });
      if (response.status === 404)
        throw new OutpostError("unavailable", `${base} has no vault (PUT /v1/secrets answered 404)`, "upgrade the server");
      return (await response.json()) as { created: boolean };
    },
    async list() {
      const response = await request("GET", "/v1/secrets");
      if (response.status === 404)
        throw new OutpostError("unavailable", `${base} has no vault (GET /v1/secrets answered 404)`, "upgrade the server");
      return ((await response.json()) as { secrets: SecretRow[] }).secrets;
    },
    async delete(name) {
      const response = await request("DELETE", `/v1/secrets/${encodeURIComponent(name)}`);
      return response.status !== 404;
    },
  };
}
