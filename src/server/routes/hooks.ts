/**
 * `POST /v1/hooks/{name}`: another system starts a run — a new helpdesk ticket, a paid invoice. The body is kept as
 * it came (a signature signs the bytes, not their parse); the delivery is checked and de-duplicated by the webhook
 * (triggers/), and answered at once with the run's id (202), before the run has done anything.
 */
import type { FastifyInstance } from "fastify";
import { OutpostError } from "../../core/errors.js";
import type { Triggers } from "../../triggers/index.js";

export async function registerHookRoutes(server: FastifyInstance, triggers: Triggers): Promise<void> {
  await server.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => done(null, body));
    scope.post<{ Params: { name: string }; Body: string }>(
      "/v1/hooks/:name",
      {
        schema: {
          tags: ["triggers"],
          summary: "Deliver a webhook: starts one run per delivery id (signed with the webhook's secret, or with an API key)",
          params: { type: "object", required: ["name"], properties: { name: { type: "string", minLength: 1, maxLength: 100 } } },
          response: {
            202: {
              type: "object",
              required: ["run_id", "delivery_id", "duplicate"],
              properties: {
                run_id: { type: "string" },
                delivery_id: { type: "string" },
                duplicate: { type: "boolean", description: "a redelivery: the run is the first delivery's" },
              },
            },
            "4xx": { $ref: "Error#" },
          },
        },
      },
      async (request, reply) => {
        const caller = request.caller;
        // Another workspace's caller has no webhooks here.
        if (caller && caller.workspace !== triggers.workspace) {
          throw new OutpostError("not_found", `there is no webhook "${request.params.name}" in workspace ${caller.workspace}`);
        }
        const body = typeof request.body === "string" ? request.body : "";
        const result = await triggers.deliver(request.params.name, {
          headers: request.headers,
          body,
          authenticated: caller !== undefined,
          ...(caller ? { caller: caller.id } : {}),
        });
        return reply.code(202).send(result);
      },
    );
  });
}
