/**
 * Outpost as an MCP server: `POST /mcp`, Streamable HTTP, stateless (a fresh
 * server and transport per request, as the SDK's stateless example does).
 *
 * Every exposed agent (`AgentView.exposed`) is one tool, `ask_<agent>` ("-"
 * becomes "_"), described by the agent's description, taking
 * `{message, session_id?}`. Calling it runs the agent and answers its output as
 * text, with `structuredContent {run_id, session_id, status, output}`. A failed
 * run answers `isError: true` with the reason; a run that waits for a person (an
 * approval, an external event) answers a text saying what it waits for and the
 * ids to act on, and stays where it is — as does a run held up by a run it
 * delegated to, or by an earlier run of its session, that waits for a person
 * (`waiting_for.run_id` names that run). While the run goes on, a client that
 * sent a `progressToken` receives `notifications/progress` per model and tool
 * call. A client that goes away stops only the call, never the run.
 *
 * GET and DELETE answer 405: without sessions there is no server-to-client
 * stream to open and nothing to end.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { CallToolResult, ServerNotification } from "@modelcontextprotocol/sdk/types.js";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { AgentView, EventView, OutpostApi, RunView } from "../../core/api.js";
import { describeWaiting, followRun, type Waiting } from "./follow.js";

export interface McpRouteOptions {
  /** The server version reported to MCP clients. */
  version: string;
}

/** `order-desk` → `ask_order_desk`. */
export const askToolName = (agent: string) => `ask_${agent.replaceAll("-", "_")}`;

const inputShape = {
  message: z.string().min(1).describe("What to ask or tell the agent."),
  session_id: z
    .string()
    .min(1)
    .optional()
    .describe("Continue this Outpost session (the session_id of an earlier answer); omit to start a new conversation."),
};

const outputShape = {
  run_id: z.string(),
  session_id: z.string(),
  status: z.enum(["queued", "running", "waiting", "completed", "failed", "cancelled"]),
  output: z.string().nullable(),
  waiting_for: z
    .object({
      kind: z.string(),
      approval_id: z.string().optional(),
      tool: z.string().optional(),
      event: z.string().optional(),
      until: z.string().optional(),
      run_id: z
        .string()
        .optional()
        .describe("The run that waits, when it is not this run: one it delegated to, or an earlier run of the session."),
      agent: z.string().optional().describe("That run's agent."),
      queued_behind: z.string().optional().describe("The earlier run of the session this run is queued behind."),
    })
    .optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
};

type Structured = {
  run_id: string;
  session_id: string;
  status: RunView["status"];
  output: string | null;
  waiting_for?: Waiting;
  error?: { code: string; message: string };
};

const structured = (run: RunView, extra: Partial<Structured> = {}): Structured => ({
  run_id: run.id,
  session_id: run.session_id,
  status: run.status,
  output: run.output,
  ...extra,
});

function jsonRpcError(code: number, message: string) {
  return { jsonrpc: "2.0", error: { code, message }, id: null };
}

/** Registers `/mcp` in a scope of its own, whose errors answer JSON-RPC errors. */
/** `apiOf(request)`: the API as the request's caller sees it (its workspace). */
export async function registerMcpRoutes(
  server: FastifyInstance,
  apiOf: (request: FastifyRequest) => OutpostApi,
  options: McpRouteOptions,
): Promise<void> {
  const shutdown = new AbortController();
  server.addHook("preClose", async () => shutdown.abort());

  await server.register(async (scope) => {
    scope.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
      if (error.code === "FST_ERR_CTP_INVALID_JSON_BODY" || error.code === "FST_ERR_CTP_EMPTY_JSON_BODY") {
        return reply.code(400).send(jsonRpcError(-32700, "Parse error: the body is not valid JSON"));
      }
      if (status >= 500) {
        request.log.error({ err: error }, "MCP request failed");
        return reply.code(500).send(jsonRpcError(-32603, `Internal error (request id ${request.id})`));
      }
      return reply.code(status).send(jsonRpcError(-32600, `Invalid request: ${error.message}`));
    });

    scope.post(
      "/mcp",
      {
        schema: {
          tags: ["MCP"],
          summary: "MCP server (Streamable HTTP, stateless)",
          description:
            "A Model Context Protocol endpoint: one tool `ask_<agent>` per exposed agent, taking `{message, session_id?}`. " +
            "Connect any MCP client with the Streamable HTTP transport to this URL.",
        },
      },
      async (request, reply) => {
        reply.hijack();
        await handleMcp(apiOf(request), request.raw, reply.raw, request.body, {
          version: options.version,
          shutdown: shutdown.signal,
          request,
        });
      },
    );

    const notAllowed = async (_request: FastifyRequest, reply: FastifyReply) =>
      reply
        .code(405)
        .header("allow", "POST")
        .send(jsonRpcError(-32000, "Method not allowed: this MCP server is stateless; send JSON-RPC requests with POST."));
    scope.get("/mcp", { schema: { hide: true } }, notAllowed);
    scope.delete("/mcp", { schema: { hide: true } }, notAllowed);
  });
}

