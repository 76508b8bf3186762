/**
 * Server-sent events for `GET /v1/runs/{id}/stream`.
 *
 * Wire format, one block per event:
 *
 *     id: <seq>
 *     event: <type>
 *     data: <EventView JSON>
 *
 * (transient events such as `model.delta` have seq -1 and no `id:` line),
 * plus `: heartbeat` comments while idle, and a final `event: end` (data
 * `{"run_id","status"}`) once the run is terminal. A stream that closes
 * without `end` was interrupted; the client resumes with `Last-Event-ID`.
 */
import type { ServerResponse } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import { type EventView, isTerminal, type OutpostApi } from "../core/api.js";
import { OutpostError } from "../core/errors.js";

export interface StreamOptions {
  runId: string;
  after: number;
  heartbeatMs: number;
  requestId: string;
  log: FastifyBaseLogger;
  /** Aborted when the server shuts down. */
  shutdown: AbortSignal;
}

/** Committed events carry `id: <seq>`; transient ones (seq < 1, e.g. model.delta) carry no id, so they never move `Last-Event-ID`. */
export function formatEvent(event: EventView): string {
  const type = String(event.type).replace(/[\r\n]/g, " ");
  const id = Number.isInteger(event.seq) && event.seq > 0 ? `id: ${event.seq}\n` : "";
  return `${id}event: ${type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** Streams a run's events onto an already-hijacked response; resolves when the stream is over. */
export async function streamRun(api: OutpostApi, raw: ServerResponse, options: StreamOptions): Promise<void> {
  const { runId, log } = options;
  const controller = new AbortController();
  const abort = () => controller.abort();
  const gone = new Promise<void>((resolve) => controller.signal.addEventListener("abort", () => resolve(), { once: true }));

  raw.on("close", abort);
  raw.on("error", abort);
  options.shutdown.addEventListener("abort", abort, { once: true });

  const open = () => !controller.signal.aborted && !raw.destroyed && !raw.writableEnded;
  const write = async (chunk: string) => {
    if (!open()) return;
    if (!raw.write(chunk)) {
      await Promise.race([new Promise<void>((resolve) => raw.once("drain", () => resolve())), gone]);
    }
  };

  raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    // One stream per connection: once it ends the socket closes (no idle keep-alive holding up shutdown).
    connection: "close",
    "x-accel-buffering": "no",
    "request-id": options.requestId,
  });
  raw.write("retry: 1000\n\n");

  const heartbeat = setInterval(() => {
    if (open()) raw.write(": heartbeat\n\n");
  }, options.heartbeatMs);
  heartbeat.unref();

  const iterator = api.streamEvents(runId, { after: options.after, signal: controller.signal })[Symbol.asyncIterator]();
  try {
    while (open()) {
      // Race against the abort, so a runtime iterator that ignores its signal cannot pin the connection.
      const next = await Promise.race([iterator.next(), gone.then(() => null)]);
      if (next === null || next.done) break;
      await write(formatEvent(next.value));
    }
    if (open()) {
      // The iterator also ends when the runtime shuts down: only a terminal run gets `end`;
      // otherwise the stream just closes and the client reconnects.
      const run = await api.getRun(runId).catch(() => null);
      if (run && isTerminal(run.status)) {
        await write(`event: end\ndata: ${JSON.stringify({ run_id: runId, status: run.status })}\n\n`);
      }
    }
  } catch (err) {
    if (open()) {
      const body =
        err instanceof OutpostError
          ? err.toJSON()
          : { error: { code: "internal", message: "internal error", hint: `see the server log (request id ${options.requestId})` } };
      if (!(err instanceof OutpostError)) log.error({ err, runId }, "event stream failed");
      await write(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
    }
  } finally {
    clearInterval(heartbeat);
    options.shutdown.removeEventListener("abort", abort);
    raw.off("close", abort);
    controller.abort();
    // Let the runtime release what it holds; do not wait for a pending next().
    void Promise.resolve()
      .then(() => iterator.return?.())
      .catch(() => {});
    if (!raw.destroyed && !raw.writableEnded) raw.end();
  }
}
