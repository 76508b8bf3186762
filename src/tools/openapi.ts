/**
 * An OpenAPI 3.0 / 3.1 document whose operations become tools.
 *
 * The document (YAML or JSON, from a file or an http(s) URL) is read once at
 * start; each operation becomes `<connection>.<operation_id_in_snake_case>`,
 * whose input is one object: the path, query, header and cookie parameters by
 * name, plus `body` for the request body. Local `$ref`s are inlined (a
 * recursive one is cut, so every schema the model sees is finite JSON), and
 * OpenAPI 3.0's dialect (`nullable`, boolean `exclusiveMinimum`…) is turned
 * into plain JSON Schema.
 *
 * A call is one HTTP request with the connection's headers and credentials.
 * Credentials are read from the environment by variable name when the call is
 * made, and never appear in an error or a tool's output: a response body that
 * echoes one has it replaced by `[redacted]`. The operator's headers win over
 * the document: a header parameter the connection sets (`headers:`, or its
 * `auth`) is not offered to the model, and when the connection sets `Cookie`
 * no cookie parameter is offered at all (the configured Cookie is sent as is,
 * never mixed with cookies the model chose). A response is read up to 10 MB.
 *
 * Where credentials go is the operator's decision, not the document's: a
 * document fetched from a URL whose `servers` point at another origin is
 * refused when the connection carries credentials, unless `base_url` says
 * where requests go.
 *
 * A document that cannot be loaded leaves the source `down` with a message
 * saying what is wrong and where (file or URL, JSON pointer); a document
 * fetched from a URL is retried in the background with backoff.
 */
import { readFile } from "node:fs/promises";
import { STATUS_CODES } from "node:http";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { expandEnv } from "../definitions/models.js";
import type { ConnectionToolSettings, OpenApiConnection, ToolDefinition, ToolHandlerArgs } from "../definitions/types.js";
import { displayUrl } from "../definitions/urls.js";
import { validatorFor } from "./json-schema.js";
import { hasSecretRef, resolveSecretRefs } from "./secret-refs.js";
import type { ToolSource, ToolSourceDeps, ToolSourceStatus } from "./source.js";

/** Backoff between attempts to fetch a document from a URL: 1 s, 2 s, 4 s… up to a minute. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 60_000;
/** How much of a failed response's body an error quotes, and how much of it is read. */
const ERROR_BODY_CHARS = 500;
const ERROR_BODY_BYTES = 64 * 1024;
/** The most of a response a call reads: a larger answer fails the call rather than flood the model and memory. */
const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
/** The most of an OpenAPI document fetched from a URL that is read (large public APIs' documents run to ~10 MB). */
const MAX_DOCUMENT_BYTES = 64 * 1024 * 1024;
/** An operation whose parameter and body schemas expand to more nodes than this is skipped. */
const MAX_SCHEMA_NODES = 50_000;
const MAX_REDIRECTS = 5;
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
/** Requests that change nothing: no Idempotency-Key, no side effects. */
const SAFE_METHODS = new Set(["get", "head"]);
/** Header parameters OpenAPI says to ignore: the request's own machinery sets them. */
const RESERVED_HEADERS = new Set(["accept", "content-type", "authorization"]);
/** Headers that carry a credential even when written literally (not through `${VAR}`). */
const CREDENTIAL_HEADER = /auth|cookie|key|token|secret|passw|session|credential/i;
const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)/g;

type Json = Record<string, unknown>;
type Location = "path" | "query" | "header" | "cookie";

/** A problem in the document itself, at a JSON pointer. */
class DocumentError extends Error {
  constructor(
    readonly pointer: string,
    message: string,
  ) {
    super(message);
  }
}

/** An operation too large to offer as a tool: skipped, with a warning. */
class SkipOperation extends Error {}

interface ParameterPlan {
  /** The input property that carries it. */
  key: string;
  name: string;
  in: Location;
  style: string;
  explode: boolean;
  /** Sent as JSON text (a parameter described by `content` rather than `schema`). */
  json: boolean;
}

interface BodyPlan {
  mediaType: string;
  encoding: "json" | "form" | "text";
}

/** Everything a call needs, fixed when the document is read. */
interface CallPlan {
  toolName: string;
  method: string;
  path: string;
  serverUrl: string;
  /** The hosts the connection's own settings name (egress allowed without an `egress` section): the document's URL,
   * base_url, and the servers of a document read from a file (the operator's own). */
  configuredHosts: string[];
  parameters: ParameterPlan[];
  body?: BodyPlan;
  timeoutMs: number;
}

