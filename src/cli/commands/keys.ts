/**
 * `outpost keys create NAME --role R | list | revoke ID`: API keys of the project's workspace (or, for admins of
 * the default workspace, another one), on the local store (--project/--data, as the project's admin) or on a
 * server (--server, OUTPOST_API_KEY, through the client's key routes). A new key is printed once and never again.
 */
import path from "node:path";
import type { Command } from "commander";
import type { KeysApi, KeyView, NewKeyRequest } from "../../client/index.js";
import { OutpostError } from "../../core/errors.js";
import { ROLES } from "../../security/types.js";
import { keyView } from "../../server/routes/keys.js";
import { addConnectionOptions, type ConnectionOptions, DEFAULT_DATA_DIR, localFlags, quietLogger } from "../connect.js";
import { UsageError } from "../errors.js";
import { command } from "../hints.js";
import { age, out, table } from "../output.js";

interface KeyAccess extends KeysApi {
  /** Where the keys live, for messages. */
  where: string;
  /** Flags that reach the same keys, for suggested commands. */
  flags: string;
}

interface CreateOptions extends ConnectionOptions {
  role: string[];
  group: string[];
  workspace?: string;
  expires?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerKeys(program: Command): void {
  const keys = program.command("keys").description("API keys: who may call the Outpost API, with which roles (admins)");

  const create = keys
    .command("create")
    .description("create an API key; it is printed this once")
    .argument("<name>", "who or what uses it, e.g. ci-deploy or alice")
    .option("--role <role>", `a role (repeat for more): ${ROLES.join(", ")}`, collect, [])
    .option("--group <group>", "a group (repeat for more), e.g. finance: approvals can ask for an operator of a group", collect, [])
    .option("--workspace <id>", "another workspace (admins of the default workspace only)")
    .option("--expires <when>", "stop working after a duration (30d, 12h, 90m, 2w) or at an ISO date-time");
  addConnectionOptions(create).action(async (name: string, opts: CreateOptions) => {
    const request = createRequest(name, opts);
    await withKeys(opts, async (access) => {
      const created = await access.createKey(request);
      out.line(`created key ${created.id} "${created.name}" in workspace ${created.workspace} (${access.where})`);
      out.line(`  roles:   ${created.roles.join(", ")}${created.groups.length > 0 ? `   groups: ${created.groups.join(", ")}` : ""}`);
      if (created.expires_at) out.line(`  expires: ${created.expires_at}`);
      out.line();
      out.line(out.bold("The key") + out.yellow("  (shown this once: store it now; Outpost keeps only its hash)"));
      out.line(`  export OUTPOST_API_KEY=${created.key}`);
      out.line(out.dim(`  or send it as: authorization: Bearer ${created.key}`));
      out.line(out.dim(`revoke it with: ${command(["keys", "revoke", created.id], access.flags)}`));
    });
  });

  const list = keys
    .command("list")
    .alias("ls")
    .description("list API keys (never the keys themselves): prefix, roles, groups, created, last used, expires, revoked")
    .option("--workspace <id>", "another workspace (admins of the default workspace only)")
    .option("--json", "print JSON");
  addConnectionOptions(list).action(async (opts: ConnectionOptions & { workspace?: string; json?: boolean }) => {
    await withKeys(opts, async (access) => {
      const rows = await access.listKeys(opts.workspace !== undefined ? { workspace: opts.workspace } : {});
      if (opts.json) return out.line(JSON.stringify(rows, null, 2));
      if (rows.length === 0)
        return out.line(out.dim(`no keys yet (${command(["keys", "create", "NAME", "--role", "ROLE"], access.flags)})`));
      out.line(
        table(
          ["ID", "NAME", "PREFIX", "ROLES", "GROUPS", "CREATED", "LAST USED", "EXPIRES", "STATE"],
          rows.map((k) => [
            k.id,
            k.name,
            `${k.prefix}…`,
            k.roles.join(","),
            k.groups.join(",") || "-",
            age(k.created_at),
            k.last_used_at ? age(k.last_used_at) : "never",
            k.expires_at ?? "never",
            stateOf(k),
          ]),
        ),
      );
    });
  });

  const revoke = keys
    .command("revoke")
    .description("revoke an API key: it stops working at once")
    .argument("<id>", "key id (from outpost keys list)")
    .option("--workspace <id>", "another workspace (admins of the default workspace only)");
  addConnectionOptions(revoke).action(async (id: string, opts: ConnectionOptions & { workspace?: string }) => {
    await withKeys(opts, async (access) => {
      const revoked = await access.revokeKey(id, opts.workspace !== undefined ? { workspace: opts.workspace } : {});
      out.line(`revoked key ${revoked.id} "${revoked.name}" (${revoked.prefix}…) at ${revoked.revoked_at}`);
    });
  });
}

function stateOf(k: KeyView, now = Date.now()): string {
  if (k.revoked_at) return out.red(`revoked ${age(k.revoked_at, now)}`);
  if (k.expires_at && Date.parse(k.expires_at) <= now) return out.red("expired");
  return out.green("active");
}

/** Checks the flags before anything is opened, so a typo costs no store start. */
function createRequest(name: string, opts: CreateOptions): NewKeyRequest {
  if (opts.role.length === 0) {
    throw new UsageError(`a key needs at least one role (--role ROLE)`, `roles: ${ROLES.join(", ")} (e.g. --role operator)`);
  }
  for (const role of opts.role) {
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new UsageError(`--role ${role}: there is no role "${role}"`, `roles: ${ROLES.join(", ")}`);
    }
  }
  return {
    name,
    roles: [...new Set(opts.role)],
    ...(opts.group.length > 0 ? { groups: [...new Set(opts.group)] } : {}),
    ...(opts.workspace !== undefined ? { workspace: opts.workspace } : {}),
    ...(opts.expires !== undefined ? { expires_at: expiresAt(opts.expires) } : {}),
  };
}

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `30d`, `12h`, `90m`, `2w` from now, or an ISO date-time; as an ISO date-time in the future. */
export function expiresAt(text: string, now = Date.now()): string {
  const relative = /^(\d+)\s*([mhdw])$/i.exec(text.trim());
  const at = relative ? now + Number(relative[1]) * UNIT_MS[relative[2].toLowerCase()] : Date.parse(text);
  if (Number.isNaN(at) || (!relative && !/^\d{4}-\d{2}-\d{2}/.test(text.trim()))) {
    throw new UsageError(
      `--expires ${text}: not a duration or a date`,
      "use e.g. --expires 30d (also 12h, 90m, 2w) or --expires 2027-01-31T00:00:00Z",
    );
  }
  if (at <= now) throw new UsageError(`--expires ${text}: that is not in the future`, "give a duration such as 30d, or a later date");
  return new Date(at).toISOString();
}

