/**
 * `secret://name` in a connection setting (a header, an MCP stdio `env` value, a URL, an OpenAPI token): replaced by
 * the vault's value when connecting or calling, after `${VAR}` expansion (so a vault value is never expanded).
 */
import type { ConnectionSecrets } from "./source.js";

const SECRET_REF = /secret:\/\/([A-Za-z0-9_.-]+)/g;

export const hasSecretRef = (text: string): boolean => /secret:\/\/[A-Za-z0-9_.-]/.test(text);

/** A setting with its secret references resolved, and the values used (to mask). `where`: e.g. `connections.ledger.mcp.headers.Authorization`. */
export async function resolveSecretRefs(
  text: string,
  secrets: ConnectionSecrets | undefined,
  connection: string,
  where: string,
): Promise<{ text: string; values: string[] }> {
  const names = [...text.matchAll(SECRET_REF)].map(([, name]) => name!);
  if (names.length === 0) return { text, values: [] };
  if (!secrets) {
    throw new Error(
      `${where} refers to secret://${names[0]}, but this Outpost has no vault to read it from (start it with the security services, e.g. outpost up)`,
    );
  }
  const values = new Map<string, string>();
  for (const name of new Set(names)) values.set(name, await secrets.resolve(name, connection));
  return { text: text.replace(SECRET_REF, (_match, name: string) => values.get(name) ?? ""), values: [...values.values()] };
}