export function openApiSource(connection: OpenApiConnection, deps: ToolSourceDeps): ToolSource {
  let state: ToolSourceStatus["state"] = "connecting";
  let error: string | undefined;
  let tools: ToolDefinition[] = [];
  let retryTimer: NodeJS.Timeout | undefined;
  let retryDelay = RETRY_FIRST_MS;
  let loading: Promise<void> | undefined;
  const closing = new AbortController();
  // Only a document fetched over the network can come right by itself: a broken file waits for a restart.
  const fromUrl = /^https?:\/\//i.test(expandEnv(connection.spec, deps.env).text.trim());

  async function attempt(): Promise<void> {
    try {
      const loaded = await loadTools(connection, deps, closing.signal);
      if (state === "closed") return;
      tools = loaded;
      state = "ready";
      error = undefined;
      retryDelay = RETRY_FIRST_MS;
      deps.log.info({ connection: connection.name, tools: tools.length }, "openapi connection ready");
    } catch (err) {
      if (state === "closed") return;
      // Messages name the spec as written; this catches what else could quote an expanded `${VAR}` (base_url, a host).
      const message = redactor(settingValues(connection, deps.env))((err as Error)?.message ?? String(err));
      if (message !== error) deps.log.warn({ connection: connection.name, error: message }, "openapi document could not be loaded");
      state = "down";
      error = message;
      if (fromUrl) {
        retryTimer = setTimeout(() => {
          retryTimer = undefined;
          loading = attempt();
        }, retryDelay);
        retryTimer.unref();
        retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
      }
    }
  }

  return {
    name: connection.name,
    start() {
      if (state === "closed") return Promise.resolve();
      loading ??= attempt();
      return loading;
    },
    tools: () => (state === "ready" ? tools : []),
    status: () => ({ state, ...(error !== undefined && state === "down" ? { error } : {}), tools: state === "ready" ? tools.length : 0 }),
    async close() {
      state = "closed";
      clearTimeout(retryTimer);
      closing.abort(new Error(`connection ${connection.name} closed`));
      tools = [];
    },
  };
}

// ─── loading ─────────────────────────────────────────────────────────────────

async function loadTools(connection: OpenApiConnection, deps: ToolSourceDeps, closing: AbortSignal): Promise<ToolDefinition[]> {
  const written = connection.spec.trim();
  const spec = expandSetting(written, "spec", deps.env);
  // Messages show the setting as written: a `${VAR}` in it may hold a secret (`?access_token=${TOKEN}`).
  const where = written.includes("${")
    ? displayUrl(written)
    : /^https?:\/\//i.test(spec)
      ? displayUrl(spec)
      : spec.startsWith("file:")
        ? fileURLToPath(spec)
        : spec;
  const fromUrl = /^https?:\/\//i.test(spec);
  if (fromUrl && deps.egress) {
    checkHttpUrl(spec, "spec");
    deps.egress.check(new URL(spec), connection.name, [new URL(spec).host]);
  }
  const text = await readDocument(spec, where, connection.timeoutMs, closing);

  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new Error(`OpenAPI document ${where} is neither valid YAML nor JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  if (!isObject(doc))
    throw new Error(`OpenAPI document ${where} is not an object (it starts with ${JSON.stringify(text.trim().slice(0, 40))})`);
  if (doc.swagger !== undefined) {
    throw new Error(`OpenAPI document ${where} is Swagger ${String(doc.swagger)}, which is not supported: convert it to OpenAPI 3`);
  }
  if (typeof doc.openapi !== "string" || !/^3\.\d+/.test(doc.openapi)) {
    const found = doc.openapi === undefined ? "it has no `openapi` field" : `its \`openapi\` field is ${JSON.stringify(doc.openapi)}`;
    throw new Error(`OpenAPI document ${where} is not OpenAPI 3.x: ${found}`);
  }
  const paths = doc.paths ?? {};
  if (!isObject(paths)) throw new Error(`OpenAPI document ${where}, at #/paths: must be an object`);

  const baseUrl = connection.baseUrl ? expandSetting(connection.baseUrl.trim(), "base_url", deps.env) : undefined;
  if (baseUrl !== undefined) checkHttpUrl(baseUrl, "base_url");
  const guarded = baseUrl === undefined && sendsCredentials(connection);
  const resolver = new Resolver(doc);
  const tools: ToolDefinition[] = [];
  const names = new Map<string, string>();
  const matched = new Set<string>();
  try {
    for (const [path, rawItem] of Object.entries(paths)) {
      const itemPointer = `#/paths/${escapePointer(path)}`;
      const pathItem = resolver.follow(rawItem, itemPointer);
      if (!isObject(pathItem)) throw new DocumentError(itemPointer, "a path item must be an object");
      for (const method of METHODS) {
        const operation = pathItem[method];
        if (operation === undefined) continue;
        const pointer = `${itemPointer}/${method}`;
        if (!isObject(operation)) throw new DocumentError(pointer, "an operation must be an object");
        const operationId =
          typeof operation.operationId === "string" && operation.operationId.trim() ? operation.operationId.trim() : undefined;
        const derived = operationId && snakeCase(operationId) ? snakeCase(operationId) : derivedName(method, path);
        const aliases = [operationId, derived].filter((name): name is string => name !== undefined);
        if (connection.include && !aliases.some((name) => connection.include!.includes(name))) continue;
        if (connection.exclude && aliases.some((name) => connection.exclude!.includes(name))) continue;
        for (const name of aliases) matched.add(name);

        let local = derived;
        for (let n = 2; names.has(local); n++) local = `${derived}_${n}`;
        if (local !== derived) {
          deps.log.warn(
            {
              connection: connection.name,
              operation: `${method.toUpperCase()} ${path}`,
              same_as: names.get(derived),
              tool: `${connection.name}.${local}`,
            },
            "two operations have the same tool name; the second is renamed",
          );
        }
        const settings = aliases.map((name) => connection.tools[name]).find((found) => found !== undefined) ?? {};
        try {
          const serverUrl = baseUrl ?? serverUrlFor(operation, pathItem, doc, spec, where, guarded);
          // A document fetched from a URL does not choose where requests may go: only its own host and base_url are configured.
          const configuredHosts = [
            ...(fromUrl ? [new URL(spec).host] : []),
            ...(baseUrl !== undefined || !fromUrl ? [new URL(serverUrl).host] : []),
          ];
          tools.push(
            buildTool(connection, deps, doc, { method, path, pointer, operation, pathItem, local, serverUrl, configuredHosts, settings }),
          );
          names.set(local, `${method.toUpperCase()} ${path}`);
        } catch (err) {
          if (!(err instanceof SkipOperation)) throw err;
          deps.log.warn(
            { connection: connection.name, operation: `${method.toUpperCase()} ${path}`, reason: err.message },
            "operation skipped",
          );
        }
      }
    }
  } catch (err) {
    if (err instanceof DocumentError) throw new Error(`OpenAPI document ${where}, at ${err.pointer}: ${err.message}`);
    throw err;
  }
  const unknown = (connection.include ?? []).filter((name) => !matched.has(name));
  if (unknown.length > 0) {
    deps.log.warn({ connection: connection.name, operations: unknown }, `the document has no operation named ${unknown.join(", ")}`);
  }
  return tools;
}

