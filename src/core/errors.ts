/**
 * Errors meant for people. Every user-facing failure is an OutpostError with a
 * stable code, a message saying what went wrong and a hint saying how to fix it.
 * The HTTP layer maps `status` to the response; the CLI prints message + hint.
 */
export type ErrorCode =
  | "invalid_request"
  | "not_found"
  | "conflict"
  | "payload_too_large"
  | "rate_limited"
  | "unauthorized"
  | "forbidden"
  | "invalid_project"
  | "unavailable"
  | "internal";

const statusOf: Record<ErrorCode, number> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  invalid_project: 422,
  unavailable: 503,
  internal: 500,
};

export class OutpostError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "OutpostError";
    this.status = statusOf[code];
  }

  toJSON(): { error: { code: ErrorCode; message: string; hint?: string } } {
    return { error: { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}) } };
  }
}

export const notFound = (what: string, id: string, hint?: string) => new OutpostError("not_found", `${what} "${id}" does not exist`, hint);
