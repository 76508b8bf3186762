/**
 * The `connections:` section of outpost.yaml → Connection definitions. Values
 * keep their `${VAR}` and `secret://name` references: tool sources resolve them
 * when they connect or call, so secrets never sit in the loaded Project.
 */
import path from "node:path";
import type { ConnectionInput, ProjectFile } from "./schemas.js";
import type { Connection, ConnectionToolSettings } from "./types.js";

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export function toConnections(root: string, file: ProjectFile): Map<string, Connection> {
  const out = new Map<string, Connection>();
  for (const [name, input] of Object.entries(file.connections ?? {})) out.set(name, toConnection(root, name, input));
  return out;
}

function toConnection(root: string, name: string, c: ConnectionInput): Connection {
  const tools: Record<string, ConnectionToolSettings> = {};
  for (const [tool, t] of Object.entries(c.tools ?? {})) {
    tools[tool] = {
      ...(t.approval ? { approval: t.approval } : {}),
      ...(t.timeout !== undefined ? { timeoutMs: t.timeout } : {}),
      ...(t.side_effects !== undefined ? { sideEffects: t.side_effects } : {}),
      ...(t.classification ? { classification: t.classification } : {}),
    };
  }
  const base = {
    name,
    timeoutMs: c.timeout ?? DEFAULT_TIMEOUT_MS,
    ...(c.include ? { include: c.include } : {}),
    ...(c.exclude ? { exclude: c.exclude } : {}),
    tools,
    ...(c.classification ? { classification: c.classification } : {}),
    file: "outpost.yaml",
  };
  if ("mcp" in c) {
    const m = c.mcp;
    return {
      ...base,
      kind: "mcp",
      connectTimeoutMs: c.connect_timeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
      transport:
        "command" in m
          ? { type: "stdio", command: m.command, args: m.args ?? [], env: m.env ?? {}, cwd: path.resolve(root, m.cwd ?? ".") }
          : { type: "http", url: m.url, headers: m.headers ?? {} },
    };
  }
  const o = c.openapi;
  const auth = c.auth;
  return {
    ...base,
    kind: "openapi",
    spec: /^https?:\/\//.test(o.spec) ? o.spec : path.resolve(root, o.spec),
    ...(o.base_url ? { baseUrl: o.base_url } : {}),
    headers: o.headers ?? {},
    ...(auth
      ? {
          auth:
            "bearer_env" in auth
              ? { type: "bearer" as const, tokenEnv: auth.bearer_env }
              : "token" in auth
                ? { type: "bearer" as const, token: auth.token }
                : "value_env" in auth
                  ? { type: "header" as const, header: auth.header, valueEnv: auth.value_env }
                  : "value" in auth
                    ? { type: "header" as const, header: auth.header, value: auth.value }
                    : { type: "basic" as const, usernameEnv: auth.basic.username_env, passwordEnv: auth.basic.password_env },
        }
      : {}),
  };
}
