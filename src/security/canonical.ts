/** RFC 8785 (JSON Canonicalization Scheme) text of a value, and its SHA-256: what hashes and signatures cover. */
import { createHash } from "node:crypto";
import * as jcs from "canonicalize";

// A CommonJS package whose typings declare an ES default export: take the function however it arrives.
const serialize = ((jcs as unknown as { default?: unknown }).default ?? jcs) as (value: unknown) => string | undefined;

export function canonicalJson(value: unknown): string {
  const text = serialize(value);
  if (text === undefined) throw new TypeError("value has no JSON form");
  return text;
}

export const sha256Hex = (text: string): string => createHash("sha256").update(text).digest("hex");
