/**
 * The Ed25519 key that signs audit checkpoints. From OUTPOST_AUDIT_SIGNING_KEY (PKCS#8 PEM), else the key file
 * `<dataDir>/audit-signing.key` (created 0600 at first use) with its public key beside it (`audit-signing.pub`),
 * so anyone holding the public key can verify the log. Processes sharing one PostgreSQL need the same key (the env).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OutpostError } from "../../core/errors.js";
import { canonicalJson } from "./chain.js";

export const SIGNING_KEY_FILE = "audit-signing.key";
export const PUBLIC_KEY_FILE = "audit-signing.pub";

export interface AuditSigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** First 16 hex of SHA-256 of the raw 32-byte public key. */
  keyId: string;
  publicKeyPem: string;
}

export function keyIdOf(publicKey: KeyObject): string {
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url");
  return createHash("sha256").update(raw).digest("hex").slice(0, 16);
}

function fromPrivate(privateKey: KeyObject, where: string): AuditSigningKey {
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new OutpostError(
      "invalid_request",
      `${where} holds a ${privateKey.asymmetricKeyType} key; audit checkpoints are signed with Ed25519`,
      "create one with: openssl genpkey -algorithm ed25519",
    );
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), publicKeyPem: publicKey.export({ format: "pem", type: "spki" }) as string };
}

function parsePrivate(pem: string, where: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new OutpostError(
      "invalid_request",
      `${where} is not a PKCS#8 PEM private key (${(err as Error).message})`,
      "set it to the text of a key made with: openssl genpkey -algorithm ed25519",
    );
  }
}

/** The signing key: from the environment, or the data folder's key file (made on first use). */
export function loadAuditSigningKey(options: { dataDir: string; env?: NodeJS.ProcessEnv }): AuditSigningKey {
  const env = options.env ?? process.env;
  const fromEnv = env.OUTPOST_AUDIT_SIGNING_KEY;
  if (fromEnv) return fromPrivate(parsePrivate(fromEnv.replace(/\\n/g, "\n"), "OUTPOST_AUDIT_SIGNING_KEY"), "OUTPOST_AUDIT_SIGNING_KEY");
  const keyPath = join(options.dataDir, SIGNING_KEY_FILE);
  if (!existsSync(keyPath)) {
    mkdirSync(options.dataDir, { recursive: true });
    const { privateKey } = generateKeyPairSync("ed25519");
    try {
      // wx: another process creating it at the same moment wins, and this one reads its key.
      writeFileSync(keyPath, privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600, flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  const key = fromPrivate(parsePrivate(readFileSync(keyPath, "utf8"), keyPath), keyPath);
  const pubPath = join(options.dataDir, PUBLIC_KEY_FILE);
  if (!existsSync(pubPath)) writeFileSync(pubPath, key.publicKeyPem, { mode: 0o644 });
  return key;
}

/** A public key from PEM text (SPKI), or derived from a private key's PEM. */
export function parsePublicKey(pem: string, where: string): KeyObject {
  try {
    const key = createPublicKey(pem);
    if (key.asymmetricKeyType !== "ed25519") throw new Error(`a ${key.asymmetricKeyType} key, not Ed25519`);
    return key;
  } catch (err) {
    throw new OutpostError(
      "invalid_request",
      `${where} is not an Ed25519 public key in PEM form (${(err as Error).message})`,
      `use the ${PUBLIC_KEY_FILE} file written beside the signing key`,
    );
  }
}

/** What a checkpoint's signature covers: the canonical JSON of {workspace, seq, hash}. */
const checkpointText = (workspace: string, seq: number, hash: string) => Buffer.from(canonicalJson({ workspace, seq, hash }));

export function signCheckpoint(key: AuditSigningKey, workspace: string, seq: number, hash: string): string {
  return sign(null, checkpointText(workspace, seq, hash), key.privateKey).toString("base64");
}

export function checkpointSignatureValid(publicKey: KeyObject, workspace: string, seq: number, hash: string, signature: string): boolean {
  try {
    return verify(null, checkpointText(workspace, seq, hash), publicKey, Buffer.from(signature, "base64"));
  } catch {
    return false;
  }
}
