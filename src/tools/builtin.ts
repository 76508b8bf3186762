/**
 * Built-in tools every agent may list. The waiting tools never run a
 * handler: the run loop resolves them from the log (runtime/decide.ts), so a
 * run that waits holds nothing in any process.
 */
import { z } from "zod";
import type { ToolDefinition } from "../definitions/types.js";

const neverCalled = () => {
  throw new Error("waiting tools are resolved by the run loop, not executed");
};

export const builtinTools: ToolDefinition[] = [
  {
    name: "wait.until",
    description: "Pause this run until a time has passed, then continue. Give `seconds` from now, or `until` as an ISO-8601 time.",
    input: z
      .object({
        seconds: z
          .number()
          .positive()
          .max(366 * 24 * 3600)
          .optional(),
        until: z.iso.datetime({ offset: true }).optional(),
      })
      .refine((a) => (a.seconds === undefined) !== (a.until === undefined), { message: "give exactly one of seconds or until" }),
    sideEffects: false,
    handler: neverCalled,
  },
  {
    name: "wait.for_event",
    description:
      "Pause this run until an external event with this name is delivered to it (POST /v1/runs/{id}/events), then continue with its payload.",
    input: z.object({ name: z.string().min(1).max(200) }),
    sideEffects: false,
    handler: neverCalled,
  },
];

export const builtinToolNames = builtinTools.map((t) => t.name);
