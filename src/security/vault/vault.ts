/**
 * The secret vault: values encrypted with AES-256-GCM in the store's `secrets` table, one row per
 * (workspace, name), readable by both drivers through `store.domain`.
 *
 * Each write draws a fresh 12-byte nonce; the additional authenticated data is `workspace + "\n" + name`, so a
 * ciphertext copied to another row or another tenant fails to decrypt instead of handing its value over.
 * Values never appear in an error, a list or a log line: only names and times do.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { OutpostError } from "../../core/errors.js";
import type { DomainStorage } from "../../store/types.js";
import { appendToOutbox } from "../audit/outbox.js";
import { loadVaultKey, type VaultKey } from "./key.js";

export const SECRET_NAME = /^[A-Za-z0-9_.-]+$/;
const MAX_NAME_LENGTH = 200;
/** Tokens, keys and certificates fit; a secret is not a place for documents. */
const MAX_VALUE_BYTES = 64 * 1024;

export interface SecretInfo {
  name: string;
  createdAt: number;
  updatedAt: number;
  /** Who set it last (`key:<id>`, `user:<sub>`, `local`). */
  updatedBy: string | null;
}

/** What changed, for the audit log (`secret.changed` {name, change}); the value is never part of it. */
export interface SecretChange {
  workspace: string;
  name: string;
  change: "set" | "deleted";
  by: string | null;
}

export interface VaultOptions {
  /** Called after each committed change (the integrator appends `secret.changed` to the audit log). Must not throw. */
  onChanged?: (change: SecretChange) => void;
}

export function checkSecretName(name: string): void {
  if (!SECRET_NAME.test(name) || name.length > MAX_NAME_LENGTH) {
    throw new OutpostError(
      "invalid_request",
      `"${name.length > 60 ? `${name.slice(0, 60)}…` : name}" is not a secret name: use letters, digits, "_", "." and "-" (at most ${MAX_NAME_LENGTH})`,
      "e.g. ledger_token or acme.helpdesk-key",
    );
  }
}

const aad = (workspace: string, name: string) => Buffer.from(`${workspace}\n${name}`, "utf8");

export class Vault {
  constructor(
    private readonly storage: DomainStorage,
    private readonly key: VaultKey,
    private readonly options: VaultOptions = {},
  ) {}

  /** A vault over a store, its key from OUTPOST_VAULT_KEY or `<dataDir>/vault.key` (created 0600 at first use). */
  static open(storage: DomainStorage, where: { dataDir: string; env?: NodeJS.ProcessEnv }, options: VaultOptions = {}): Vault {
    return new Vault(storage, loadVaultKey(where), options);
  }

  /** The id of the key in use (first 16 hex of its SHA-256): which key a row was written under. */
  get keyId(): string {
    return this.key.id;
  }

  /** Stores (or replaces) a secret; returns whether it was new. */
  async set(workspace: string, name: string, value: string, by: string | null): Promise<{ created: boolean }> {
    checkSecretName(name);
    if (typeof value !== "string" || value.length === 0) {
      throw new OutpostError("invalid_request", `the value of secret ${name} is empty`, "give the secret's value (on stdin for the CLI)");
    }
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES) {
      throw new OutpostError(
        "payload_too_large",
        `the value of secret ${name} is larger than ${MAX_VALUE_BYTES / 1024} KiB`,
        "store a token or key, not a document",
      );
    }
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key.key, nonce);
    cipher.setAAD(aad(workspace, name));
    const ciphertext = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
    const tag = cipher.getAuthTag();
    const now = Date.now();
    const row = {
      ciphertext: ciphertext.toString("base64"),
      nonce: nonce.toString("base64"),
      tag: tag.toString("base64"),
      key_id: this.key.id,
      updated_at: now,
      updated_by: by,
    };
    const created = await this.storage.write(async (trx) => {
      const existing = await trx
        .selectFrom("secrets")
        .select("name")
        .where("workspace", "=", workspace)
        .where("name", "=", name)
        .executeTakeFirst();
      await trx
        .insertInto("secrets")
        .values({ workspace, name, created_at: now, ...row })
        .onConflict((oc) => oc.columns(["workspace", "name"]).doUpdateSet(row))
        .execute();
      await appendToOutbox(trx, workspace, [{ kind: "secret.changed", actor: by ?? "local", data: { name, change: "set" } }], now);
      return existing === undefined;
    });
    this.options.onChanged?.({ workspace, name, change: "set", by });
    return { created };
  }

  /** The value, or null when the workspace has no such secret. A row that fails to decrypt is an error naming it. */
  async get(workspace: string, name: string): Promise<string | null> {
    const row = await this.storage.db
      .selectFrom("secrets")
      .select(["ciphertext", "nonce", "tag", "key_id"])
      .where("workspace", "=", workspace)
      .where("name", "=", name)
      .executeTakeFirst();
    if (!row) return null;
    if (row.key_id !== this.key.id) {
      throw new OutpostError(
        "unavailable",
        `secret ${name} of workspace ${workspace} was stored under vault key ${row.key_id}, but the key in use (${this.key.source}) is ${this.key.id}`,
        "start Outpost with the key it was stored under (OUTPOST_VAULT_KEY or <data>/vault.key), or set the secret again: outpost secrets set " +
          name,
      );
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key.key, Buffer.from(row.nonce, "base64"));
      decipher.setAAD(aad(workspace, name));
      decipher.setAuthTag(Buffer.from(row.tag, "base64"));
      return Buffer.concat([decipher.update(Buffer.from(row.ciphertext, "base64")), decipher.final()]).toString("utf8");
    } catch {
      throw new OutpostError(
        "unavailable",
        `secret ${name} of workspace ${workspace} fails its integrity check: its row in the secrets table was changed, or copied from another secret or workspace`,
        `check who wrote to the database; then set it again: outpost secrets set ${name}`,
      );
    }
  }

  /** Names and times, never values; sorted by name. */
  async list(workspace: string): Promise<SecretInfo[]> {
    const rows = await this.storage.db
      .selectFrom("secrets")
      .select(["name", "created_at", "updated_at", "updated_by"])
      .where("workspace", "=", workspace)
      .orderBy("name")
      .execute();
    return rows.map((r) => ({ name: r.name, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at), updatedBy: r.updated_by }));
  }

  /** Removes a secret; returns whether there was one. */
  async delete(workspace: string, name: string, by: string | null = null): Promise<boolean> {
    checkSecretName(name);
    const result = await this.storage.write(async (trx) => {
      const r = await trx.deleteFrom("secrets").where("workspace", "=", workspace).where("name", "=", name).executeTakeFirst();
      if (Number(r.numDeletedRows) > 0) {
        await appendToOutbox(trx, workspace, [{ kind: "secret.changed", actor: by ?? "local", data: { name, change: "deleted" } }]);
      }
      return r;
    });
    const deleted = Number(result.numDeletedRows) > 0;
    if (deleted) this.options.onChanged?.({ workspace, name, change: "deleted", by });
    return deleted;
  }
}