async function readDocument(spec: string, where: string, timeoutMs: number, closing: AbortSignal): Promise<string> {
  if (!/^https?:\/\//i.test(spec)) {
    try {
      return await readFile(spec.startsWith("file:") ? new URL(spec) : spec, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "file not found" : code === "EISDIR" ? "it is a folder" : (err as Error).message;
      throw new Error(`cannot read OpenAPI document ${where}: ${why}`);
    }
  }
  checkHttpUrl(spec, "spec");
  const signal = AbortSignal.any([closing, AbortSignal.timeout(timeoutMs)]);
  let response: Response;
  try {
    response = await fetch(spec, { signal, headers: { accept: "application/json, application/yaml;q=0.9, */*;q=0.5" } });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status} ${response.statusText || STATUS_CODES[response.status] || ""}`.trim());
    }
    const { text, complete } = await readBody(response, MAX_DOCUMENT_BYTES);
    if (!complete) throw new Error(`it is larger than ${megabytes(MAX_DOCUMENT_BYTES)}, more than Outpost reads`);
    return text;
  } catch (err) {
    throw new Error(`cannot fetch OpenAPI document ${where}: ${networkProblem(err, new URL(spec).host, timeoutMs)}`);
  }
}

/** The values of the variables the spec and base_url settings use: never shown in a message. */
function settingValues(connection: OpenApiConnection, env: NodeJS.ProcessEnv): string[] {
  const values: string[] = [];
  for (const setting of [connection.spec, connection.baseUrl ?? ""]) {
    for (const [, variable] of setting.matchAll(VARIABLE)) if (env[variable]) values.push(env[variable]!);
  }
  return values;
}

/** Whether a request carries a credential: `auth`, or a header written with `${VAR}` or named like a credential. */
function sendsCredentials(connection: OpenApiConnection): boolean {
  return (
    connection.auth !== undefined ||
    Object.entries(connection.headers).some(([name, value]) => value.includes("${") || hasSecretRef(value) || CREDENTIAL_HEADER.test(name))
  );
}

/** Expands `${VAR}` in a connection setting; a variable it needs that is unset is an error naming it. */
function expandSetting(text: string, setting: string, env: NodeJS.ProcessEnv): string {
  const { text: expanded, required } = expandEnv(text, env);
  const missing = required.filter((name) => !env[name]);
  if (missing.length > 0) throw new Error(`${setting} uses \${${missing[0]}}, but the environment variable ${missing[0]} is not set`);
  return expanded;
}

function checkHttpUrl(url: string, setting: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${setting} "${displayUrl(url)}" is not an absolute http(s) URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error(`${setting} "${displayUrl(url)}" is not an http(s) URL`);
  if (parsed.username || parsed.password) {
    throw new Error(`${setting} "${displayUrl(url)}" holds a user name or password: give credentials with auth: instead`);
  }
}

/**
 * The server an operation is sent to: its own `servers`, its path's, then the document's; relative to the document's URL.
 * `guarded`: the connection sends credentials and gives no base_url, so a document fetched from a URL may only send its
 * requests back to the origin it came from (whoever serves the document would otherwise choose who gets the credentials).
 */
function serverUrlFor(operation: Json, pathItem: Json, doc: Json, spec: string, where: string, guarded: boolean): string {
  const server = [operation.servers, pathItem.servers, doc.servers]
    .map((list) => (Array.isArray(list) && isObject(list[0]) ? list[0] : undefined))
    .find((found) => found !== undefined);
  let url = typeof server?.url === "string" ? server.url : "/";
  const variables = isObject(server?.variables) ? server.variables : {};
  url = url.replace(/\{([^}]+)\}/g, (match, name: string) => {
    const variable = variables[name];
    return isObject(variable) && variable.default !== undefined ? String(variable.default) : match;
  });
  if (/^https?:\/\//i.test(spec)) url = new URL(url, spec).href;
  else if (!/^https?:\/\//i.test(url)) {
    throw new Error(
      `OpenAPI document ${where} gives no absolute server URL (servers[0].url is ${JSON.stringify(url)}): set base_url on the connection`,
    );
  }
  checkHttpUrl(url, "the document's server URL");
  if (guarded && /^https?:\/\//i.test(spec) && new URL(url).origin !== new URL(spec).origin) {
    throw new Error(
      `OpenAPI document ${where} sends its requests to ${new URL(url).origin}, not to the origin it was fetched from, ` +
        `and the connection's credentials would go with them: set base_url on the connection to say where requests go (e.g. base_url: ${url})`,
    );
  }
  return url;
}

