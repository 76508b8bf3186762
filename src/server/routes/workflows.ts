/**
 * `GET /v1/workflows` (the project's workflows, each with the version a new run would record) and
 * `POST /v1/workflows/{name}/runs` (start one: 201 with the run at once; it goes on in the background and is read,
 * streamed and cancelled like any run under /v1/runs). With an `Idempotency-Key` header a retried request answers
 * the run it started.
 */
import type { FastifyInstance } from "fastify";
import type { WorkflowsHost } from "../../workflows/views.js";
import { callerOf } from "../caller.js";

const step: Record<string, unknown> = {
  type: "object",
  required: ["id", "kind", "target"],
  properties: {
    id: { type: "string" },
    kind: { type: "string", enum: ["tool", "agent", "approval", "wait_event", "sleep", "emit", "branch", "loop", "parallel"] },
    target: { type: ["string", "null"], description: "the tool, agent, event or approver the step names" },
    steps: { type: "array", items: { type: "object", additionalProperties: true }, description: "a branch's, loop's or parallel's steps" },
  },
};
const workflow = {
  type: "object",
  required: ["name", "description", "team", "version", "input_schema", "steps", "file"],
  properties: {
    name: { type: "string" },
    description: { type: "string" },
    team: { type: ["string", "null"] },
    version: { type: "string", description: "content hash; a run records the version it started on and finishes on it" },
    input_schema: { type: ["object", "null"], additionalProperties: true },
    steps: { type: "array", items: step },
    file: { type: "string" },
  },
} as const;

export async function registerWorkflowRoutes(server: FastifyInstance, host: WorkflowsHost): Promise<void> {
  server.get(
    "/v1/workflows",
    {
      schema: {
        tags: ["workflows"],
        summary: "The project's workflows (workflows/*.yaml and *.ts)",
        response: {
          200: { type: "object", required: ["workflows"], properties: { workflows: { type: "array", items: workflow } } },
          "4xx": { $ref: "Error#" },
        },
      },
    },
    async () => ({ workflows: host.listWorkflows() }),
  );

  server.post<{ Params: { name: string }; Body: { input?: unknown } | undefined }>(
    "/v1/workflows/:name/runs",
    {
      schema: {
        tags: ["workflows"],
        summary: "Start a run of a workflow",
        description:
          "Starts the workflow on `input` (checked against its input schema: 400 naming the field). Answers 201 with the run at once; " +
          "follow it with GET /v1/runs/{id}/stream. With an `Idempotency-Key` header a retried request answers the same run.",
        params: { type: "object", required: ["name"], properties: { name: { type: "string", minLength: 1, maxLength: 100 } } },
        headers: { type: "object", properties: { "idempotency-key": { type: "string", minLength: 1, maxLength: 255 } } },
        body: { type: "object", additionalProperties: false, properties: { input: { description: "the workflow's input (any JSON)" } } },
        response: { 201: { $ref: "Run#" }, "4xx": { $ref: "Error#" } },
      },
    },
    async (request, reply) => {
      const key = request.headers["idempotency-key"];
      const run = await host.startWorkflowAs(callerOf(request), request.params.name, {
        ...(request.body?.input !== undefined ? { input: request.body.input } : {}),
        ...(typeof key === "string" ? { idempotency_key: key } : {}),
      });
      return reply.code(201).send(run);
    },
  );
}
