/**
 * OIDC / JWT bearer tokens, verified with jose against the issuer's JWKS (fetched and cached by jose) or a
 * configured public key. The token's subject becomes the caller `user:<sub>`; roles, groups and the
 * workspace come from configured claims.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from "jose";
import { OutpostError } from "../../core/errors.js";
import type { AuthSettings } from "../../definitions/types.js";
import { type Caller, ROLES, type Role } from "../types.js";

/** outpost.yaml `auth.oidc` as loaded (src/definitions). */
export type OidcSettings = NonNullable<AuthSettings["oidc"]>;

/** Why a token did not authenticate (for the audit log). */
export type TokenRejection =
  | "bad_signature"
  | "expired"
  | "wrong_issuer"
  | "wrong_audience"
  | "no_subject"
  | "no_workspace"
  | "invalid_token";

export class OidcVerifier {
  private constructor(
    private readonly settings: OidcSettings,
    private readonly key: KeyObject | ReturnType<typeof createRemoteJWKSet>,
    private readonly defaultWorkspace: string,
  ) {}

  static async create(settings: OidcSettings, defaultWorkspace: string): Promise<OidcVerifier> {
    if (settings.jwksUrl) return new OidcVerifier(settings, createRemoteJWKSet(new URL(settings.jwksUrl)), defaultWorkspace);
    if (!settings.publicKeyFile) {
      throw new OutpostError("invalid_project", "auth.oidc needs jwks_url or public_key_file", "name where the issuer's public keys are");
    }
    let text: string;
    try {
      text = await readFile(settings.publicKeyFile, "utf8");
    } catch (err) {
      throw new OutpostError(
        "invalid_project",
        `auth.oidc.public_key_file ${settings.publicKeyFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
        "point it at the issuer's public key (PEM or JWK)",
      );
    }
    let key: KeyObject;
    try {
      key = text.trimStart().startsWith("{")
        ? createPublicKey({ key: JSON.parse(text), format: "jwk" })
        : createPublicKey({ key: text, format: "pem" });
    } catch {
      throw new OutpostError(
        "invalid_project",
        `auth.oidc.public_key_file ${settings.publicKeyFile} is not a public key`,
        "use the issuer's public key as PEM (-----BEGIN PUBLIC KEY-----) or as a JWK",
      );
    }
    if (key.type !== "public") {
      throw new OutpostError(
        "invalid_project",
        `auth.oidc.public_key_file ${settings.publicKeyFile} holds a private key`,
        "give the public key only",
      );
    }
    return new OidcVerifier(settings, key, defaultWorkspace);
  }

  /** A token without an expiry would be good forever: `exp` is required, like the issuer and audience. */
  private get verifyOptions() {
    return { issuer: this.settings.issuer, audience: this.settings.audience, requiredClaims: ["exp"] };
  }

  async verify(token: string): Promise<{ caller: Caller } | { rejected: TokenRejection }> {
    let payload: JWTPayload;
    try {
      const verified =
        typeof this.key === "function"
          ? await jwtVerify(token, this.key, this.verifyOptions)
          : await jwtVerify(token, this.key, this.verifyOptions);
      payload = verified.payload;
    } catch (err) {
      return { rejected: rejectionOf(err) };
    }
    if (typeof payload.sub !== "string" || payload.sub === "") return { rejected: "no_subject" };
    let workspace = this.defaultWorkspace;
    if (this.settings.workspaceClaim) {
      const w = claim(payload, this.settings.workspaceClaim);
      if (typeof w !== "string" || w === "") return { rejected: "no_workspace" };
      workspace = w;
    }
    const roles = strings(claim(payload, this.settings.rolesClaim)).filter((r): r is Role => ROLES.includes(r as Role));
    const groups = strings(claim(payload, this.settings.groupsClaim));
    const name = [payload.name, payload.email, payload.preferred_username].find((v) => typeof v === "string") as string | undefined;
    return {
      caller: { workspace, id: `user:${payload.sub}`, name: name ?? payload.sub, roles: [...new Set(roles)], groups, via: "oidc" },
    };
  }
}

function rejectionOf(err: unknown): TokenRejection {
  if (err instanceof errors.JWTExpired) return "expired";
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "iss") return "wrong_issuer";
    if (err.claim === "aud") return "wrong_audience";
    return "invalid_token";
  }
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey) return "bad_signature";
  return "invalid_token";
}

function claim(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** A claim as a list of strings: an array, or one space/comma separated string. */
function strings(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string");
  if (typeof value === "string") return value.split(/[\s,]+/).filter(Boolean);
  return [];
}
