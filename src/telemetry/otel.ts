/**
 * Telemetry in the open standard: the spans SpanBuilder derives from the event log go through the OpenTelemetry
 * SDK to an OTLP/HTTP collector, and metrics derived from the same spans are kept by an OpenTelemetry meter, read
 * by Prometheus at `/metrics` and pushed over OTLP when a collector is configured.
 *
 * Nothing is sent anywhere unless an endpoint is configured (options, or the standard OTEL_EXPORTER_OTLP_*
 * variables); OTEL_SDK_DISABLED=true turns export off even then. Every string that leaves goes through the
 * redactor first, and spans carry no content (see spans.ts).
 */
import {
  type Attributes,
  type Counter,
  type Histogram,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  MeterProvider,
  type MetricReader,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor, type IdGenerator, type SpanExporter, TracerProvider } from "@opentelemetry/sdk-trace";
import { type RunMeta, SpanBuilder, type SpanRecord } from "./spans.js";

export interface TelemetryOptions {
  /** OTLP/HTTP endpoint, e.g. `http://collector:4318` (traces go to `/v1/traces`, metrics to `/v1/metrics`).
   * Default: OTEL_EXPORTER_OTLP_ENDPOINT (or the per-signal OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
   * OTEL_EXPORTER_OTLP_METRICS_ENDPOINT). None: nothing is exported. */
  endpoint?: string;
  /** Sent with every export (a collector's API key). Default: OTEL_EXPORTER_OTLP_HEADERS, read by the exporter. */
  headers?: Record<string, string>;
  /** `service.name` (default OTEL_SERVICE_NAME, else `outpost`). */
  serviceName?: string;
  /** Metrics push interval over OTLP (default 15 s). */
  metricsIntervalMs?: number;
  /** Spans go to this exporter instead of OTLP (tests of span shapes, other protocols). */
  spanExporter?: SpanExporter;
  env?: NodeJS.ProcessEnv;
}

export interface TelemetryDeps {
  /** Removes secret values from a string (the process's redactor). */
  redact: (text: string) => string;
  /** The provider of an agent's model (`gen_ai.provider.name`). */
  providerOf?: (agent: string) => string | undefined;
  /** Runs queued, running and waiting per workspace, read when metrics are collected. */
  activeRuns?: () => Promise<{ workspace: string; status: string; count: number }[]>;
  version?: string;
}

/** The SDK asks for ids; the span about to start has them already (derived from its run). */
class DerivedIds implements IdGenerator {
  traceId = "";
  spanId = "";
  generateTraceId(): string {
    return this.traceId;
  }
  generateSpanId(): string {
    return this.spanId;
  }
}

const KIND = { internal: SpanKind.INTERNAL, client: SpanKind.CLIENT } as const;
const WORKSPACE = "outpost.workspace";
const seconds = (ms: number) => Math.max(0, ms) / 1000;

export class Telemetry {
  private readonly builder: SpanBuilder;
  private readonly tracer: TracerProvider | null;
  private readonly ids = new DerivedIds();
  private readonly meter: MeterProvider;
  private readonly prometheus: PrometheusExporter;
  private readonly serializer = new PrometheusSerializer();
  private readonly instruments: {
    runs: Counter;
    runDuration: Histogram;
    steps: Counter;
    tokens: Counter;
    cost: Counter;
    tokenUsage: Histogram;
    modelDuration: Histogram;
    toolCalls: Counter;
    toolDuration: Histogram;
  };
  /** Where spans and metrics are exported over OTLP; null: nowhere. */
  readonly endpoint: string | null;