// ─── operations → tools ──────────────────────────────────────────────────────

interface OperationAt {
  method: string;
  path: string;
  pointer: string;
  operation: Json;
  pathItem: Json;
  local: string;
  serverUrl: string;
  configuredHosts: string[];
  settings: ConnectionToolSettings;
}

function buildTool(connection: OpenApiConnection, deps: ToolSourceDeps, doc: Json, at: OperationAt): ToolDefinition {
  const { method, path, pointer, operation, settings } = at;
  // Only what a request needs is inlined: a broken $ref among the responses does not matter here.
  const resolver = new Resolver(doc, MAX_SCHEMA_NODES);
  const properties: Json = {};
  const required: string[] = [];
  const parameters: ParameterPlan[] = [];
  const taken = new Set<string>();
  const requestBody = operation.requestBody === undefined ? undefined : resolver.inline(operation.requestBody, `${pointer}/requestBody`);
  if (requestBody !== undefined) taken.add("body");
  // Headers the operator sets are not the model's to choose: its connection headers and its credential's header.
  const pinned = new Set([...RESERVED_HEADERS, ...Object.keys(connection.headers).map((name) => name.toLowerCase())]);
  if (connection.auth?.type === "header") pinned.add(connection.auth.header.toLowerCase());

  // Path-level parameters apply unless the operation redefines one (same name and location).
  const declared = new Map<string, { parameter: Json; pointer: string }>();
  for (const [list, listPointer] of [
    [at.pathItem.parameters, `#/paths/${escapePointer(path)}/parameters`],
    [operation.parameters, `${pointer}/parameters`],
  ] as const) {
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new DocumentError(listPointer, "parameters must be a list");
    list.forEach((raw, index) => {
      const where = `${listPointer}/${index}`;
      const parameter = resolver.inline(raw, where);
      if (
        !isObject(parameter) ||
        typeof parameter.name !== "string" ||
        !["path", "query", "header", "cookie"].includes(String(parameter.in))
      ) {
        throw new DocumentError(where, 'a parameter needs a `name` and an `in` of "path", "query", "header" or "cookie"');
      }
      declared.set(`${parameter.in}:${parameter.name}`, { parameter, pointer: where });
    });
  }
  for (const { parameter } of declared.values()) {
    const name = parameter.name as string;
    const location = parameter.in as Location;
    if (location === "header" && pinned.has(name.toLowerCase())) continue;
    // A configured Cookie is sent as written, never mixed with cookies the model chose (a same-named one could win).
    if (location === "cookie" && pinned.has("cookie")) continue;
    if (location === "header" && !SAFE_METHODS.has(method) && name.toLowerCase() === "idempotency-key") continue; // Outpost sends it
    let key = taken.has(name) ? `${location}_${name}` : name;
    for (let n = 2; taken.has(key); n++) key = `${location}_${name}_${n}`;
    taken.add(key);

    const content = isObject(parameter.content) ? Object.values(parameter.content).find(isObject) : undefined;
    const schema = toJsonSchema(parameter.schema ?? content?.schema ?? {});
    if (typeof parameter.description === "string") schema.description = parameter.description;
    if (parameter.deprecated === true) schema.deprecated = true;
    properties[key] = schema;
    if (parameter.required === true || location === "path") required.push(key);
    const style = typeof parameter.style === "string" ? parameter.style : location === "query" || location === "cookie" ? "form" : "simple";
    parameters.push({
      key,
      name,
      in: location,
      style,
      explode: typeof parameter.explode === "boolean" ? parameter.explode : style === "form",
      json: parameter.schema === undefined && content !== undefined,
    });
  }

  // A `{name}` in the path that no parameter declares is still a required string.
  for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
    if (parameters.some((parameter) => parameter.in === "path" && parameter.name === name)) continue;
    let key = name;
    for (let n = 2; taken.has(key); n++) key = `path_${name}${n > 2 ? `_${n}` : ""}`;
    taken.add(key);
    properties[key] = { type: "string" };
    required.push(key);
    parameters.push({ key, name, in: "path", style: "simple", explode: false, json: false });
  }

  let body: BodyPlan | undefined;
  if (isObject(requestBody)) {
    const content = isObject(requestBody.content) ? requestBody.content : {};
    const types = Object.keys(content);
    const pick = (test: RegExp) => types.find((type) => test.test(type));
    const mediaType =
      pick(/^application\/(?:[\w.+-]*\+)?json\b/i) ?? pick(/json/i) ?? pick(/^application\/x-www-form-urlencoded\b/i) ?? pick(/^text\//i);
    if (mediaType !== undefined) {
      const encoding = /json/i.test(mediaType) ? "json" : /form-urlencoded/i.test(mediaType) ? "form" : "text";
      const media = content[mediaType];
      const schema = encoding === "text" ? { type: "string" } : toJsonSchema(isObject(media) ? (media.schema ?? {}) : {});
      if (typeof requestBody.description === "string") schema.description = requestBody.description;
      properties.body = schema;
      if (requestBody.required === true) required.push("body");
      body = { mediaType: mediaType.includes("*") ? "application/json" : mediaType, encoding };
    } else if (requestBody.required === true) {
      throw new SkipOperation(
        `its request body is ${types.join(" or ") || "of no declared type"}, which Outpost cannot send (JSON, form or text only)`,
      );
    }
  }

  const inputSchema: Json = { type: "object", properties, ...(required.length > 0 ? { required } : {}), additionalProperties: false };
  const toolName = `${connection.name}.${at.local}`;
  const timeoutMs = settings.timeoutMs ?? connection.timeoutMs;
  const plan: CallPlan = {
    toolName,
    method,
    path,
    serverUrl: at.serverUrl,
    configuredHosts: at.configuredHosts,
    parameters,
    ...(body ? { body } : {}),
    timeoutMs,
  };
  const tool: ToolDefinition = {
    name: toolName,
    description: describe(operation, method, path),
    input: validatorFor(inputSchema),
    inputSchema,
    sideEffects: settings.sideEffects ?? !SAFE_METHODS.has(method),
    timeoutMs,
    handler: (args: ToolHandlerArgs<Record<string, unknown>>) => call(connection, deps, plan, args),
  };
  if (settings.approval) tool.approval = settings.approval;
  const classification = settings.classification ?? connection.classification;
  if (classification) tool.classification = classification;
  return tool;
}

