/** An in-process OTLP/HTTP (JSON) receiver on 127.0.0.1: what an exporter sent, as a collector would take it. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number; message?: string };
}

export interface Receiver {
  url: string;
  bodies: { path: string; body: unknown }[];
  /** Every span received, in arrival order. */
  spans(): OtlpSpan[];
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const bodies: { path: string; body: unknown }[] = [];
  const server = createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      bodies.push({ path: req.url ?? "", body: JSON.parse(data) });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bodies,
    spans: () =>
      bodies
        .filter((b) => b.path === "/v1/traces")
        .flatMap((b) => (b.body as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] }).resourceSpans)
        .flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A span attribute's value, whatever its OTLP type. */
export const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v ? (v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue ?? v.arrayValue) : undefined;
};
