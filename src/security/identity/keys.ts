/**
 * API keys: `opk_` + 43 base62 characters (~256 bits). Only the SHA-256 of a key is stored, with a short
 * prefix to recognise it in listings; the key itself is shown once, when it is created.
 */
import { createHash, randomBytes } from "node:crypto";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const KEY_PREFIX = "opk_";
/** At least 32 base62 characters after the prefix (adopted keys too). */
export const KEY_PATTERN = /^opk_[0-9A-Za-z]{32,128}$/;
const BODY_LENGTH = 43;

export function generateKey(): string {
  let body = "";
  while (body.length < BODY_LENGTH) {
    for (const b of randomBytes(64)) {
      // 248 = 4 × 62: drop the rest so every character is equally likely.
      if (b < 248 && body.length < BODY_LENGTH) body += BASE62[b % 62];
    }
  }
  return `${KEY_PREFIX}${body}`;
}

export const hashKey = (key: string): string => createHash("sha256").update(key).digest("hex");

/** What listings show of a key: enough to tell keys apart, far too little to use. */
export const keyPrefix = (key: string): string => key.slice(0, KEY_PREFIX.length + 6);

export const isApiKey = (token: string): boolean => token.startsWith(KEY_PREFIX);