function describe(operation: Json, method: string, path: string): string {
  const parts = [operation.summary, operation.description]
    .filter((text): text is string => typeof text === "string" && text.trim() !== "")
    .map((text) => text.trim());
  if (parts.length === 2 && parts[1].startsWith(parts[0])) parts.shift();
  if (parts.length === 0) parts.push(`${method.toUpperCase()} ${path}`);
  if (operation.deprecated === true) parts.push("(Deprecated.)");
  return parts.join("\n\n");
}

/** `createRefund` → `create_refund`, `getHTTPStatus` → `get_http_status`, `list-orders` → `list_orders`. */
export function snakeCase(text: string): string {
  return text
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .replace(/[^A-Za-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .toLowerCase();
}

/** A name for an operation without operationId: `GET /orders/{id}` → `get_orders_by_id`. */
function derivedName(method: string, path: string): string {
  const segments = path
    .split("/")
    .filter(Boolean)
    .map((segment) => segment.replace(/\{([^}]*)\}/g, "by_$1"));
  return snakeCase([method, ...(segments.length > 0 ? segments : ["root"])].join("_"));
}

// ─── $ref and schema dialect ─────────────────────────────────────────────────

/** Inlines local `$ref`s (`#/components/...`), cutting recursion; external references are an error. */
class Resolver {
  private nodes = 0;

  constructor(
    private readonly doc: unknown,
    private readonly maxNodes = Number.POSITIVE_INFINITY,
  ) {}

  /** A deep copy of `node` (found at `pointer`) with every `$ref` replaced by what it points to. */
  inline(node: unknown, pointer: string, active: string[] = []): unknown {
    if (++this.nodes > this.maxNodes) throw new SkipOperation(`its schemas expand to more than ${this.maxNodes} nodes`);
    if (Array.isArray(node)) return node.map((item, index) => this.inline(item, `${pointer}/${index}`, active));
    if (!isObject(node)) return node;
    if (typeof node.$ref === "string") {
      const { $ref: ref, ...siblings } = node;
      const extra = this.inline(siblings, pointer, active) as Json;
      if (!ref.startsWith("#")) {
        throw new DocumentError(pointer, `$ref "${ref}" points outside the document; only local references (#/...) are supported`);
      }
      if (active.includes(ref)) return { description: `(recursive: ${ref}, not expanded)`, ...extra };
      const target = lookup(this.doc, ref);
      if (target === undefined) throw new DocumentError(pointer, `$ref "${ref}" points to nothing: the document has no ${ref}`);
      const resolved = this.inline(target, ref, [...active, ref]);
      return isObject(resolved) ? { ...resolved, ...extra } : resolved;
    }
    const copy: Json = {};
    for (const [key, value] of Object.entries(node)) copy[key] = this.inline(value, `${pointer}/${escapePointer(key)}`, active);
    return copy;
  }

  /** A node itself, or what its `$ref` points to (one level: for path items). */
  follow(node: unknown, pointer: string): unknown {
    if (!isObject(node) || typeof node.$ref !== "string") return node;
    const target = node.$ref.startsWith("#") ? lookup(this.doc, node.$ref) : undefined;
    if (target === undefined) throw new DocumentError(pointer, `$ref "${node.$ref}" does not point to anything in the document`);
    return target;
  }
}

function lookup(doc: unknown, ref: string): unknown {
  const fragment = ref.slice(1);
  if (fragment === "") return doc;
  if (!fragment.startsWith("/")) return undefined;
  let node = doc;
  for (const raw of fragment.slice(1).split("/")) {
    let token: string;
    try {
      token = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    } catch {
      return undefined;
    }
    if (Array.isArray(node)) node = /^\d+$/.test(token) ? node[Number(token)] : undefined;
    else if (isObject(node) && Object.hasOwn(node, token)) node = node[token];
    else return undefined;
  }
  return node;
}

function escapePointer(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

const SCHEMA_MAPS = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];
const SCHEMA_LISTS = ["allOf", "anyOf", "oneOf", "prefixItems"];
const SCHEMA_ONES = [
  "items",
  "additionalProperties",
  "not",
  "if",
  "then",
  "else",
  "contains",
  "propertyNames",
  "unevaluatedItems",
  "unevaluatedProperties",
];

/**
 * A request schema in plain JSON Schema: OpenAPI 3.0's `nullable` and boolean `exclusiveMinimum`/`exclusiveMaximum`
 * rewritten, `example` → `examples`, OpenAPI-only keywords dropped, read-only properties (which a request never
 * carries) removed. Valid 3.1 schemas pass through unchanged.
 */
function toJsonSchema(input: unknown): Json {
  if (!isObject(input)) return typeof input === "boolean" ? (input ? {} : { not: {} }) : {};
  const { nullable, discriminator: _d, xml: _x, externalDocs: _e, example, ...schema } = input;
  for (const key of SCHEMA_MAPS) {
    if (!isObject(schema[key])) continue;
    const entries = Object.entries(schema[key]).filter(
      ([, value]) => !(key === "properties" && isObject(value) && value.readOnly === true),
    );
    if (key === "properties" && Array.isArray(schema.required)) {
      const kept = new Set(entries.map(([name]) => name));
      schema.required = schema.required.filter((name) => kept.has(String(name)));
      if ((schema.required as unknown[]).length === 0) delete schema.required;
    }
    schema[key] = Object.fromEntries(entries.map(([name, value]) => [name, toJsonSchema(value)]));
  }
  for (const key of SCHEMA_LISTS) if (Array.isArray(schema[key])) schema[key] = (schema[key] as unknown[]).map(toJsonSchema);
  for (const key of SCHEMA_ONES) {
    const value = schema[key];
    if (isObject(value)) schema[key] = toJsonSchema(value);
    else if (key === "items" && Array.isArray(value)) schema[key] = value.map(toJsonSchema);
  }
  for (const [bound, limit] of [
    ["exclusiveMinimum", "minimum"],
    ["exclusiveMaximum", "maximum"],
  ] as const) {
    if (schema[bound] === true && typeof schema[limit] === "number") {
      schema[bound] = schema[limit];
      delete schema[limit];
    } else if (typeof schema[bound] === "boolean") delete schema[bound];
  }
  if (example !== undefined && schema.examples === undefined) schema.examples = [example];
  if (nullable !== true) return schema;
  if (typeof schema.type === "string" || Array.isArray(schema.type)) {
    schema.type = [...new Set([schema.type, "null"].flat())];
    if (Array.isArray(schema.enum) && !schema.enum.includes(null)) schema.enum = [...schema.enum, null];
    return schema;
  }
  return { anyOf: [schema, { type: "null" }] };
}

// ─── calls ───────────────────────────────────────────────────────────────────

async function call(
  connection: OpenApiConnection,
  deps: ToolSourceDeps,
  plan: CallPlan,
  { input, context, idempotencyKey }: ToolHandlerArgs<Record<string, unknown>>,
): Promise<string> {
  const secrets: string[] = [];
  const headers = new Headers();
  let path = plan.path;
  const query = new URLSearchParams();
  const cookies: string[] = [];
  for (const parameter of plan.parameters) {
    const value = input[parameter.key];
    if (value === undefined || value === null) {
      if (parameter.in === "path") throw new Error(`the path parameter "${parameter.key}" is required`);
      continue;
    }
    if (parameter.in === "path") {
      const text = parameter.json ? JSON.stringify(value) : simple(value, parameter.explode);
      // "." and ".." would be read as the current or parent folder, even percent-encoded; "" as the collection.
      if (text === "." || text === "..") throw new Error(`the path parameter "${parameter.key}" cannot be "${text}"`);
      if (text === "") throw new Error(`the path parameter "${parameter.key}" cannot be empty`);
      path = path.split(`{${parameter.name}}`).join(encodeURIComponent(text));
    } else if (parameter.in === "query") {
      appendForm(query, parameter, value);
    } else if (parameter.in === "header") {
      const text = parameter.json ? JSON.stringify(value) : simple(value, parameter.explode);
      setHeader(headers, parameter.name, text, `the header parameter "${parameter.key}"`);
    } else {
      cookies.push(`${parameter.name}=${encodeURIComponent(parameter.json ? JSON.stringify(value) : simple(value, false))}`);
    }
  }
  if (cookies.length > 0) headers.set("cookie", cookies.join("; "));

  // The operator's headers last, so that nothing the model sends can replace them.
  for (const [name, value] of Object.entries(connection.headers)) {
    const { text, required } = expandEnv(value, deps.env);
    const missing = required.find((variable) => !deps.env[variable]);
    if (missing)
      throw new Error(
        `header ${name} of connection "${connection.name}" uses \${${missing}}, but the environment variable ${missing} is not set`,
      );
    const resolved = await resolveSecretRefs(text, deps.secrets, connection.name, `connections.${connection.name}.openapi.headers.${name}`);
    setHeader(headers, name, resolved.text, `header ${name} of connection "${connection.name}"`);
    // A value from the environment or the vault, or one in a credential-like header, is a secret; `X-Client: outpost` is not.
    const variables = [...value.matchAll(VARIABLE)].map(([, variable]) => [variable!, deps.env[variable!] ?? ""] as const);
    for (const [variable, envValue] of variables) deps.secrets?.protect(`env:${variable}`, envValue);
    if (variables.length > 0 || resolved.values.length > 0 || CREDENTIAL_HEADER.test(name)) {
      secrets.push(resolved.text, ...variables.map(([, envValue]) => envValue), ...resolved.values);
    }
  }
  for (const [name, value, credentials] of await authHeaders(connection, deps)) {
    secrets.push(value, ...credentials);
    setHeader(headers, name, value, `the credential of connection "${connection.name}"`);
  }
  if (!SAFE_METHODS.has(plan.method)) headers.set("idempotency-key", idempotencyKey);
  if (!headers.has("accept")) headers.set("accept", "application/json, */*;q=0.5");

  let body: string | undefined;
  if (plan.body && input.body !== undefined) {
    headers.set("content-type", plan.body.mediaType);
    body =
      plan.body.encoding === "json"
        ? JSON.stringify(input.body)
        : plan.body.encoding === "form"
          ? formBody(input.body)
          : typeof input.body === "string"
            ? input.body
            : JSON.stringify(input.body);
  }

  const search = query.toString();
  const url = new URL(`${plan.serverUrl.replace(/\/+$/, "")}${path}${search ? `?${search}` : ""}`);
  const local = redactor(secrets);
  const redact = deps.secrets ? (text: string) => deps.secrets!.redact(local(text)) : local;
  const signal = AbortSignal.any([context.signal, AbortSignal.timeout(plan.timeoutMs)]);
  let response: Response;
  let text: string;
  let complete: boolean;
  try {
    response = await send(url, { method: plan.method.toUpperCase(), headers, body, signal }, (target) =>
      deps.egress?.check(target, connection.name, plan.configuredHosts),
    );
    ({ text, complete } = await readBody(response, response.ok ? MAX_RESPONSE_BYTES : ERROR_BODY_BYTES));
  } catch (err) {
    if (context.signal.aborted) throw context.signal.reason ?? err;
    throw new Error(redact(networkProblem(err, url.host, plan.timeoutMs)));
  }
  if (!response.ok) {
    const reason = response.statusText || STATUS_CODES[response.status] || "";
    // Redacted before it is cut, so that no secret is shown in part.
    const redacted = redact(text);
    const quoted = redacted.length > ERROR_BODY_CHARS || !complete ? `${redacted.slice(0, ERROR_BODY_CHARS)}…` : redacted;
    throw new Error(`HTTP ${response.status}${reason ? ` ${reason}` : ""}${quoted.trim() ? `: ${quoted}` : ""}`);
  }
  if (!complete) {
    // The answer was a success: a request that changes something was carried out, and must not be sent again.
    const done = SAFE_METHODS.has(plan.method) ? "" : ", so the request was carried out: do not send it again";
    throw new Error(
      redact(
        `${plan.method.toUpperCase()} ${url.host}${url.pathname} answered more than ${megabytes(MAX_RESPONSE_BYTES)} ` +
          `(HTTP ${response.status}${done}); Outpost reads at most ${megabytes(MAX_RESPONSE_BYTES)} of a response: ` +
          "ask for less (a filter, a smaller page, fewer fields)",
      ),
    );
  }
  if (text === "") return `HTTP ${response.status} ${response.statusText || STATUS_CODES[response.status] || ""}`.trim();
  if (/json/i.test(response.headers.get("content-type") ?? "")) {
    try {
      return redact(JSON.stringify(JSON.parse(text)));
    } catch {
      return redact(text);
    }
  }
  return redact(text);
}

/** A response's body as text, read up to `limit` bytes: `complete` is false when there was more (left unread). */
async function readBody(response: Response, limit: number): Promise<{ text: string; complete: boolean }> {
  if (!response.body) return { text: "", complete: true };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: new TextDecoder().decode(Buffer.concat(chunks)), complete: true };
    if (size + value.byteLength > limit) {
      chunks.push(value.subarray(0, limit - size));
      await reader.cancel().catch(() => undefined);
      return { text: new TextDecoder().decode(Buffer.concat(chunks)), complete: false };
    }
    chunks.push(value);
    size += value.byteLength;
  }
}

