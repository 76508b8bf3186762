/**
 * JSON schemas of the HTTP API: request validation (Fastify's AJV), response
 * serialization (fast-json-stringify) and the OpenAPI document
 * (@fastify/swagger) all read these. They mirror the views in core/api.ts.
 *
 * Response objects allow additional properties, and free-form members (`data`,
 * `arguments`, `payload`) carry no inner schema, so serialization never drops
 * a field silently.
 */

const runStatuses = ["queued", "running", "waiting", "completed", "failed", "cancelled"] as const;
const approvalStatuses = ["pending", "approved", "denied", "expired"] as const;

const string = { type: "string" } as const;
const nullableString = { type: ["string", "null"] } as const;
const dateTime = { type: "string", format: "date-time" } as const;
const nullableDateTime = { type: ["string", "null"], format: "date-time" } as const;

/** Shared schemas, registered with `addSchema` and referenced as `{ $ref: "<Name>#" }`. */
export const sharedSchemas = [
  {
    $id: "Error",
    type: "object",
    description: "Every failure answers with this envelope.",
    properties: {
      error: {
        type: "object",
        properties: {
          code: {
            type: "string",
            description:
              "Stable machine-readable code: invalid_request, not_found, conflict, payload_too_large, unauthorized, forbidden, invalid_project, unavailable, internal.",
          },
          message: { type: "string", description: "What went wrong." },
          hint: { type: "string", description: "How to fix it." },
        },
        required: ["code", "message"],
        additionalProperties: true,
      },
    },
    required: ["error"],
  },
  {
    $id: "Usage",
    type: "object",
    properties: {
      input_tokens: { type: "integer" },
      output_tokens: { type: "integer" },
      cost_usd: { type: "number" },
    },
    required: ["input_tokens", "output_tokens", "cost_usd"],
    additionalProperties: true,
  },
  {
    $id: "WaitingFor",
    description: "What a waiting run waits for.",
    anyOf: [
      {
        type: "object",
        properties: { kind: { type: "string", enum: ["approval"] }, approval_id: string },
        required: ["kind", "approval_id"],
        additionalProperties: true,
      },
      {
        type: "object",
        properties: { kind: { type: "string", enum: ["timer"] }, until: dateTime },
        required: ["kind", "until"],
        additionalProperties: true,
      },
      {
        type: "object",
        properties: { kind: { type: "string", enum: ["event"] }, event: string },
        required: ["kind", "event"],
        additionalProperties: true,
      },
      {
        type: "object",
        description: "Delegated child runs: all of them, or the first failure under fan_out: fail_fast.",
        properties: {
          kind: { type: "string", enum: ["children"] },
          run_ids: { type: "array", items: string },
          mode: { type: "string", enum: ["all", "fail_fast"] },
        },
        required: ["kind", "run_ids", "mode"],
        additionalProperties: true,
      },
      {
        type: "object",
        description:
          "A workflow waiting on several steps at once (parallel branches): the first approval, event, child run or time (until) wakes it.",
        properties: {
          kind: { type: "string", enum: ["any"] },
          approvals: { type: "array", items: string },
          events: { type: "array", items: string },
          run_ids: { type: "array", items: string },
          until: dateTime,
        },
        required: ["kind", "approvals", "events", "run_ids"],
        additionalProperties: true,
      },
    ],
  },
  {
    $id: "Run",
    type: "object",
    description: "A run: an agent working on one input inside a session.",
    properties: {
      id: string,
      workspace: string,
      agent: string,
      session_id: string,
      status: { type: "string", enum: runStatuses },
      input: string,
      output: nullableString,
      error: {
        anyOf: [
          {
            type: "object",
            properties: { code: string, message: string },
            required: ["code", "message"],
            additionalProperties: true,
          },
          { type: "null" },
        ],
      },
      usage: { $ref: "Usage#" },
      steps: { type: "integer" },
      waiting_for: { anyOf: [{ $ref: "WaitingFor#" }, { type: "null" }] },
      parent_run_id: { ...nullableString, description: "The run that delegated to this one" },
      root_run_id: { type: "string", description: "The top of this run's delegation tree (itself for a top-level run)" },
      depth: { type: "integer", description: "0 for a top-level run, 1 for its children, …" },
      created_at: dateTime,
      updated_at: dateTime,
      completed_at: nullableDateTime,
    },
    required: [
      "parent_run_id",
      "root_run_id",
      "depth",
      "id",
      "workspace",
      "agent",
      "session_id",
      "status",
      "input",
      "output",
      "error",
      "usage",
      "steps",
      "waiting_for",
      "created_at",
      "updated_at",
      "completed_at",
    ],
    additionalProperties: true,
  },
  {
    $id: "RunTree",
    type: "object",
    properties: { run: { $ref: "Run#" }, children: { type: "array", items: { $ref: "RunTree#" } } },
    required: ["run", "children"],
    additionalProperties: true,
  },
  {
    $id: "Artifact",
    type: "object",
    properties: {
      id: string,
      run_id: string,
      call_id: string,
      tool: string,
      size: { type: "integer" },
      offset: { type: "integer" },
      content: string,
      next_offset: { type: ["integer", "null"] },
      created_at: dateTime,
    },
    required: ["id", "run_id", "call_id", "tool", "size", "offset", "content", "next_offset", "created_at"],
    additionalProperties: true,
  },
  {
    $id: "Event",
    type: "object",
    description: "One entry of a run's append-only event log.",
    properties: {
      run_id: string,
      seq: { type: "integer", description: "Position in the run's log, from 1." },
      type: string,
      data: { type: "object", additionalProperties: true, description: "Free-form, depends on `type`." },
      at: dateTime,
    },
    required: ["run_id", "seq", "type", "data", "at"],
    additionalProperties: true,
  },
  {
    $id: "Approval",
    type: "object",
    description: "A tool call waiting for (or decided by) a human.",
    properties: {
      id: string,
      run_id: string,
      agent: string,
      tool: string,
      arguments: { description: "The tool call's arguments, as the model gave them." },
      status: { type: "string", enum: approvalStatuses },
      reason: nullableString,
      decided_by: nullableString,
      created_at: dateTime,
      decided_at: nullableDateTime,
      expires_at: { ...nullableDateTime, description: "After this the request is denied (expired) unless decided." },
      approver: {
        type: "object",
        description: "Who may decide: a role (operator unless a policy says otherwise) and, if set, a group such as finance.",
        properties: { role: string, group: nullableString },
        required: ["role", "group"],
      },
      requested_by: { ...nullableString, description: "Who the run acts for; they cannot approve it themselves." },
      action_hash: { ...nullableString, description: "SHA-256 binding the approval to this exact action." },
      policies: { type: "array", items: string, description: "Policies that asked for the approval." },
    },
    required: ["id", "run_id", "agent", "tool", "status", "reason", "decided_by", "created_at", "decided_at"],
    additionalProperties: true,
  },
  {
    $id: "Session",
    type: "object",
    properties: {
      id: string,
      workspace: string,
      agent: string,
      created_at: dateTime,
      messages: {
        type: "array",
        items: {
          type: "object",
          properties: {
            role: { type: "string", enum: ["user", "assistant"] },
            content: string,
            run_id: string,
            at: dateTime,
          },
          required: ["role", "content", "run_id", "at"],
          additionalProperties: true,
        },
      },
    },
    required: ["id", "workspace", "agent", "created_at", "messages"],
    additionalProperties: true,
  },
  {
    $id: "Agent",
    type: "object",
    properties: {
      name: string,
      description: string,
      model: string,
      instructions: string,
      team: { type: ["string", "null"] },
      exposed: { type: "boolean", description: "Reachable from other teams and through the MCP and A2A endpoints." },
      tools: {
        type: "array",
        items: {
          type: "object",
          properties: {
            name: string,
            description: string,
            approval: { type: "string", enum: ["required", "none"] },
          },
          required: ["name", "description", "approval"],
          additionalProperties: true,
        },
      },
      limits: {
        type: "object",
        properties: {
          max_steps: { type: "integer" },
          max_tokens: { type: "integer" },
          max_usd: { type: "number" },
          max_wall_time_ms: { type: "integer" },
        },
        required: ["max_steps", "max_tokens", "max_usd", "max_wall_time_ms"],
        additionalProperties: true,
      },
    },
    required: ["name", "description", "model", "instructions", "team", "exposed", "tools", "limits"],
    additionalProperties: true,
  },
  {
    $id: "Health",
    type: "object",
    properties: {
      status: { type: "string", enum: ["ok"] },
      version: string,
      store: { type: "string", enum: ["sqlite", "postgres"] },
    },
    required: ["status", "version", "store"],
    additionalProperties: true,
  },
] as const;

