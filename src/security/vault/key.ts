/**
 * The vault's key: 32 bytes from OUTPOST_VAULT_KEY (base64), or from `<dataDir>/vault.key`, created (mode 0600)
 * with a random key the first time it is needed. Its id (first 16 hex of its SHA-256) is stored with each secret,
 * so a row written under another key is named as such instead of failing as "tampered".
 */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OutpostError } from "../../core/errors.js";

export interface VaultKey {
  readonly key: Buffer;
  /** First 16 hex digits of SHA-256(key). */
  readonly id: string;
  /** Where it came from, for messages: "OUTPOST_VAULT_KEY" or the key file's path. */
  readonly source: string;
}

export const VAULT_KEY_FILE = "vault.key";

export function keyId(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

function decodeKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  const key = /^[A-Za-z0-9+/_-]+=*$/.test(trimmed) ? Buffer.from(trimmed, "base64") : Buffer.alloc(0);
  if (key.length !== 32) {
    throw new OutpostError(
      "invalid_request",
      `${source} does not hold a vault key: it must be 32 bytes in base64 (44 characters), it decodes to ${key.length} bytes`,
      "create one with: openssl rand -base64 32",
    );
  }
  return key;
}

/** The key from the environment, else from the data folder's key file (created at first use). */
export function loadVaultKey(options: { env?: NodeJS.ProcessEnv; dataDir: string }): VaultKey {
  const fromEnv = (options.env ?? process.env).OUTPOST_VAULT_KEY;
  if (fromEnv) {
    const key = decodeKey(fromEnv, "OUTPOST_VAULT_KEY");
    return { key, id: keyId(key), source: "OUTPOST_VAULT_KEY" };
  }
  const file = join(options.dataDir, VAULT_KEY_FILE);
  mkdirSync(options.dataDir, { recursive: true });
  try {
    // "wx": two processes starting together never write two different keys.
    writeFileSync(file, `${randomBytes(32).toString("base64")}\n`, { flag: "wx", mode: 0o600 });
    chmodSync(file, 0o600); // the umask may have taken bits away; never added
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new OutpostError(
        "unavailable",
        `cannot create the vault key file ${file}: ${(err as Error).message}`,
        "make the data folder writable, or set OUTPOST_VAULT_KEY (openssl rand -base64 32)",
      );
    }
  }
  if (process.platform !== "win32" && (statSync(file).mode & 0o077) !== 0) {
    throw new OutpostError(
      "forbidden",
      `the vault key file ${file} can be read by other users (mode ${(statSync(file).mode & 0o777).toString(8)})`,
      `restrict it: chmod 600 ${file}`,
    );
  }
  const key = decodeKey(readFileSync(file, "utf8"), file);
  return { key, id: keyId(key), source: file };
}