function megabytes(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))} MB`;
}

/** fetch, following redirects only within the same origin (a redirect elsewhere would carry the credentials away). */
async function send(
  url: URL,
  init: { method: string; headers: Headers; body: string | undefined; signal: AbortSignal },
  allow: (url: URL) => void = () => undefined,
): Promise<Response> {
  let current = url;
  let { method, body } = init;
  for (let hop = 0; ; hop++) {
    allow(current); // the egress allowlist, on the first request and on every redirect
    const response = await fetch(current, { method, headers: init.headers, body, signal: init.signal, redirect: "manual" });
    const location = response.headers.get("location");
    if (![301, 302, 303, 307, 308].includes(response.status) || !location) return response;
    await response.body?.cancel();
    const next = new URL(location, current);
    if (next.origin !== url.origin) throw new Error(`redirected to another host (${next.host}), which Outpost does not follow`);
    if (hop >= MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects`);
    if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === "POST")) {
      method = "GET";
      body = undefined;
      init.headers.delete("content-type");
    }
    current = next;
  }
}

/** The credential headers (name, value, the secrets in it), read from the environment or the vault now; a missing
 * variable or secret is named, its value never shown. */
async function authHeaders(connection: OpenApiConnection, deps: ToolSourceDeps): Promise<[string, string, string[]][]> {
  const auth = connection.auth;
  if (!auth) return [];
  const env = deps.env;
  const read = (variable: string, what: string): string => {
    const value = env[variable];
    if (!value)
      throw new Error(`the environment variable ${variable} is not set: it holds the ${what} for connection "${connection.name}"`);
    deps.secrets?.protect(`env:${variable}`, value);
    return value;
  };
  const fromVault = async (reference: string, field: string): Promise<string> =>
    (await resolveSecretRefs(reference, deps.secrets, connection.name, `connections.${connection.name}.auth.${field}`)).text;
  switch (auth.type) {
    case "bearer": {
      const token = "token" in auth ? await fromVault(auth.token, "token") : read(auth.tokenEnv, "bearer token");
      return [["authorization", `Bearer ${token}`, [token]]];
    }
    case "header": {
      const value = "value" in auth ? await fromVault(auth.value, "value") : read(auth.valueEnv, `${auth.header} header`);
      return [[auth.header, value, [value]]];
    }
    case "basic": {
      const user = read(auth.usernameEnv, "basic-auth user name");
      const password = read(auth.passwordEnv, "basic-auth password");
      const credential = Buffer.from(`${user}:${password}`).toString("base64");
      // The bare base64 credential too (an API may echo it without "Basic "), and the user name, read from a variable.
      return [["authorization", `Basic ${credential}`, [credential, password, user]]];
    }
  }
}

