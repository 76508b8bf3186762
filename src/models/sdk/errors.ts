/**
 * Provider failures → ModelError, with messages that say what happened and
 * how to fix it. No message ever carries a credential: known secret values
 * and key-shaped tokens are redacted.
 */
import { APICallError, LoadAPIKeyError } from "ai";
import { displayUrl } from "../../definitions/urls.js";
import { ModelError } from "../types.js";

export interface ErrorContext {
  /** e.g. `model "fast" (openai gpt-4.1-mini)`. */
  label: string;
  /** The env var(s) holding the credential, for "check X" hints. */
  credentialHint: string;
  /** Where requests go, for network hints (never with a user name or password). */
  endpoint: string;
  /** What a successful answer looks like, e.g. "an OpenAI-style JSON response". */
  expectedResponse: string;
  /** Secret values to redact from any message. */
  secrets: string[];
}

export function toModelError(error: unknown, ctx: ErrorContext): ModelError {
  if (error instanceof ModelError) return error;
  const make = (message: string, code: ModelError["code"], retryable: boolean) =>
    new ModelError(redact(`${ctx.label}: ${message}`, ctx.secrets), code, retryable);

  if (APICallError.isInstance(error)) {
    const status = error.statusCode;
    const detail = providerMessage(error);
    if (status === undefined) {
      return make(`cannot reach ${ctx.endpoint} (${detail}); check the base URL and that the server is running`, "network", true);
    }
    if (status >= 200 && status < 300) {
      // A 2xx the SDK could not parse: usually a web page (a login proxy, a UI) instead of the API.
      const type = error.responseHeaders?.["content-type"];
      const answer = truncate((error.responseBody ?? "").replace(/\s+/g, " ").trim() || "an empty body", 120);
      return make(
        `${displayUrl(error.url)} answered HTTP ${status}${type ? ` (${type})` : ""} with something that is not ${ctx.expectedResponse}` +
          ` (${answer}); check that the base URL ${ctx.endpoint} points at the API itself, not at a web page or a login proxy`,
        "bad_request",
        false,
      );
    }
    if (status === 401 || status === 403) {
      return make(`the provider refused the credentials (HTTP ${status}: ${detail}); check ${ctx.credentialHint}`, "auth", false);
    }
    if (status === 429) {
      return make(
        `rate limited by the provider (HTTP 429: ${detail}); wait, lower the request rate, or raise the quota`,
        "rate_limited",
        true,
      );
    }
    if (status === 408 || status === 409 || status >= 500) {
      return make(`the provider failed (HTTP ${status}: ${detail}); it is usually transient — try again later`, "server_error", true);
    }
    if (status === 404) {
      return make(`not found (HTTP 404: ${detail}); check the model id and the base URL ${ctx.endpoint}`, "bad_request", false);
    }
    return make(`the provider rejected the request (HTTP ${status}: ${detail})`, "bad_request", false);
  }
  if (LoadAPIKeyError.isInstance(error)) {
    return make(`no API key; set ${ctx.credentialHint}`, "auth", false);
  }
  if (isNetworkError(error)) {
    return make(`cannot reach ${ctx.endpoint} (${messageOf(error)}); check the base URL and that the server is running`, "network", true);
  }
  // Errors sent inside a stream (`{ error: { message } }` chunks) and malformed responses.
  return make(`the model call failed: ${messageOf(error)}`, "unknown", false);
}

function providerMessage(error: APICallError): string {
  const body = error.responseBody;
  if (body) {
    try {
      const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown };
      const m = typeof parsed.error === "string" ? parsed.error : (parsed.error?.message ?? parsed.message);
      if (typeof m === "string" && m) return truncate(m);
    } catch {
      // not JSON
    }
  }
  return truncate(error.message);
}

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error && cause.message && !error.message.includes(cause.message)
      ? `${error.message}: ${cause.message}`
      : error.message;
  }
  if (error && typeof error === "object" && "message" in error) return String((error as { message: unknown }).message);
  try {
    return truncate(JSON.stringify(error));
  } catch {
    return String(error);
  }
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "ETIMEDOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

function isNetworkError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return true;
    if (e instanceof TypeError && /fetch failed|terminated|other side closed/i.test(e.message)) return true;
  }
  return false;
}

function truncate(s: string, max = 300): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Removes credential values and anything shaped like an API key or bearer token. */
export function redact(message: string, secrets: string[]): string {
  let out = message;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join("[redacted]");
  return out
    .replace(/\b(sk|pk|rk)-[A-Za-z0-9_*.-]{6,}/g, "$1-[redacted]")
    .replace(/\bBearer\s+[A-Za-z0-9_.~+/=-]{8,}/gi, "Bearer [redacted]")
    .replace(/\bAKIA[A-Z0-9]{12,}/g, "AKIA[redacted]");
}
