/**
 * Workspaces and API keys over HTTP (admins): `POST /v1/workspaces`, `POST /v1/keys` (the key is in the 201
 * answer, and never again), `GET /v1/keys`, `DELETE /v1/keys/{id}`. An admin manages the keys of its own
 * workspace; admins of the project's default workspace may create workspaces and manage keys in any of them.
 * Another workspace's key is "not found", never "forbidden".
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { notFound, OutpostError } from "../../core/errors.js";
import type { ApiKeyRecord, Identities } from "../../security/identity/index.js";
import { ROLES, type Role } from "../../security/types.js";
import { callerOf } from "../caller.js";

const errorResponse = { $ref: "Error#" };
const NAME = { type: "string", pattern: "^[a-z][a-z0-9_-]*$", maxLength: 64 } as const;
const keyInfo = {
  type: "object",
  required: [
    "id",
    "workspace",
    "name",
    "prefix",
    "roles",
    "groups",
    "created_by",
    "created_at",
    "last_used_at",
    "expires_at",
    "revoked_at",
  ],
  properties: {
    id: { type: "string" },
    workspace: { type: "string" },
    name: { type: "string" },
    prefix: { type: "string", description: "the key's first characters, to recognise it" },
    roles: { type: "array", items: { type: "string", enum: [...ROLES] } },
    groups: { type: "array", items: { type: "string" } },
    created_by: { type: ["string", "null"] },
    created_at: { type: "string", format: "date-time" },
    last_used_at: { type: ["string", "null"], format: "date-time" },
    expires_at: { type: ["string", "null"], format: "date-time" },
    revoked_at: { type: ["string", "null"], format: "date-time" },
  },
} as const;
const workspaceQuery = {
  type: "object",
  properties: { workspace: { ...NAME, description: "another workspace (admins of the default workspace only)" } },
  additionalProperties: false,
} as const;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
/** The record as GET /v1/keys shows it (and the CLI prints locally): one shape wherever it is read. */
export const keyView = (k: ApiKeyRecord) => ({
  id: k.id,
  workspace: k.workspace,
  name: k.name,
  prefix: k.prefix,
  roles: k.roles,
  groups: k.groups,
  created_by: k.createdBy,
  created_at: new Date(k.createdAt).toISOString(),
  last_used_at: iso(k.lastUsedAt),
  expires_at: iso(k.expiresAt),
  revoked_at: iso(k.revokedAt),
});

export async function registerKeyRoutes(server: FastifyInstance, identities: Identities, defaultWorkspace: string): Promise<void> {
  /** The workspace a request acts on: the caller's own, or (default-workspace admins) one it names that exists. */
  const target = async (request: FastifyRequest, named: string | undefined): Promise<string> => {
    const caller = callerOf(request);
    if (named === undefined || named === caller.workspace) return caller.workspace;
    if (caller.workspace !== defaultWorkspace || !(await identities.store.getWorkspace(named))) {
      throw notFound("workspace", named, caller.workspace === defaultWorkspace ? "create it with POST /v1/workspaces" : undefined);
    }
    return named;
  };

  server.post<{ Body: { id: string; display_name?: string } }>(
    "/v1/workspaces",
    {
      schema: {
        tags: ["keys"],
        summary: "Create a workspace (a tenant); admins of the default workspace only",
        body: {
          type: "object",
          required: ["id"],
          additionalProperties: false,
          properties: { id: NAME, display_name: { type: "string", minLength: 1, maxLength: 200 } },
        },
        response: {
          201: {
            type: "object",
            required: ["id", "display_name", "created_at"],
            properties: { id: { type: "string" }, display_name: { type: "string" }, created_at: { type: "string", format: "date-time" } },
          },
          "4xx": errorResponse,
        },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      if (caller.workspace !== defaultWorkspace) {
        throw new OutpostError(
          "forbidden",
          `only admins of the workspace ${defaultWorkspace} may create workspaces`,
          "ask an admin of the default workspace",
        );
      }
      const { workspace, created } = await identities.store.ensureWorkspace(request.body.id, request.body.display_name);
      if (!created) throw new OutpostError("conflict", `workspace "${workspace.id}" already exists`, "pick another id");
      return reply.code(201).send({ id: workspace.id, display_name: workspace.displayName, created_at: iso(workspace.createdAt) });
    },
  );

  server.post<{ Body: { name: string; roles: Role[]; groups?: string[]; workspace?: string; expires_at?: string } }>(
    "/v1/keys",
    {
      schema: {
        tags: ["keys"],
        summary: "Create an API key (shown once, in this answer)",
        body: {
          type: "object",
          required: ["name", "roles"],
          additionalProperties: false,
          properties: {
            name: { type: "string", minLength: 1, maxLength: 100 },
            roles: { type: "array", minItems: 1, items: { type: "string", enum: [...ROLES] } },
            groups: { type: "array", items: { type: "string", pattern: "^[a-z][a-z0-9_.-]*$" } },
            workspace: { ...NAME, description: "another workspace (admins of the default workspace only)" },
            expires_at: { type: "string", format: "date-time" },
          },
        },
        response: {
          201: {
            ...keyInfo,
            required: [...keyInfo.required, "key"],
            properties: { ...keyInfo.properties, key: { type: "string", description: "the key: shown this once, store it now" } },
          },
          "4xx": errorResponse,
        },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const workspace = await target(request, request.body.workspace);
      let expiresAt: number | null = null;
      if (request.body.expires_at !== undefined) {
        expiresAt = Date.parse(request.body.expires_at);
        if (Number.isNaN(expiresAt))
          throw new OutpostError("invalid_request", "body.expires_at: must be a date-time", "e.g. 2027-01-31T00:00:00Z");
      }
      const { key, record } = await identities.store.createKey({
        workspace,
        name: request.body.name,
        roles: request.body.roles,
        groups: request.body.groups ?? [],
        createdBy: caller.id,
        expiresAt,
      });
      return reply.code(201).send({ ...keyView(record), key });
    },
  );

  server.get<{ Querystring: { workspace?: string } }>(
    "/v1/keys",
    {
      schema: {
        tags: ["keys"],
        summary: "List the workspace's API keys (never the keys themselves)",
        querystring: workspaceQuery,
        response: { 200: { type: "array", items: keyInfo }, "4xx": errorResponse },
      },
    },
    async (request) => (await identities.store.listKeys(await target(request, request.query.workspace))).map(keyView),
  );

  server.delete<{ Params: { id: string }; Querystring: { workspace?: string } }>(
    "/v1/keys/:id",
    {
      schema: {
        tags: ["keys"],
        summary: "Revoke an API key (it stops working at once)",
        params: { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 100 } } },
        querystring: workspaceQuery,
        response: { 200: keyInfo, "4xx": errorResponse },
      },
    },
    async (request) => {
      const revoked = await identities.store.revokeKey(
        await target(request, request.query.workspace),
        request.params.id,
        callerOf(request).id,
      );
      if (!revoked) throw notFound("API key", request.params.id, "list keys with GET /v1/keys");
      return keyView(revoked);
    },
  );
}
