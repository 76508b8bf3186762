/**
 * outpost.yaml `auth:` after the schema: OIDC names exactly one source of the issuer's keys, and a public key
 * file is there to read.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import type { Issue } from "./errors.js";
import type { ProjectFile } from "./schemas.js";
import type { AuthSettings } from "./types.js";
import type { YamlSource } from "./yaml-source.js";

export function toAuth(input: ProjectFile["auth"], source: YamlSource, root: string, issues: Issue[]): AuthSettings | undefined {
  if (!input) return undefined;
  const auth: AuthSettings = {};
  if (input.rate_limit) auth.rateLimit = { perMinute: input.rate_limit.per_minute };
  const o = input.oidc;
  if (o) {
    const at = (field?: string) => ({
      file: source.file,
      line: source.lineOf(field ? ["auth", "oidc", field] : ["auth", "oidc"]),
      path: field ? `auth.oidc.${field}` : "auth.oidc",
    });
    if ((o.jwks_url === undefined) === (o.public_key_file === undefined)) {
      issues.push({
        ...at(),
        message:
          o.jwks_url === undefined
            ? "auth.oidc needs the issuer's keys — add jwks_url: <the issuer's JWKS URL> or public_key_file: <PEM or JWK file>"
            : "auth.oidc names both jwks_url and public_key_file — keep one",
      });
      return auth;
    }
    const publicKeyFile = o.public_key_file === undefined ? undefined : path.resolve(root, o.public_key_file);
    if (publicKeyFile !== undefined && !existsSync(publicKeyFile)) {
      issues.push({ ...at("public_key_file"), message: `no file ${o.public_key_file} in the project — put the issuer's public key there` });
      return auth;
    }
    auth.oidc = {
      issuer: o.issuer,
      audience: o.audience,
      ...(o.jwks_url !== undefined ? { jwksUrl: o.jwks_url } : {}),
      ...(publicKeyFile !== undefined ? { publicKeyFile } : {}),
      rolesClaim: o.roles_claim,
      groupsClaim: o.groups_claim,
      ...(o.workspace_claim !== undefined ? { workspaceClaim: o.workspace_claim } : {}),
    };
  }
  return auth;
}
