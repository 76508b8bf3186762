/**
 * Tenants and API keys, over the shared database (one code path for SQLite and PostgreSQL).
 */
import { OutpostError } from "../../core/errors.js";
import { newId } from "../../core/ids.js";
import type { ApiKeysTable } from "../../store/schema.js";
import type { DomainStorage } from "../../store/types.js";
import { appendToOutbox } from "../audit/outbox.js";
import { type Caller, ROLES, type Role } from "../types.js";
import { generateKey, hashKey, KEY_PATTERN, keyPrefix } from "./keys.js";

export interface ApiKeyRecord {
  id: string;
  workspace: string;
  name: string;
  /** The key's first characters, to recognise it (`opk_AbC123`). */
  prefix: string;
  roles: Role[];
  groups: string[];
  createdBy: string | null;
  createdAt: number;
  lastUsedAt: number | null;
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface NewKey {
  workspace: string;
  name: string;
  roles: Role[];
  groups?: string[];
  /** Who created it (`key:<id>`, `user:<sub>`, `local`). */
  createdBy: string | null;
  /** Epoch ms after which the key no longer works. */
  expiresAt?: number | null;
}

export interface WorkspaceRecord {
  id: string;
  displayName: string;
  createdAt: number;
}

/** Why a key did not authenticate (for the audit log; never told to the client, which just gets 401). */
export type KeyRejection = "unknown_key" | "revoked" | "expired" | "malformed";

const WORKSPACE_PATTERN = /^[a-z][a-z0-9_-]*$/;
const GROUP_PATTERN = /^[a-z][a-z0-9_.-]*$/;
/** last_used_at is written at most this often per key: authentication stays a read. */
const LAST_USED_EVERY_MS = 60_000;

export class IdentityStore {
  constructor(
    private readonly storage: DomainStorage,
    private readonly now: () => number = Date.now,
  ) {}

  /** Creates the workspace if it does not exist yet. */
  async ensureWorkspace(id: string, displayName = id): Promise<{ workspace: WorkspaceRecord; created: boolean }> {
    checkWorkspace(id);
    const at = this.now();
    const inserted = await this.storage.write((trx) =>
      trx
        .insertInto("workspaces")
        .values({ id, display_name: displayName, created_at: at })
        .onConflict((oc) => oc.column("id").doNothing())
        .executeTakeFirst(),
    );
    const workspace = await this.getWorkspace(id);
    if (!workspace) throw new Error(`workspace ${id} vanished after it was created`);
    return { workspace, created: Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0 };
  }

  async getWorkspace(id: string): Promise<WorkspaceRecord | null> {
    const row = await this.storage.db.selectFrom("workspaces").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? { id: row.id, displayName: row.display_name, createdAt: Number(row.created_at) } : null;
  }

  /** A new key; `key` is the only time the secret exists outside the caller's hands. */
  async createKey(input: NewKey): Promise<{ key: string; record: ApiKeyRecord }> {
    const key = generateKey();
    return { key, record: await this.insertKey(input, key) };
  }

  /**
   * Stores a key chosen elsewhere (OUTPOST_ADMIN_KEY at first start, test fixtures). Adopting the same key
   * into the same workspace again returns the existing record; a key held by another workspace is refused.
   */
  async adoptKey(workspace: string, key: string, input: Omit<NewKey, "workspace">): Promise<ApiKeyRecord> {
    if (!KEY_PATTERN.test(key)) {
      throw new OutpostError(
        "invalid_request",
        `the key to adopt (${keyPrefix(key)}…) is not an Outpost API key`,
        "an API key is opk_ followed by at least 32 letters and digits; leave OUTPOST_ADMIN_KEY unset to have one generated",
      );
    }
    const existing = await this.storage.db.selectFrom("api_keys").selectAll().where("hash", "=", hashKey(key)).executeTakeFirst();
    if (existing) {
      if (existing.workspace !== workspace) {
        throw new OutpostError("conflict", "that key already belongs to another workspace", "generate a new key for this workspace");
      }
      return recordOf(existing);
    }
    return this.insertKey({ ...input, workspace }, key);
  }

