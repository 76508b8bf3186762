/**
 * The egress allowlist: the hosts HTTP tools (OpenAPI requests and their redirects, MCP over HTTP) may reach.
 *
 * With `egress: { allow: [...] }` in outpost.yaml only those hosts are reachable. Entries: `api.example.com` (any
 * port), `127.0.0.1:8080` (that port only), `*.acme.internal` (any subdomain, not the domain itself). Without an
 * `egress` section the allowlist is the hosts the connections themselves name (their URLs, base_url, the servers of a
 * document read from a file), so a fetched document whose servers[] or a redirect points elsewhere is refused.
 */
import { OutpostError } from "../core/errors.js";
import type { Project } from "../definitions/types.js";
import type { EgressGuard } from "../tools/index.js";

export interface EgressBlocked {
  url: string;
  host: string;
  connection: string;
}

export interface EgressOptions {
  /** `egress.allow` of the project; undefined = the hosts the connections name. */
  allow?: readonly string[];
  /** Hosts every connection may reach without an `egress` section (the literal hosts of all connections). */
  connectionHosts?: readonly string[];
  /** Called for each refused request (the integrator records `guardrail.egress_blocked`). Must not throw. */
  onBlocked?: (blocked: EgressBlocked) => void;
}

interface Rule {
  host: string;
  port: string | null;
  wildcard: boolean;
}

const DEFAULT_PORTS: Record<string, string> = { "http:": "80", "https:": "443" };

function parseRule(entry: string): Rule {
  const text = entry.trim().toLowerCase();
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(text);
  const host = match?.[1] ?? text;
  const wildcard = host.startsWith("*.");
  return { host: wildcard ? host.slice(1) : host, port: match?.[2] ?? null, wildcard };
}

function matches(rule: Rule, hostname: string, port: string): boolean {
  if (rule.port !== null && rule.port !== port) return false;
  return rule.wildcard ? hostname.endsWith(rule.host) && hostname.length > rule.host.length : hostname === rule.host;
}

/** A URL's host with its effective port spelled out when it was not the default one (`URL.host`). */
const urlPort = (url: URL) => url.port || DEFAULT_PORTS[url.protocol] || "";

export class EgressAllowlist implements EgressGuard {
  private readonly allow: Rule[] | null;
  private readonly connectionHosts: Rule[];

  constructor(private readonly options: EgressOptions = {}) {
    this.allow = options.allow ? options.allow.map(parseRule) : null;
    this.connectionHosts = (options.connectionHosts ?? []).map(parseRule);
  }

  /** Whether `url` may be reached; `configured`: the hosts the calling connection's own settings name. */
  allows(url: URL, configured: readonly string[] = []): boolean {
    const hostname = url.hostname.toLowerCase();
    const port = urlPort(url);
    const rules = this.allow ?? [...this.connectionHosts, ...configured.map(parseRule)];
    return rules.some((rule) => matches(rule, hostname, port));
  }

  check(url: URL, connection: string, configured: readonly string[] = []): void {
    if (this.allows(url, configured)) return;
    const host = url.port ? `${url.hostname}:${url.port}` : url.hostname;
    this.options.onBlocked?.({ url: `${url.protocol}//${url.host}${url.pathname}`, host, connection });
    throw new OutpostError(
      "forbidden",
      this.allow
        ? `connection ${connection} may not reach ${host}: it is not in egress.allow of outpost.yaml`
        : `connection ${connection} may not reach ${host}: without an egress section in outpost.yaml only the hosts the connections name may be reached`,
      this.allow
        ? `if Outpost should reach it, add "${host}" to egress.allow in outpost.yaml`
        : `if Outpost should reach it, list every host it may reach in outpost.yaml: egress: { allow: ["${host}", …] }`,
    );
  }
}

/** The literal hosts a project's connections name (settings with `${VAR}` or `secret://` in the host are added by
 * each connection itself when it resolves them). */
export function connectionHosts(project: Pick<Project, "connections">): string[] {
  const hosts: string[] = [];
  const add = (text: string | undefined) => {
    if (!text || !/^https?:\/\//i.test(text) || /\$\{|secret:\/\//.test(text)) return;
    try {
      hosts.push(new URL(text).host);
    } catch {
      // not a URL: the connection reports it
    }
  };
  for (const c of project.connections.values()) {
    if (c.kind === "mcp") add(c.transport.type === "http" ? c.transport.url : undefined);
    else {
      add(c.spec);
      add(c.baseUrl);
    }
  }
  return hosts;
}

/** The allowlist of a project: its `egress.allow`, or the hosts its connections name. */
export function egressFor(project: Pick<Project, "connections" | "egress">, onBlocked?: (blocked: EgressBlocked) => void): EgressAllowlist {
  return new EgressAllowlist({
    ...(project.egress ? { allow: project.egress.allow } : {}),
    connectionHosts: connectionHosts(project),
    ...(onBlocked ? { onBlocked } : {}),
  });
}