export const ref = (name: string) => ({ $ref: `${name}#` }) as const;

const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, { ...ref("Error"), description: errorDescriptions[s] ?? "Error" }]));

const errorDescriptions: Record<number, string> = {
  400: "Invalid request (see error.message for the field)",
  404: "Not found",
  409: "Conflict with the current state",
  413: "Body too large",
  415: "Unsupported content type (send application/json)",
  500: "Internal error (see the server log)",
};

/** Every route may answer 400/500; POST routes also 413/415. */
const common = (...extra: number[]) => errorResponses(400, 500, ...extra);

const idParam = (what: string) =>
  ({
    type: "object",
    properties: { id: { type: "string", minLength: 1, description: `${what} id` } },
    required: ["id"],
  }) as const;

export const routeSchemas = {
  health: {
    tags: ["system"],
    summary: "Liveness and version",
    response: { 200: ref("Health"), ...errorResponses(500) },
  },
  listAgents: {
    tags: ["agents"],
    summary: "List the project's agents",
    response: { 200: { type: "array", items: ref("Agent") }, ...errorResponses(500) },
  },
  getAgent: {
    tags: ["agents"],
    summary: "Get one agent",
    params: {
      type: "object",
      properties: { name: { type: "string", minLength: 1, description: "Agent name" } },
      required: ["name"],
    },
    response: { 200: ref("Agent"), ...common(404) },
  },
  startRun: {
    tags: ["runs"],
    summary: "Start a run",
    description:
      "Starts a run of `agent` on `input`, in a new session or in `session_id`. " +
      "With an `Idempotency-Key` header, a retried request returns the same run instead of starting another: " +
      "a replay answers exactly like the original request (201) with the run's current state.",
    headers: {
      type: "object",
      properties: {
        "idempotency-key": {
          type: "string",
          minLength: 1,
          maxLength: 255,
          description: "Client-chosen key; requests with the same key start at most one run.",
        },
      },
    },
    body: {
      type: "object",
      properties: {
        agent: {
          type: "string",
          minLength: 1,
          description: "Agent name (GET /v1/agents lists them). Optional with session_id: the agent holding that conversation answers.",
        },
        input: { type: "string", description: "The task or message for the agent" },
        session_id: { type: "string", minLength: 1, description: "Continue this session (omit for a new one)" },
        context: {
          type: "array",
          maxItems: 500,
          description: "Earlier turns of a conversation kept by the caller; the agent sees them before input.",
          items: {
            type: "object",
            properties: { role: { type: "string", enum: ["user", "assistant"] }, content: { type: "string" } },
            required: ["role", "content"],
            additionalProperties: false,
          },
        },
      },
      required: ["input"],
      additionalProperties: false,
    },
    response: { 201: ref("Run"), ...common(404, 409, 413, 415) },
  },
  listRuns: {
    tags: ["runs"],
    summary: "List runs, newest first",
    querystring: {
      type: "object",
      properties: {
        agent: { type: "string", minLength: 1 },
        status: { type: "string", enum: runStatuses },
        session_id: { type: "string", minLength: 1 },
        limit: { type: "integer", minimum: 1, maximum: 200, description: "Page size (1–200)" },
        cursor: { type: "string", pattern: "^run_[0-9a-z]{22}$", description: "`next_cursor` of the previous page" },
      },
      additionalProperties: false,
    },
    response: {
      200: {
        type: "object",
        properties: {
          items: { type: "array", items: ref("Run") },
          next_cursor: { type: ["string", "null"], description: "Pass as `cursor` for the next page; null at the end" },
        },
        required: ["items", "next_cursor"],
      },
      ...common(),
    },
  },
  getRun: {
    tags: ["runs"],
    summary: "Get one run",
    params: idParam("Run"),
    response: { 200: ref("Run"), ...common(404) },
  },
  getEvents: {
    tags: ["runs"],
    summary: "A run's events",
    params: idParam("Run"),
    querystring: {
      type: "object",
      properties: {
        after: { type: "integer", minimum: 0, description: "Only events with seq greater than this" },
      },
      additionalProperties: false,
    },
    response: { 200: { type: "array", items: ref("Event") }, ...common(404) },
  },
  streamEvents: {
    tags: ["runs"],
    summary: "Stream a run's events (server-sent events)",
    description:
      "A `text/event-stream`: every event after `after` (or the `Last-Event-ID` header), then live ones. " +
      "Each event is sent as `id: <seq>`, `event: <type>`, `data: <Event JSON>`; transient events " +
      "(`model.delta`, seq -1) carry no `id:` and are not replayed on reconnect. " +
      "A comment line is sent every 15 s as a heartbeat. Once the run is terminal the server sends " +
      '`event: end` with `data: {"run_id", "status"}` and closes the stream; a stream that closes ' +
      "without `end` was interrupted — reconnect with `Last-Event-ID`.",
    params: idParam("Run"),
    querystring: {
      type: "object",
      properties: {
        after: { type: "integer", minimum: 0, description: "Only events with seq greater than this" },
      },
      additionalProperties: false,
    },
    headers: {
      type: "object",
      properties: {
        "last-event-id": { type: "string", pattern: "^[0-9]+$", description: "Resume after this seq" },
      },
    },
    produces: ["text/event-stream"],
    response: {
      200: {
        description: "An event stream (text/event-stream)",
        content: { "text/event-stream": { schema: { type: "string" } } },
      },
      ...common(404),
    },
  },
  cancelRun: {
    tags: ["runs"],
    summary: "Cancel a run",
    params: idParam("Run"),
    body: {
      type: "object",
      properties: { reason: { type: "string", description: "Recorded in the run's log" } },
      additionalProperties: false,
    },
    response: { 200: ref("Run"), ...common(404, 409, 413, 415) },
  },
  sendEvent: {
    tags: ["runs"],
    summary: "Deliver an external event to a run",
    description: "Wakes the run if it waits for an event of this name.",
    params: idParam("Run"),
    body: {
      type: "object",
      properties: {
        name: { type: "string", minLength: 1, description: "Event name the run may be waiting for" },
        payload: { description: "Any JSON value, given to the run" },
      },
      required: ["name"],
      additionalProperties: false,
    },
    response: { 200: ref("Run"), ...common(404, 409, 413, 415) },
  },
  listApprovals: {
    tags: ["approvals"],
    summary: "List approvals",
    querystring: {
      type: "object",
      properties: { status: { type: "string", enum: approvalStatuses } },
      additionalProperties: false,
    },
    response: { 200: { type: "array", items: ref("Approval") }, ...common() },
  },
  decideApproval: {
    tags: ["approvals"],
    summary: "Approve or deny a pending tool call",
    params: idParam("Approval"),
    body: {
      type: "object",
      properties: {
        decision: { type: "string", enum: ["approve", "deny"] },
        reason: { type: "string" },
        by: { type: "string", minLength: 1, description: "Who decides (recorded)" },
      },
      required: ["decision"],
      additionalProperties: false,
    },
    response: { 200: ref("Approval"), ...common(404, 409, 413, 415) },
  },
  getRunTree: {
    tags: ["runs"],
    summary: "A run with the runs it delegated to, recursively",
    params: idParam("Run"),
    response: { 200: ref("RunTree"), ...common(404) },
  },
  getArtifact: {
    tags: ["runs"],
    summary: "A large tool output kept as an artifact, a page at a time",
    params: idParam("Artifact"),
    querystring: {
      type: "object",
      properties: {
        offset: { type: "integer", minimum: 0, description: "First character (default 0)" },
        limit: { type: "integer", minimum: 1, maximum: 1000000, description: "Characters per page (default 64 000)" },
      },
      additionalProperties: false,
    },
    response: { 200: ref("Artifact"), ...common(404) },
  },
  listConnections: {
    tags: ["system"],
    summary: "The business systems Outpost is connected to (MCP servers, OpenAPI documents) and their state",
    response: {
      200: {
        type: "array",
        items: {
          type: "object",
          properties: {
            name: string,
            kind: { type: "string", enum: ["mcp", "openapi"] },
            state: { type: "string", enum: ["connecting", "ready", "down", "closed"] },
            error: string,
            tools: { type: "integer" },
          },
          required: ["name", "kind", "state", "tools"],
          additionalProperties: true,
        },
      },
      ...common(),
    },
  },
  getSession: {
    tags: ["sessions"],
    summary: "Get a session with its messages",
    params: idParam("Session"),
    response: { 200: ref("Session"), ...common(404) },
  },
} as const;

/** How to send a correct body, per route, for validation hints. */
export const bodyExamples: Record<string, string> = {
  "POST /v1/runs": `{"agent": "<name>", "input": "..."}`,
  "POST /v1/runs/:id/cancel": `{"reason": "..."} (or no body)`,
  "POST /v1/runs/:id/events": `{"name": "<event name>", "payload": {...}}`,
  "POST /v1/approvals/:id": `{"decision": "approve" | "deny", "reason": "..."}`,
  "POST /v1/memory": `{"text": "...", "scope": "team/<team>", "subject": "customer:1042", "key": "...", "tags": ["..."]}`,
  "PATCH /v1/memory/:id": `{"text": "...", "tags": ["..."], "classification": "internal", "expires_at": "2027-01-31T00:00:00Z" | null}`,
  "POST /v1/memory/erase": `{"subject": "customer:1042"}`,
};
