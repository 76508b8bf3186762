/**
 * `GET /metrics`: the caller's workspace's metrics in the Prometheus text format (telemetry/otel.ts) — runs, steps,
 * tokens, cost, model and tool latency, runs queued / running / waiting. Counters and histograms are this process's
 * (scrape every node); the active-run gauges are read from the store, the same on every node.
 */
import type { FastifyInstance } from "fastify";
import type { Telemetry } from "../../telemetry/otel.js";
import { callerOf } from "../caller.js";

export async function registerMetricsRoute(server: FastifyInstance, telemetry: Telemetry): Promise<void> {
  server.get(
    "/metrics",
    {
      schema: {
        tags: ["telemetry"],
        summary: "The caller's workspace's metrics, in the Prometheus text exposition format (version 0.0.4)",
        produces: ["text/plain"],
        response: { 200: { type: "string" }, "4xx": { $ref: "Error#" } },
      },
    },
    async (request, reply) =>
      reply.type("text/plain; version=0.0.4; charset=utf-8").send(await telemetry.prometheusText(callerOf(request).workspace)),
  );
}