async function handleMcp(
  api: OutpostApi,
  req: IncomingMessage,
  res: ServerResponse,
  body: unknown,
  context: { version: string; shutdown: AbortSignal; request: FastifyRequest },
): Promise<void> {
  const gone = new AbortController();
  const signal = AbortSignal.any([gone.signal, context.shutdown]);
  const mcp = buildServer(api, await api.listAgents(), context.version, signal);
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on("close", () => {
    gone.abort();
    void transport.close().catch(() => {});
    void mcp.close().catch(() => {});
  });
  try {
    await mcp.connect(transport);
    await transport.handleRequest(req, res, body);
  } catch (err) {
    context.request.log.error({ err }, "MCP request failed");
    if (!res.headersSent) {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify(jsonRpcError(-32603, `Internal error (request id ${context.request.id})`)));
    }
  }
}

function buildServer(api: OutpostApi, agents: AgentView[], version: string, connection: AbortSignal): McpServer {
  const mcp = new McpServer(
    { name: "outpost", title: "Outpost agents", version },
    {
      capabilities: { tools: {} },
      instructions:
        "Each tool asks one Outpost agent: pass your request as `message`, and the `session_id` of an earlier answer to continue that conversation.",
    },
  );
  const taken = new Set<string>();
  for (const agent of agents) {
    if (!agent.exposed) continue;
    const name = askToolName(agent.name);
    if (taken.has(name)) continue; // `a-b` and `a_b` would share a name: the first keeps it
    taken.add(name);
    mcp.registerTool(
      name,
      {
        title: `Ask ${agent.name}`,
        description: agent.description || `Ask the Outpost agent "${agent.name}".`,
        inputSchema: inputShape,
        outputSchema: outputShape,
        annotations: { title: `Ask ${agent.name}`, readOnlyHint: false, openWorldHint: true },
      },
      async ({ message, session_id }, extra) => {
        const run = await api.startRun({ agent: agent.name, input: message, ...(session_id ? { session_id } : {}) });
        const token = extra._meta?.progressToken;
        let progress = 0;
        const onEvent =
          token === undefined
            ? undefined
            : async (e: EventView) => {
                const note = progressNote(e);
                if (note === null) return;
                const notification: ServerNotification = {
                  method: "notifications/progress",
                  params: { progressToken: token, progress: ++progress, message: note },
                };
                await extra.sendNotification(notification).catch(() => {});
              };
        const outcome = await followRun(api, run.id, {
          signal: AbortSignal.any([connection, extra.signal]),
          ...(onEvent ? { onEvent } : {}),
        });
        return toolResult(agent.name, run, outcome);
      },
    );
  }
  return mcp;
}

function progressNote(e: EventView): string | null {
  switch (e.type) {
    case "run.started":
      return "started";
    case "model.called":
      return "thinking";
    case "tool.called":
      return `calling ${String(e.data.tool ?? e.data.name ?? "a tool")}`;
    case "run.resumed":
      return "resumed";
    default:
      return null;
  }
}

function toolResult(agent: string, started: RunView, outcome: Awaited<ReturnType<typeof followRun>>): CallToolResult {
  switch (outcome.kind) {
    case "completed":
      return {
        content: [{ type: "text", text: outcome.run.output ?? "" }],
        structuredContent: structured(outcome.run),
      };
    case "waiting":
      return {
        content: [{ type: "text", text: describeWaiting(agent, started.id, outcome.waiting) }],
        structuredContent: structured(outcome.run, { waiting_for: outcome.waiting }),
      };
    case "failed": {
      const run = outcome.run;
      const why = run.error ? `${run.error.code}: ${run.error.message}` : run.status;
      return {
        content: [
          {
            type: "text",
            text: `Agent "${agent}" ${run.status === "cancelled" ? "was cancelled" : "failed"} (run ${run.id}): ${why}`,
          },
        ],
        structuredContent: structured(run, run.error ? { error: run.error } : {}),
        isError: true,
      };
    }
    case "stopped":
      return {
        content: [
          {
            type: "text",
            text: `Stopped waiting for agent "${agent}" (Outpost is shutting down); run ${started.id} goes on. Follow it with GET /v1/runs/${started.id}.`,
          },
        ],
        structuredContent: structured(started),
        isError: true,
      };
  }
}
