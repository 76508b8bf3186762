/**
 * Tool names on the wire. Outpost names contain dots (`orders.lookup`), but
 * OpenAI, Anthropic and Bedrock all require `^[a-zA-Z0-9_-]{1,64}$`. We encode
 * `.` as `__`, any other forbidden character as `_x<hex>_`, and shorten names
 * over 64 characters with a hash. Decoding uses the table of the request's
 * tools, so it is exact even for names the rule alone could not invert; a
 * name the model invented is decoded by the rule (`__` → `.`) and otherwise
 * returned as the model wrote it.
 */
import { ModelError } from "../types.js";

const VALID = /^[a-zA-Z0-9_-]{1,64}$/;
const cache = new Map<string, string>();

export function encodeToolName(name: string): string {
  if (VALID.test(name)) return name;
  let encoded = cache.get(name);
  if (encoded !== undefined) return encoded;
  encoded = name.replace(/[^a-zA-Z0-9_-]/g, (c) => (c === "." ? "__" : `_x${(c.codePointAt(0) ?? 0).toString(16)}_`));
  if (encoded.length === 0) encoded = "_";
  if (encoded.length > 64) encoded = `${encoded.slice(0, 55)}_${fnv1a(name)}`;
  cache.set(name, encoded);
  return encoded;
}

/** Maps wire names back to Outpost names for one request. */
export class ToolNameTable {
  private readonly byWire = new Map<string, string>();

  constructor(names: Iterable<string>) {
    for (const name of names) {
      const wire = encodeToolName(name);
      const other = this.byWire.get(wire);
      if (other !== undefined && other !== name) {
        throw new ModelError(
          `tools "${other}" and "${name}" have the same name on the wire ("${wire}"); rename one of them`,
          "bad_request",
          false,
        );
      }
      this.byWire.set(wire, name);
    }
  }

  encode(name: string): string {
    return encodeToolName(name);
  }

  decode(wire: string): string {
    return this.byWire.get(wire) ?? decodeByRule(wire);
  }
}

function decodeByRule(wire: string): string {
  return wire.replace(/_x([0-9a-f]{1,6})_/g, (_, hex: string) => String.fromCodePoint(Number.parseInt(hex, 16))).replace(/__/g, ".");
}

function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}
