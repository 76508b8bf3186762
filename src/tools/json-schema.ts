/**
 * Tools from MCP servers and OpenAPI documents describe their input with JSON
 * Schema, not zod. The model is shown that schema as is; the run loop validates
 * the model's arguments with a zod schema built from it, so a malformed call is
 * rejected (and fed back to the model) before its intent is committed.
 */
import { z } from "zod";

/** A zod validator for a JSON Schema object. Schemas zod cannot translate are checked only for being an object. */
export function validatorFor(schema: Record<string, unknown> | undefined): z.ZodType<Record<string, unknown>> {
  const loose = z.record(z.string(), z.unknown());
  if (!schema || Object.keys(schema).length === 0) return loose;
  try {
    return z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]) as z.ZodType<Record<string, unknown>>;
  } catch {
    return loose;
  }
}
