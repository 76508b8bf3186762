/**
 * Every failure leaves the server as `{error: {code, message, hint}}`.
 * User mistakes get a readable message naming the field; anything unexpected
 * becomes a 500 "internal error" (logged with the request id, never a stack
 * trace to the client).
 */
import type { FastifyError, FastifyReply, FastifyRequest, FastifySchemaValidationError } from "fastify";
import { OutpostError } from "../core/errors.js";
import { bodyExamples } from "./schemas.js";

export interface ErrorBody {
  error: { code: string; message: string; hint?: string };
}

const envelope = (code: string, message: string, hint?: string): ErrorBody => ({
  error: { code, message, ...(hint ? { hint } : {}) },
});

/** `body.agent: required`, `query.limit: must be <= 200`, … */
export function describeValidation(errors: readonly FastifySchemaValidationError[], context: string | undefined): string {
  const part = context === "querystring" ? "query" : (context ?? "request");
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const e of errors) {
    const line = describeOne(e, part);
    if (!seen.has(line)) {
      seen.add(line);
      lines.push(line);
    }
    if (lines.length >= 5) break;
  }
  return lines.join("; ") || `${part}: invalid`;
}

function describeOne(e: FastifySchemaValidationError, part: string): string {
  const path = (e.instancePath ?? "")
    .split("/")
    .filter(Boolean)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  const params = (e.params ?? {}) as Record<string, unknown>;
  const at = (extra?: string) => [part, ...path, ...(extra ? [extra] : [])].join(".");
  switch (e.keyword) {
    case "required":
      return `${at(String(params.missingProperty))}: required`;
    case "additionalProperties":
      return `${at(String(params.additionalProperty))}: unknown field`;
    case "type":
      return `${at()}: must be ${article(String(params.type))}`;
    case "enum":
      return `${at()}: must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "minLength":
      return params.limit === 1 ? `${at()}: must not be empty` : `${at()}: ${e.message}`;
    case "pattern":
      return `${at()}: has the wrong format`;
    default:
      return `${at()}: ${e.message ?? "is invalid"}`;
  }
}

function article(type: string): string {
  const types = type.split(",");
  const named = types.map((t) => (t === "object" || t === "array" || t === "integer" ? `an ${t}` : `a ${t}`));
  return named.join(" or ");
}

function routeKey(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions?.url ?? request.url}`;
}

function validationHint(request: FastifyRequest, context: string | undefined): string {
  const example = bodyExamples[routeKey(request)];
  if (context === "body" && example) return `send ${example} as application/json`;
  if (context === "querystring") return "check the query parameters against GET /openapi.json";
  if (context === "headers") return "check the request headers against GET /openapi.json";
  return "see GET /openapi.json (or /docs) for the expected request";
}

/** Fastify's own error codes that stand for a client mistake, and what to answer. */
function clientError(error: FastifyError, request: FastifyRequest, bodyLimit: number): [number, ErrorBody] | null {
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return [413, envelope("payload_too_large", `request body is larger than ${bodyLimit} bytes`, "send a smaller body")];
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return [
        415,
        envelope(
          "invalid_request",
          `unsupported content type ${JSON.stringify(String(request.headers["content-type"] ?? "(none)").slice(0, 100))}`,
          "send the body as JSON with the header content-type: application/json",
        ),
      ];
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return [400, envelope("invalid_request", "body is not valid JSON", "send a well-formed JSON object")];
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return [
        400,
        envelope(
          "invalid_request",
          "body is empty but content-type is application/json",
          "send a JSON object (e.g. {}) or drop the content-type header",
        ),
      ];
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return [400, envelope("invalid_request", "content-length does not match the body", "send a correct content-length")];
    case "FST_ERR_BAD_URL":
      return [400, envelope("invalid_request", "the URL is malformed", "percent-encode the path")];
    default:
      break;
  }
  // Other 4xx from Fastify or its parsers (e.g. JSON with __proto__) are safe to explain.
  const status = error.statusCode ?? 0;
  if (status >= 400 && status < 500 && typeof error.code === "string" && error.code.startsWith("FST_")) {
    return [status, envelope(status === 413 ? "payload_too_large" : "invalid_request", error.message)];
  }
  return null;
}

export function makeErrorHandler(bodyLimit: number) {
  return function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    if (error instanceof OutpostError) {
      if (error.status >= 500) request.log.error({ err: error }, "request failed");
      return reply.code(error.status).send(error.toJSON());
    }
    if (error.validation) {
      const message = describeValidation(error.validation, error.validationContext);
      return reply.code(400).send(envelope("invalid_request", message, validationHint(request, error.validationContext)));
    }
    const known = clientError(error, request, bodyLimit);
    if (known) return reply.code(known[0]).send(known[1]);
    request.log.error({ err: error }, "unhandled error");
    return reply.code(500).send(envelope("internal", "internal error", `see the server log (request id ${request.id})`));
  };
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply) {
  return reply
    .code(404)
    .send(
      envelope(
        "not_found",
        `no route ${request.method} ${request.url.split("?")[0]}`,
        "the API lives under /v1 — see GET /openapi.json or /docs",
      ),
    );
}
