/**
 * Who is calling: the auth hook (./auth.ts) puts the authenticated Caller on every request but
 * /v1/health. Routes read it with `callerOf` and guard what they do with `requireRole`.
 */
import type { FastifyRequest } from "fastify";
import { OutpostError } from "../core/errors.js";
import type { Caller, Role } from "../security/types.js";

declare module "fastify" {
  interface FastifyRequest {
    caller?: Caller;
  }
}

export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) {
    throw new OutpostError("unauthorized", "this endpoint needs credentials", "send Authorization: Bearer <API key or token>");
  }
  return request.caller;
}

/** The caller, if it holds one of `roles` (admins hold every role); a 403 naming what is needed otherwise. */
export function requireRole(request: FastifyRequest, ...roles: Role[]): Caller {
  const caller = callerOf(request);
  if (caller.roles.includes("admin") || roles.some((r) => caller.roles.includes(r))) return caller;
  throw new OutpostError(
    "forbidden",
    `${request.method} ${request.routeOptions.url ?? request.url} needs the role ${roles.join(" or ")}; ${caller.name} has ${caller.roles.join(", ") || "no role"}`,
    "ask a workspace admin for a key with that role (outpost keys create NAME --role ROLE)",
  );
}