/** Headers.set, whose own error would quote the value (a secret, perhaps): a line break or a non-Latin-1 character. */
function setHeader(headers: Headers, name: string, value: string, what: string): void {
  try {
    headers.set(name, value);
  } catch {
    throw new Error(
      `${what} cannot be sent as an HTTP header ${name}: its name or value holds a line break or a character outside Latin-1`,
    );
  }
}

/** Replaces every secret in a text, also as escaped inside a JSON string (values shorter than 4 characters are left:
 * they would garble it). */
function redactor(secrets: string[]): (text: string) => string {
  const forms = secrets.flatMap((secret) => [secret, JSON.stringify(secret).slice(1, -1)]);
  const list = [...new Set(forms.filter((secret) => secret.length >= 4))].sort((a, b) => b.length - a.length);
  return (text) => list.reduce((out, secret) => out.split(secret).join("[redacted]"), text);
}

function networkProblem(err: unknown, host: string, timeoutMs: number): string {
  const error = err as Error & { cause?: { code?: string; message?: string } };
  if (error?.name === "TimeoutError") return `no response from ${host} within ${timeoutMs} ms`;
  if (error?.message === "fetch failed" || error?.cause) {
    return `cannot reach ${host}: ${error.cause?.code ?? error.cause?.message ?? error.message}`;
  }
  return error?.message ?? String(err);
}