  constructor(
    options: TelemetryOptions,
    private readonly deps: TelemetryDeps,
  ) {
    const env = options.env ?? process.env;
    this.builder = new SpanBuilder(deps.providerOf ? { providerOf: deps.providerOf } : {});
    const disabled = env.OTEL_SDK_DISABLED === "true";
    const base = options.endpoint ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
    const tracesUrl = options.endpoint
      ? join(options.endpoint, "v1/traces")
      : (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (base ? join(base, "v1/traces") : undefined));
    const metricsUrl = options.endpoint
      ? join(options.endpoint, "v1/metrics")
      : (env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT ?? (base ? join(base, "v1/metrics") : undefined));
    this.endpoint = disabled ? null : (base ?? tracesUrl ?? metricsUrl ?? null);
    const resource = resourceFromAttributes({
      "service.name": options.serviceName ?? env.OTEL_SERVICE_NAME ?? "outpost",
      ...(deps.version ? { "service.version": deps.version } : {}),
    });
    const headers = options.headers ? { headers: options.headers } : {};
    const spanExporter = options.spanExporter ?? (!disabled && tracesUrl ? new OTLPTraceExporter({ url: tracesUrl, ...headers }) : null);
    this.tracer = spanExporter
      ? new TracerProvider({
          resource,
          idGenerator: this.ids,
          spanProcessors: [new BatchSpanProcessor({ exporter: spanExporter, scheduledDelayMillis: 1000 })],
        })
      : null;

    this.prometheus = new PrometheusExporter({ preventServerStart: true });
    const readers: MetricReader[] = [this.prometheus];
    if (!disabled && metricsUrl) {
      readers.push(
        new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter({ url: metricsUrl, temporalityPreference: AggregationTemporality.CUMULATIVE, ...headers }),
          exportIntervalMillis: options.metricsIntervalMs ?? 15_000,
        }),
      );
    }
    this.meter = new MeterProvider({ resource, readers });
    const m = this.meter.getMeter("outpost", deps.version);
    const durationBuckets = { advice: { explicitBucketBoundaries: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600] } };
    this.instruments = {
      runs: m.createCounter("outpost.runs.finished", { description: "Runs that ended, by agent and status" }),
      runDuration: m.createHistogram("outpost.run.duration", {
        unit: "s",
        description: "From a run's start to its end",
        ...durationBuckets,
      }),
      steps: m.createCounter("outpost.steps", { description: "Model turns (steps) taken by runs" }),
      tokens: m.createCounter("outpost.tokens", { description: "Tokens billed by models, by type (input, output)" }),
      cost: m.createCounter("outpost.cost.usd", { unit: "usd", description: "What model calls cost, in US dollars" }),
      tokenUsage: m.createHistogram("gen_ai.client.token.usage", {
        unit: "{token}",
        description: "Tokens per model call",
        advice: { explicitBucketBoundaries: [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576] },
      }),
      modelDuration: m.createHistogram("gen_ai.client.operation.duration", {
        unit: "s",
        description: "Model call duration",
        ...durationBuckets,
      }),
      toolCalls: m.createCounter("outpost.tool.calls", { description: "Tool calls, by tool and outcome" }),
      toolDuration: m.createHistogram("outpost.tool.duration", { unit: "s", description: "Tool call duration", ...durationBuckets }),
    };
    if (deps.activeRuns) {
      const active = m.createObservableGauge("outpost.runs.active", {
        description: "Runs queued, running and waiting (the queue's depth is `queued`)",
      });
      const read = deps.activeRuns;
      m.addBatchObservableCallback(
        async (observer) => {
          for (const r of await read()) observer.observe(active, r.count, { [WORKSPACE]: r.workspace, "outpost.run.status": r.status });
        },
        [active],
      );
    }
  }

  /** Whether spans are exported. */
  get tracing(): boolean {
    return this.tracer !== null;
  }

  /** A run this process took up; `log`, its events so far, reopens the spans an earlier execution left open. */
  claim(meta: RunMeta, log?: readonly { type: string; data: unknown; at: number }[]): void {
    this.builder.claim(meta, Date.now(), log);
  }

  release(runId: string): void {
    this.builder.release(runId);
  }

  /** A committed event of a run this process executes. */
  observe(runId: string, type: string, data: unknown, at: number): void {
    const spans = this.builder.observe(runId, type, data as Record<string, unknown>, at);
    for (const s of spans) {
      this.record(s);
      if (this.tracer) this.export(s);
    }
  }

  private record(s: SpanRecord): void {
    const a = s.attributes;
    const ws = { [WORKSPACE]: String(a[WORKSPACE]), "gen_ai.agent.name": String(a["gen_ai.agent.name"] ?? "") };
    const i = this.instruments;
    const op = a["gen_ai.operation.name"];
    if (op === "chat") {
      const model = String(a["gen_ai.response.model"] ?? a["gen_ai.request.model"] ?? "");
      const attrs = {
        ...ws,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        ...(a["error.type"] ? { "error.type": String(a["error.type"]) } : {}),
      };
      i.modelDuration.record(seconds(s.end - s.start), attrs);
      if (a["error.type"]) return;
      i.steps.add(1, { ...ws, "gen_ai.request.model": model });
      const input = Number(a["gen_ai.usage.input_tokens"] ?? 0);
      const output = Number(a["gen_ai.usage.output_tokens"] ?? 0);
      i.tokens.add(input, { ...ws, "gen_ai.request.model": model, "gen_ai.token.type": "input" });
      i.tokens.add(output, { ...ws, "gen_ai.request.model": model, "gen_ai.token.type": "output" });
      i.tokenUsage.record(input, { ...attrs, "gen_ai.token.type": "input" });
      i.tokenUsage.record(output, { ...attrs, "gen_ai.token.type": "output" });
      i.cost.add(Number(a["outpost.cost_usd"] ?? 0), { ...ws, "gen_ai.request.model": model });
    } else if (op === "execute_tool") {
      const attrs = { ...ws, "gen_ai.tool.name": String(a["gen_ai.tool.name"]), outcome: a["error.type"] ? String(a["error.type"]) : "ok" };
      i.toolCalls.add(1, attrs);
      i.toolDuration.record(seconds(s.end - s.start), attrs);
    } else if (op === "invoke_agent" || op === "invoke_workflow") {
      const attrs = { ...ws, "outpost.run.status": String(a["outpost.run.status"]) };
      i.runs.add(1, attrs);
      i.runDuration.record(seconds(s.end - s.start), attrs);
    }
  }

  private export(s: SpanRecord): void {
    const tracer = this.tracer?.getTracer("outpost");
    if (!tracer) return;
    this.ids.traceId = s.traceId;
    this.ids.spanId = s.spanId;
    const parent = s.parentSpanId
      ? trace.setSpanContext(ROOT_CONTEXT, { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true })
      : ROOT_CONTEXT;
    const attributes: Attributes = {};
    for (const [k, v] of Object.entries(s.attributes)) {
      attributes[k] = typeof v === "string" ? this.deps.redact(v) : Array.isArray(v) ? v.map((x) => this.deps.redact(x)) : v;
    }
    const span = tracer.startSpan(this.deps.redact(s.name), { kind: KIND[s.kind], startTime: s.start, attributes }, parent);
    if (s.error) span.setStatus({ code: SpanStatusCode.ERROR, message: this.deps.redact(s.error.message) });
    span.end(s.end);
  }

  /** The metrics of one workspace in the Prometheus text format (a caller sees only its own workspace's series). */
  async prometheusText(workspace: string): Promise<string> {
    const { resourceMetrics } = await this.prometheus.collect();
    return this.serializer.serialize(onlyWorkspace(resourceMetrics, workspace));
  }

  /** Sends what is buffered (spans, metrics) now. */
  async flush(): Promise<void> {
    await Promise.all([this.tracer?.forceFlush(), this.meter.forceFlush()]);
  }

  async shutdown(): Promise<void> {
    await Promise.allSettled([this.tracer?.shutdown(), this.meter.shutdown()]);
  }
}

function join(base: string, path: string): string {
  return `${base.replace(/\/+$/, "")}/${path}`;
}

/** A copy holding only the data points of `workspace` (metrics with none left are dropped). */
function onlyWorkspace(rm: ResourceMetrics, workspace: string): ResourceMetrics {
  return {
    ...rm,
    scopeMetrics: rm.scopeMetrics.map((sm) => ({
      ...sm,
      metrics: sm.metrics
        .map((metric) => ({ ...metric, dataPoints: metric.dataPoints.filter((p) => p.attributes[WORKSPACE] === workspace) }))
        .filter((metric) => metric.dataPoints.length > 0) as typeof sm.metrics,
    })),
  };
}