  private async insertKey(input: NewKey, key: string): Promise<ApiKeyRecord> {
    checkWorkspace(input.workspace);
    const name = input.name.trim();
    if (name === "" || name.length > 100 || name.includes("\u0000")) {
      throw new OutpostError(
        "invalid_request",
        "a key needs a name of 1 to 100 characters",
        "name it after who or what uses it, e.g. ci-deploy",
      );
    }
    const roles = checkRoles(input.roles);
    const groups = [...new Set(input.groups ?? [])];
    for (const g of groups) {
      if (!GROUP_PATTERN.test(g)) {
        throw new OutpostError("invalid_request", `group "${g}" is not a valid group name`, "groups are lowercase, e.g. finance");
      }
    }
    const at = this.now();
    if (input.expiresAt != null && input.expiresAt <= at) {
      throw new OutpostError("invalid_request", "expires_at is in the past", "give a time in the future, or none");
    }
    const row: ApiKeysTable = {
      id: newId("key"),
      workspace: input.workspace,
      name,
      prefix: keyPrefix(key),
      hash: hashKey(key),
      roles: JSON.stringify(roles),
      groups: JSON.stringify(groups),
      created_by: input.createdBy,
      created_at: at,
      last_used_at: null,
      expires_at: input.expiresAt ?? null,
      revoked_at: null,
    };
    await this.storage.write(async (trx) => {
      await trx
        .insertInto("workspaces")
        .values({ id: input.workspace, display_name: input.workspace, created_at: at })
        .onConflict((oc) => oc.column("id").doNothing())
        .execute();
      await trx.insertInto("api_keys").values(row).execute();
      await appendToOutbox(
        trx,
        input.workspace,
        [{ kind: "key.created", actor: input.createdBy ?? "system", data: { key_id: row.id, name, roles, groups, prefix: row.prefix } }],
        at,
      );
    });
    return recordOf(row);
  }

  /** Every key of the workspace, newest first (revoked and expired ones too, marked as such). */
  async listKeys(workspace: string): Promise<ApiKeyRecord[]> {
    const rows = await this.storage.db
      .selectFrom("api_keys")
      .selectAll()
      .where("workspace", "=", workspace)
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .execute();
    return rows.map(recordOf);
  }

  /** Keys that still work (not revoked, not expired). */
  async countActiveKeys(workspace: string): Promise<number> {
    const now = this.now();
    const row = await this.storage.db
      .selectFrom("api_keys")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("workspace", "=", workspace)
      .where("revoked_at", "is", null)
      .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Revokes a key of `workspace`; null when the workspace has no such key (another workspace's key is "no such key"). */
  async revokeKey(workspace: string, id: string, by: string | null = null): Promise<ApiKeyRecord | null> {
    const at = this.now();
    await this.storage.write(async (trx) => {
      const r = await trx
        .updateTable("api_keys")
        .set({ revoked_at: at })
        .where("workspace", "=", workspace)
        .where("id", "=", id)
        .where("revoked_at", "is", null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 1) {
        await appendToOutbox(trx, workspace, [{ kind: "key.revoked", actor: by ?? "system", data: { key_id: id } }], at);
      }
    });
    const row = await this.storage.db
      .selectFrom("api_keys")
      .selectAll()
      .where("workspace", "=", workspace)
      .where("id", "=", id)
      .executeTakeFirst();
    return row ? recordOf(row) : null;
  }

  async authenticateKey(key: string): Promise<Caller | null> {
    const r = await this.verifyKey(key);
    return "caller" in r ? r.caller : null;
  }

  /** The caller a key stands for, or why it does not stand for one. */
  async verifyKey(key: string): Promise<{ caller: Caller } | { rejected: KeyRejection }> {
    if (!KEY_PATTERN.test(key)) return { rejected: "malformed" };
    const row = await this.storage.db.selectFrom("api_keys").selectAll().where("hash", "=", hashKey(key)).executeTakeFirst();
    if (!row) return { rejected: "unknown_key" };
    const now = this.now();
    if (row.revoked_at !== null) return { rejected: "revoked" };
    if (row.expires_at !== null && Number(row.expires_at) <= now) return { rejected: "expired" };
    if (row.last_used_at === null || Number(row.last_used_at) < now - LAST_USED_EVERY_MS) {
      await this.storage.write((trx) =>
        trx
          .updateTable("api_keys")
          .set({ last_used_at: now })
          .where("id", "=", row.id)
          .where((eb) => eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", now - LAST_USED_EVERY_MS)]))
          .execute(),
      );
    }
    const record = recordOf(row);
    return {
      caller: {
        workspace: record.workspace,
        id: `key:${record.id}`,
        name: record.name,
        roles: record.roles,
        groups: record.groups,
        via: "api_key",
        keyId: record.id,
      },
    };
  }
}

function recordOf(row: ApiKeysTable): ApiKeyRecord {
  return {
    id: row.id,
    workspace: row.workspace,
    name: row.name,
    prefix: row.prefix,
    roles: JSON.parse(row.roles) as Role[],
    groups: JSON.parse(row.groups) as string[],
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}

function checkWorkspace(id: string): void {
  if (!WORKSPACE_PATTERN.test(id) || id.length > 64) {
    throw new OutpostError(
      "invalid_request",
      `"${id.slice(0, 64)}" is not a valid workspace name`,
      "workspace names are lowercase letters, digits, - and _, starting with a letter (e.g. acme)",
    );
  }
}

export function checkRoles(roles: readonly string[]): Role[] {
  if (roles.length === 0) {
    throw new OutpostError("invalid_request", "a key needs at least one role", `roles: ${ROLES.join(", ")}`);
  }
  for (const r of roles) {
    if (!ROLES.includes(r as Role)) {
      throw new OutpostError("invalid_request", `unknown role "${r}"`, `roles: ${ROLES.join(", ")}`);
    }
  }
  return [...new Set(roles)] as Role[];
}
