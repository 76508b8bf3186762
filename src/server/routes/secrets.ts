/**
 * The vault over HTTP: `PUT /v1/secrets/{name}` {value}, `GET /v1/secrets` (names and times, never values),
 * `DELETE /v1/secrets/{name}`. Builders and admins of the caller's workspace only; a value is accepted, never returned.
 */
import type { FastifyInstance } from "fastify";
import { OutpostError } from "../../core/errors.js";
import type { Vault } from "../../security/vault/index.js";
import { requireRole } from "../caller.js";

const errorResponse = { $ref: "Error#" };
const nameParam = {
  type: "object",
  required: ["name"],
  properties: { name: { type: "string", pattern: "^[A-Za-z0-9_.-]+$", maxLength: 200, description: "secret name" } },
} as const;
const secretInfo = {
  type: "object",
  required: ["name", "created_at", "updated_at", "updated_by"],
  properties: {
    name: { type: "string" },
    created_at: { type: "string", format: "date-time" },
    updated_at: { type: "string", format: "date-time" },
    updated_by: { type: ["string", "null"] },
  },
} as const;

const iso = (ms: number) => new Date(ms).toISOString();

export async function registerSecretRoutes(server: FastifyInstance, vault: Vault): Promise<void> {
  server.put<{ Params: { name: string }; Body: { value: string } }>(
    "/v1/secrets/:name",
    {
      schema: {
        tags: ["secrets"],
        summary: "Store or replace a secret (its value is never returned)",
        params: nameParam,
        body: {
          type: "object",
          required: ["value"],
          additionalProperties: false,
          properties: { value: { type: "string", minLength: 1, description: "the secret's value" } },
        },
        response: {
          200: { type: "object", required: ["name", "created"], properties: { name: { type: "string" }, created: { type: "boolean" } } },
          "4xx": errorResponse,
        },
      },
    },
    async (request) => {
      const caller = requireRole(request, "builder");
      const { created } = await vault.set(caller.workspace, request.params.name, request.body.value, caller.id);
      return { name: request.params.name, created };
    },
  );

  server.get(
    "/v1/secrets",
    {
      schema: {
        tags: ["secrets"],
        summary: "List the workspace's secrets: names and times, never values",
        response: {
          200: { type: "object", required: ["secrets"], properties: { secrets: { type: "array", items: secretInfo } } },
          "4xx": errorResponse,
        },
      },
    },
    async (request) => {
      const caller = requireRole(request, "builder");
      const secrets = await vault.list(caller.workspace);
      return {
        secrets: secrets.map((s) => ({
          name: s.name,
          created_at: iso(s.createdAt),
          updated_at: iso(s.updatedAt),
          updated_by: s.updatedBy,
        })),
      };
    },
  );

  server.delete<{ Params: { name: string } }>(
    "/v1/secrets/:name",
    {
      schema: {
        tags: ["secrets"],
        summary: "Delete a secret",
        params: nameParam,
        response: { 204: { type: "null" }, "4xx": errorResponse },
      },
    },
    async (request, reply) => {
      const caller = requireRole(request, "builder");
      if (!(await vault.delete(caller.workspace, request.params.name, caller.id))) {
        throw new OutpostError(
          "not_found",
          `secret "${request.params.name}" does not exist in workspace ${caller.workspace}`,
          "list them with GET /v1/secrets (outpost secrets list)",
        );
      }
      return reply.code(204).send();
    },
  );
}