async function withKeys(opts: ConnectionOptions, fn: (access: KeyAccess) => Promise<void>): Promise<void> {
  const server = (opts.server ?? process.env.OUTPOST_SERVER)?.replace(/\/+$/, "");
  if (server) {
    try {
      new URL(server);
    } catch {
      throw new UsageError(`"${server}" is not a server URL`, "use e.g. --server http://127.0.0.1:7700");
    }
    const { createClient } = await import("../../client/index.js");
    const client = createClient(server, { apiKey: process.env.OUTPOST_API_KEY || undefined });
    return fn({ ...pick(client), where: server, flags: opts.server !== undefined ? `--server ${server}` : "" });
  }
  return withLocalKeys(opts, fn);
}

const pick = (api: KeysApi): KeysApi => ({ createKey: api.createKey, listKeys: api.listKeys, revokeKey: api.revokeKey });

/** The local store, as the project's admin (the in-process owner): the same rules as the HTTP routes. */
async function withLocalKeys(opts: ConnectionOptions, fn: (access: KeyAccess) => Promise<void>): Promise<void> {
  const { existsSync } = await import("node:fs");
  const projectDir = path.resolve(opts.project ?? ".");
  if (!existsSync(path.join(projectDir, "outpost.yaml"))) {
    throw new OutpostError(
      "not_found",
      `no Outpost project in ${projectDir} (no outpost.yaml), and no server named`,
      "name a project with --project DIR, or talk to a running Outpost with --server URL (or set OUTPOST_SERVER)",
    );
  }
  const [{ loadProject }, { startOutpost }, { localCaller }] = await Promise.all([
    import("../../definitions/index.js"),
    import("../../runtime/index.js"),
    import("../../security/identity/index.js"),
  ]);
  const project = await loadProject(projectDir);
  const dataDir = path.resolve(opts.data ?? DEFAULT_DATA_DIR);
  const logger = await quietLogger();
  // No workers: managing keys must not resume anyone's runs.
  const outpost = await startOutpost({ project, dataDir, logger, redactor: logger.redactor, concurrency: 0 });
  const store = outpost.security.identities.store;
  const caller = localCaller(project.workspace);
  /** The local owner is the default workspace's admin: it may name another workspace, if it exists. */
  const target = async (named: string | undefined): Promise<string> => {
    if (named === undefined || named === caller.workspace) return caller.workspace;
    if (!(await store.getWorkspace(named))) {
      throw new OutpostError(
        "not_found",
        `workspace "${named}" does not exist`,
        `this project's workspace is ${caller.workspace}; create another with POST /v1/workspaces`,
      );
    }
    return named;
  };
  try {
    await fn({
      where: process.env.OUTPOST_DATABASE_URL ? "PostgreSQL" : dataDir,
      flags: localFlags(opts),
      async createKey(request) {
        const { key, record } = await store.createKey({
          workspace: await target(request.workspace),
          name: request.name,
          roles: request.roles as typeof caller.roles,
          groups: request.groups ?? [],
          createdBy: caller.id,
          expiresAt: request.expires_at !== undefined ? Date.parse(request.expires_at) : null,
        });
        return { ...keyView(record), key };
      },
      listKeys: async (request = {}) => (await store.listKeys(await target(request.workspace))).map(keyView),
      async revokeKey(id, request = {}) {
        const revoked = await store.revokeKey(await target(request.workspace), id, caller.id);
        if (!revoked) throw new OutpostError("not_found", `API key "${id}" does not exist`, "list the keys with: outpost keys list");
        return keyView(revoked);
      },
    });
  } finally {
    await outpost.close();
  }
}