/** Style `simple` (path and header parameters): `a,b,c`; objects `k,v,k,v` (or `k=v,k=v` exploded). */
function simple(value: unknown, explode: boolean): string {
  if (Array.isArray(value)) return value.map(scalar).join(",");
  if (isObject(value)) {
    return Object.entries(value)
      .map(([key, item]) => (explode ? `${key}=${scalar(item)}` : `${key},${scalar(item)}`))
      .join(",");
  }
  return scalar(value);
}

/** Query parameters: `form` (arrays as repeated keys when exploded), `spaceDelimited`, `pipeDelimited`, `deepObject`. */
function appendForm(query: URLSearchParams, parameter: ParameterPlan, value: unknown): void {
  const { name, style, explode } = parameter;
  if (parameter.json) query.append(name, JSON.stringify(value));
  else if (Array.isArray(value)) {
    if (explode) for (const item of value) query.append(name, scalar(item));
    else query.append(name, value.map(scalar).join(style === "spaceDelimited" ? " " : style === "pipeDelimited" ? "|" : ","));
  } else if (isObject(value)) {
    if (style === "deepObject") for (const [key, item] of Object.entries(value)) query.append(`${name}[${key}]`, scalar(item));
    else if (explode) for (const [key, item] of Object.entries(value)) query.append(key, scalar(item));
    else
      query.append(
        name,
        Object.entries(value)
          .flatMap(([key, item]) => [key, scalar(item)])
          .join(","),
      );
  } else query.append(name, scalar(value));
}

/** An `application/x-www-form-urlencoded` body: arrays as repeated keys, nested objects as `a[b]=c`. */
function formBody(body: unknown): string {
  const form = new URLSearchParams();
  const add = (key: string, value: unknown): void => {
    if (value === undefined || value === null) return;
    if (Array.isArray(value)) for (const item of value) add(key, item);
    else if (isObject(value)) for (const [sub, item] of Object.entries(value)) add(`${key}[${sub}]`, item);
    else form.append(key, scalar(value));
  };
  if (isObject(body)) for (const [key, value] of Object.entries(body)) add(key, value);
  return form.toString();
}

function scalar(value: unknown): string {
  return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
