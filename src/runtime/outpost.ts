/**
 * A running Outpost: store + scheduler + executor behind the OutpostApi face.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, join, resolve } from "node:path";
import pino from "pino";
import { z } from "zod";
import { type BusinessContext, ContextCache, contextLookupTool } from "../context/index.js";
import type {
  AgentView,
  ApprovalStatus,
  ApprovalView,
  ArtifactView,
  EventView,
  ListRunsRequest,
  OutpostApi,
  Page,
  RunTreeView,
  RunView,
  SessionView,
  StartRunRequest,
} from "../core/api.js";
import { isTerminal } from "../core/api.js";
import { notFound, OutpostError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import { DEFAULT_LIMITS, exposedAgents, ProjectError, selectCandidate } from "../definitions/index.js";
import type { AgentDefinition, Project, ToolDefinition } from "../definitions/types.js";
import { createEmbedder, MemoryStore, memoryTools } from "../memory/index.js";
import { createModelClient, describeModel, type ModelClient } from "../models/index.js";
import { approverProblem } from "../security/approvals/index.js";
import { AuditLog, type AuditRecordInput, loadAuditSigningKey } from "../security/audit/index.js";
import { Budgets, teamsOf } from "../security/budgets/index.js";
import { canonicalJson, sha256Hex } from "../security/canonical.js";
import { egressFor } from "../security/egress.js";
import { scanForInjection } from "../security/guardrails/index.js";
import { Identities, IdentityStore, localCaller, OidcVerifier } from "../security/identity/index.js";
import { checkPolicies, createPolicyEngine, type ProjectPolicyEngine } from "../security/policy/index.js";
import type { SecurityServices } from "../security/services.js";
import type { Caller } from "../security/types.js";
import { Redactor, Vault, VaultSecrets } from "../security/vault/index.js";
import type { ClaimCaps } from "../store/fair-claim.js";
import { type ApprovalRecord, type ChildNotice, openStore, type RunRecord, type Store } from "../store/index.js";
import { CostLedger } from "../telemetry/costs.js";
import { Telemetry, type TelemetryOptions } from "../telemetry/otel.js";
import { runSpanIdOf, traceIdOf } from "../telemetry/spans.js";
import {
  artifactPreview,
  artifactsTool,
  builtinTools,
  collaborationTools,
  eventTools,
  mcpSource,
  openApiSource,
  ToolRegistry,
  type ToolSource,
  type ToolSourceDeps,
  type ToolSourceStatus,
} from "../tools/index.js";
import { type EventSubscription, Triggers } from "../triggers/index.js";
import { executeWorkflow, isWorkflowRun, WORKFLOW_PREFIX } from "../workflows/executor.js";
import { type WorkflowsHost, type WorkflowView, workflowView } from "../workflows/views.js";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.js";
import { type Collaboration, callKeyOf, childLink, executeRun, type ModelRoute, type OutcomeRetry, RunControl } from "./executor.js";
import { approvalRehash, connectionOf, runGovernance } from "./governance.js";
import { modelRoutes } from "./model-routes.js";
import { recallForStep } from "./recall-step.js";
import { Scheduler } from "./scheduler.js";
import { ScopedOutpost, type WorkspaceRuntime } from "./scoped-api.js";
import { replay } from "./state.js";
import { approvalView, artifactView, eventView, iso, runView, treeView } from "./views.js";

export const VERSION = "0.1.0";

export interface OutpostOptions {
  project: Project;
  /** Default <cwd>/.outpost; SQLite at <dataDir>/outpost.db. */
  dataDir?: string;
  /** postgres://… → PostgreSQL (else OUTPOST_DATABASE_URL, else SQLite). */
  databaseUrl?: string;
  /** Runs executed at once by this process; 0 = API only (no workers). Default 10 000. */
  concurrency?: number;
  env?: NodeJS.ProcessEnv;
  logger?: pino.Logger;
  /** Replace the model an agent uses (tests, benchmarks). */
  modelFor?: (agent: AgentDefinition) => ModelClient | undefined;
  /** Lease length; a dead worker's runs are taken over after it. Default 30 s. */
  leaseMs?: number;
  /** Fallback poll for due timers and expired leases. Default 500 ms. */
  pollMs?: number;
  /** Fallback poll of an event stream for what other processes committed (PostgreSQL notifies at once). Default 1 s. */
  streamPollMs?: number;
  /** How calls whose outcome is unknown (their system went away mid-call) are retried with their key. */
  outcomeRetry?: OutcomeRetry;
  /** How long an approval request stays open before it expires (a denial). Default 24 h. */
  approvalTtlMs?: number;
  /** How often the audit chainer links new entries (default 1000 ms). */
  auditIntervalMs?: number;
  /** Replaces secret values in logs, events and outputs; pass the one your logger was built with (`pinoOptions()`). */
  redactor?: Redactor;
  /** Where traces and metrics are exported (OTLP/HTTP). Default: the standard OTEL_EXPORTER_OTLP_* variables; none
   * set, nothing leaves the process (metrics are still served at /metrics). */
  telemetry?: TelemetryOptions;
  /** Observes every event this process commits or streams (telemetry, benchmarks). Must not throw. */
  onEvent?: (event: EventView) => void;
  /** What connections get to resolve `secret://` references (security/vault VaultSecrets) and which hosts they may
   * reach (security/egress); without them a `secret://` reference is an error and any host is reachable. */
  connectionSecurity?: Pick<ToolSourceDeps, "secrets" | "egress">;
  /** What schedules take for now (tests move it; `triggers.tick()` fires what fell due). Default Date.now. */
  clock?: () => number;
  /** false: schedules fire only when `triggers.tick()` is called (tests under simulated time). Default true: every second. */
  triggerTicks?: boolean;
}

export interface Outpost extends OutpostApi {
  readonly project: Project;
  readonly storeKind: "sqlite" | "postgres";
  readonly store: Store;
  /** The tamper-evident audit log of this Outpost's workspaces (security/audit). */
  readonly audit: AuditLog;
  /** The policy engine every action is put to. */
  readonly policy: ProjectPolicyEngine;
  /** Scoped memory and knowledge (memory/): what agents remember, searchable, editable, erasable. */
  readonly memory: MemoryStore;
  /** Business context (context/): the entities agents looked up, shared, and the types the project declares. */
  readonly context: BusinessContext;
  /** What model calls cost, by agent, team, model and period (telemetry/costs): GET /v1/costs, outpost costs. */
  readonly costs: CostLedger;
  /** Traces and metrics of the runs this process executes (telemetry/otel): OTLP export, GET /metrics. */
  readonly telemetry: Telemetry;
  /** Schedules (triggers/): what starts runs without a person asking, and their firings. */
  readonly triggers: Triggers;
  /** The project's workflows (workflows/), as the server's /v1/workflows routes use them. */
  readonly workflows: WorkflowsHost;
  /** The project's workflows (workflows/). */
  listWorkflows(): WorkflowView[];
  /** Starts a run of a workflow as `caller` (in its workspace): answered at once, the run goes on in the background. */
  startWorkflowAs(caller: Caller, name: string, request: { input?: unknown; idempotency_key?: string }): Promise<RunView>;
  describeModels(): { agent: string; model: string }[];
  /** Runs this process is executing now (0 for an API-only process). */
  executing(): number;
  /** The state of each connection (MCP server, OpenAPI document). */
  connections(): ({ name: string; kind: "mcp" | "openapi" } & ToolSourceStatus)[];
  /** Tell other processes where this one serves its API (embedded mode: written to the data folder's lock). */
  advertise(url: string): void;
  /** The API as `caller` sees it: confined to its workspace (the server makes one per request). */
  as(caller: Caller): OutpostApi;
  /** Identities (keys, tokens) and the other security parts, for the server and the CLI. */
  readonly security: SecurityServices & { identities: Identities };
  close(): Promise<void>;
}

type Listener = (e: EventView) => void;
/** What a stream's listener is given when another process appended to the run's log: read the store now. */
const STORE_CHANGED: EventView = { run_id: "", seq: Number.MAX_SAFE_INTEGER, type: "store.changed", data: {}, at: "" };

export async function startOutpost(options: OutpostOptions): Promise<Outpost> {
  const env = options.env ?? process.env;
  const dataDir = resolve(options.dataDir ?? join(process.cwd(), ".outpost"));
  const databaseUrl = options.databaseUrl ?? env.OUTPOST_DATABASE_URL ?? undefined;
  const embedded = !databaseUrl;
  const lock: DataDirLock = embedded ? lockDataDir(dataDir) : { release: () => undefined, advertise: () => undefined };
  let store: Store;
  try {
    store = await openStore({ dataDir, databaseUrl });
  } catch (err) {
    lock.release();
    throw err;
  }
  try {
    return await new LocalOutpost(options, store, dataDir, env, embedded, lock).start();
  } catch (err) {
    await store.close().catch(() => undefined);
    lock.release();
    throw err;
  }
}

class LocalOutpost implements Outpost, WorkspaceRuntime {
  readonly storeKind: "sqlite" | "postgres";
  private readonly workspace: string;
  readonly security: SecurityServices & { identities: Identities };
  /** The local owner's view (embedded use, the local CLI): the project's workspace, as its admin. */
  private readonly local: ScopedOutpost;
  private readonly tools: ToolRegistry;
  private readonly models = new Map<string, ModelClient>();
  private readonly collaboration: Collaboration;
  private sweeper: NodeJS.Timeout | null = null;
  private sweeping = false;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly controls = new Map<string, RunControl>();
  private readonly log: pino.Logger;
  /** Policy on every action: the project's Cedar policies (and the shipped baseline). */
  readonly policy: ProjectPolicyEngine;
  /** Spend caps (outpost.yaml `budgets`); null when none are configured. */
  private readonly budgets: Budgets | null;
  readonly audit: AuditLog;
  readonly memory: MemoryStore;
  readonly context: BusinessContext;
  readonly costs: CostLedger;
  readonly telemetry: Telemetry;
  readonly triggers: Triggers;
  private readonly vault: Vault;
  private readonly redactor: Redactor;
  private scheduler: Scheduler | null = null;
  private closed = false;
  private followingStore = false;

  constructor(
    private readonly options: OutpostOptions,
    readonly store: Store,
    private readonly dataDir: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly embedded: boolean,
    private readonly lock: DataDirLock,
  ) {
    this.storeKind = store.kind;
    this.workspace = options.project.workspace;
    // Secret values the process learns (from the vault, or env values connections reference) never reach a log line,
    // an event or a response: one redactor for the logger, the executor and the tool sources.
    this.redactor = options.redactor ?? new Redactor();
    this.log = options.logger ?? pino({ level: env.OUTPOST_LOG_LEVEL ?? "warn", ...this.redactor.pinoOptions() });
    this.vault = Vault.open(store.domain, { dataDir, env });
    this.security = {
      defaultWorkspace: this.workspace,
      identities: new Identities(new IdentityStore(store.domain)),
      vault: this.vault,
    };
    this.local = new ScopedOutpost(this, localCaller(this.workspace));
    this.policy = createPolicyEngine(options.project);
    // A forbid that fails to evaluate does not count (Cedar): policies that do not fit the schema are refused at start.
    const checked = checkPolicies(options.project);
    if (checked.errors.length > 0) throw new ProjectError(options.project.root, checked.errors);
    const caps = options.project.budgets ?? [];
    this.budgets = caps.length > 0 ? new Budgets(store.domain, caps) : null;
    this.audit = new AuditLog(store, loadAuditSigningKey({ dataDir, env }), {
      onError: (err) => this.log.warn({ err: (err as Error)?.message }, "audit chainer: will retry"),
    });
    this.security.audit = this.audit;
    if (this.budgets) this.security.budgets = this.budgets;
    let warnedAt = 0;
    this.memory = new MemoryStore(store.domain, {
      embedder: createEmbedder(options.project.embedder, env),
      onEmbedFailure: (err) => {
        if (Date.now() - warnedAt < 60_000) return; // a model that is down fails every write: say so once a minute
        warnedAt = Date.now();
        this.log.warn(
          { err: (err as Error)?.message },
          "memory embedder failed: items are written without vectors (full text finds them) and embedded once it answers",
        );
      },
    });
    this.context = { cache: new ContextCache(store.domain), types: options.project.context ?? new Map() };
    this.costs = new CostLedger(store.domain, () => this.project.teams.values());
    this.telemetry = new Telemetry(
      { env, ...options.telemetry },
      {
        redact: (text) => this.redactor.redact(text),
        providerOf: (name) => this.providerOf(name),
        activeRuns: () => store.countActiveRuns(),
        version: VERSION,
      },
    );
    const subscriptions = eventSubscriptions(options.project);
    this.triggers = new Triggers({
      storage: store.domain,
      workspace: options.project.workspace,
      agents: options.project.agents.values(),
      subscriptions,
      audit: (entries) =>
        void this.audit
          .record(options.project.workspace, entries)
          .catch((err) => this.log.warn({ err: (err as Error)?.message }, "audit entry lost")),
      startRun: async (r) => {
        const { run, created } = await this.store.createRun({
          workspace: r.workspace ?? options.project.workspace,
          agent: r.agent,
          input: r.input,
          idempotencyKey: r.idempotencyKey,
          startedBy: r.startedBy,
        });
        if (created) this.wake();
        return { id: run.id, created };
      },
      ...(options.clock ? { clock: options.clock } : {}),
      secret: (name) => this.vault.get(options.project.workspace, name),
      log: this.log,
    });
    const fixed = new Map<string, ToolDefinition>();
    for (const t of [
      ...builtinTools,
      artifactsTool(store),
      ...memoryTools(this.memory),
      ...(options.project.context
        ? [
            contextLookupTool({
              types: options.project.context,
              tool: (name) => this.tools.get(name),
              connectionClassification: (name) => connectionOf(options.project, name)?.classification,
              cache: this.context.cache,
            }),
          ]
        : []),
      ...collaborationTools(options.project),
      ...eventTools(options.project, subscriptions, (workspace, event, payload, key, from) =>
        this.deliverEvent(workspace, event, payload, key, from),
      ),
      ...options.project.tools.values(),
    ]) {
      fixed.set(t.name, t);
    }
    const recordQuietly = (entries: AuditRecordInput[]) =>
      void this.audit.record(this.workspace, entries).catch((err) => this.log.warn({ err: (err as Error)?.message }, "audit entry lost"));
    const sourceDeps: ToolSourceDeps = {
      env,
      dataDir,
      log: this.log,
      secrets: new VaultSecrets(this.vault, this.workspace, {
        redactor: this.redactor,
        onSecretUsed: (name, connection) => recordQuietly([{ kind: "secret.used", actor: "system", data: { name, connection } }]),
      }),
      egress: egressFor(options.project, (b) =>
        recordQuietly([{ kind: "guardrail.egress_blocked", actor: "system", data: { ...b } as Record<string, unknown> }]),
      ),
      ...options.connectionSecurity,
    };
    const sources: ToolSource[] = [...options.project.connections.values()].map((c) =>
      c.kind === "mcp" ? mcpSource(c, sourceDeps) : openApiSource(c, sourceDeps),
    );
    this.tools = new ToolRegistry(fixed, sources);
    this.collaboration = {
      startChild: (r) => this.startChild(r),
      cancelRuns: async (ids, reason) => {
        for (const id of ids) await this.cancelTree(id, reason);
      },
      notifyParent: (notice, workspace) => this.notifyParent(notice, workspace),
      setSessionAgent: (workspace, sessionId, agent) => this.store.setSessionAgent(workspace, sessionId, agent),
    };
  }

  get project(): Project {
    return this.options.project;
  }

  async start(): Promise<this> {
    await this.startIdentities();
    await this.recordDefinitions();
    await this.syncKnowledge();
    this.audit.start(this.options.auditIntervalMs ?? 1000);
    // Connections come up together; one that cannot be reached reports it and keeps retrying (never blocks the start).
    await Promise.all(this.tools.listSources().map((source) => source.start()));
    try {
      return await this.startWorkers();
    } catch (err) {
      await Promise.all(this.tools.listSources().map((source) => source.close().catch(() => undefined)));
      throw err;
    }
  }

  /** A start with changed agents, teams, tools, connections or policies is recorded in the audit log (`definitions.loaded`). */
  private async recordDefinitions(): Promise<void> {
    const p = this.project;
    const definitions = {
      agents: [...p.agents.values()].map(({ file: _file, ...a }) => a),
      teams: [...p.teams.values()].map(({ file: _file, ...t }) => t),
      tools: [...p.tools.values()].map((t) => ({ name: t.name, classification: t.classification ?? null, approval: t.approval ?? null })),
      connections: [...p.connections.values()].map((c) => ({
        name: c.name,
        kind: c.kind,
        classification: c.classification ?? null,
        tools: c.tools,
      })),
      models: [...p.models.keys()],
      budgets: p.budgets ?? [],
    };
    const hash = sha256Hex(canonicalJson(definitions));
    const last = await this.store.domain.db
      .selectFrom("audit_log")
      .select("data")
      .where("workspace", "=", this.workspace)
      .where("kind", "=", "definitions.loaded")
      .orderBy("seq", "desc")
      .limit(1)
      .executeTakeFirst();
    const before = last ? (JSON.parse(last.data) as { definitions_sha256?: string; policies_sha256?: string }) : null;
    if (before?.definitions_sha256 === hash && before.policies_sha256 === this.policy.hash) return;
    await this.audit.record(this.workspace, [
      {
        kind: "definitions.loaded",
        actor: "local",
        data: {
          definitions_sha256: hash,
          policies_sha256: this.policy.hash,
          policies: this.policy.policies.map((x) => x.id),
          agents: [...p.agents.keys()],
          previous: before
            ? { definitions_sha256: before.definitions_sha256 ?? null, policies_sha256: before.policies_sha256 ?? null }
            : null,
        },
      },
    ]);
  }

  /**
   * The documents outpost.yaml lists under `knowledge:`, brought into the store: a changed file rewrites only its
   * changed chunks, an unchanged one costs a read. A file that cannot be read is reported and skipped — the agents
   * start without it rather than not at all. Documents removed from the list stay until `outpost knowledge rm`.
   */
  private async syncKnowledge(): Promise<void> {
    for (const k of this.project.knowledge ?? []) {
      try {
        const text = await readFile(k.path, "utf8");
        if (text.trim() === "") {
          this.log.warn({ file: k.file }, "knowledge file is empty: skipped");
          continue;
        }
        await this.memory.ingest({
          workspace: this.workspace,
          scope: k.scope,
          name: basename(k.path),
          text,
          format: k.format,
          tags: k.tags,
          ...(k.classification ? { classification: k.classification } : {}),
          author: "project",
        });
      } catch (err) {
        this.log.warn({ file: k.file, err: (err as Error)?.message }, "could not load a knowledge file: skipped");
      }
    }
  }

  /** OIDC tokens (auth.oidc), the project's workspace, and at first start OUTPOST_ADMIN_KEY as its admin key. */
  private async startIdentities(): Promise<void> {
    const oidc = this.project.auth?.oidc;
    const store = this.security.identities.store;
    if (oidc) this.security.identities = new Identities(store, await OidcVerifier.create(oidc, this.workspace));
    await store.ensureWorkspace(this.workspace);
    const adminKey = this.env.OUTPOST_ADMIN_KEY;
    if (adminKey) await this.security.identities.ensureAdminKey(this.workspace, adminKey);
  }

  private async startWorkers(): Promise<this> {
    const concurrency = this.options.concurrency ?? 10_000;
    if (concurrency > 0) {
      // Embedded mode owns its data folder exclusively (lockDataDir): every lease is an orphan of a previous process.
      if (this.embedded) await this.store.releaseAllLeases();
      this.scheduler = new Scheduler(
        this.store,
        {
          owner: `${hostname()}:${process.pid}:${newId("w")}`,
          concurrency,
          leaseMs: this.options.leaseMs ?? 30_000,
          pollMs: this.options.pollMs ?? 500,
          batch: 256,
          caps: claimCaps(this.project),
        },
        (claimed) => this.execute(claimed),
        (err) => this.log.error({ err }, "scheduler error"),
      );
      this.scheduler.start();
      // Other processes' new work wakes this one at once (PostgreSQL); the poll stays the fallback.
      // (Streams follow other processes' commits in start(): an API-only node serves them too.)
      this.store.onWork?.(() => this.wake());
      // Repairs for crash gaps: children whose result did not reach their parent, runs whose parent has ended.
      let tick = 0;
      this.sweeper = setInterval(() => {
        if (this.sweeping) return;
        this.sweeping = true;
        const orphans = tick++ % 30 === 0; // at start, then every 30 s: a crash gap, not a hot path
        void this.deliverChildNotices()
          // Schedules: a tick asks the database only when an occurrence is due (or a firing was left pending).
          .then(() => (this.triggers.size > 0 && this.options.triggerTicks !== false ? this.triggers.tick() : undefined))
          .then(() => (orphans ? this.cancelOrphans() : undefined))
          // Budget held by a model call a crash cut short (reserved, never settled) is given back after 15 minutes.
          .then(() => (orphans && this.budgets ? this.budgets.releaseStale(15 * 60_000) : undefined))
          // Retention: memory past its expiry is removed (and the removal audited), a batch at a time.
          .then(() => (orphans ? this.memory.expire() : undefined))
          .then(() => {
            // Items without a vector of the embedder (a new one, or one that was down), in the background.
            if (orphans) void this.embedMissing();
          })
          .catch((err) => this.log.warn({ err: (err as Error)?.message }, "sweeper: will retry"))
          .finally(() => {
            this.sweeping = false;
          });
      }, 1_000);
      this.sweeper.unref();
    }
    return this;
  }

  private async embedMissing(): Promise<void> {
    try {
      const n = await this.memory.embedMissing();
      if (n > 0) this.log.info({ items: n, embedder: this.memory.embedder.id }, "memory items embedded");
    } catch {
      // Told through onEmbedFailure; the next sweep tries again.
    }
  }

  private async deliverChildNotices(): Promise<void> {
    let children: RunRecord[];
    try {
      children = await this.store.listUnnotifiedChildren(100);
    } catch (err) {
      if (!this.closed) this.log.warn({ err: (err as Error)?.message }, "could not look for undelivered child results");
      return;
    }
    for (const child of children) {
      if (!child.parentRunId || !child.parentCallId) continue;
      const callKey = callKeyOf(child);
      try {
        // The child's taint lives in its log (a crash came before its own worker could tell the parent).
        const tainted = [...new Set(replay(child.id, await this.store.getEvents(child.id)).tainted)];
        await this.notifyParent(
          {
            parentRunId: child.parentRunId,
            callId: child.parentCallId,
            ...(callKey ? { callKey } : {}),
            childRunId: child.id,
            agent: child.agent,
            status: child.status as "completed" | "failed" | "cancelled",
            output: child.output,
            error: child.error,
            ...(tainted.length > 0 ? { tainted } : {}),
          },
          child.workspace,
        );
      } catch (err) {
        // One that fails must not hold up the others (they are tried again at the next sweep).
        if (!this.closed) this.log.warn({ run_id: child.id, err: (err as Error)?.message }, "could not deliver a child's result yet");
      }
    }
  }

  /** Runs still going under a parent that has ended (a cancel cascade cut short by a crash): cancel them. */
  private async cancelOrphans(): Promise<void> {
    try {
      for (const orphan of await this.store.listOrphanedRuns(100)) {
        await this.cancelTree(orphan.id, `parent run ${orphan.parentRunId} has ended`, orphan.workspace);
      }
    } catch (err) {
      if (!this.closed) this.log.warn({ err: (err as Error)?.message }, "could not cancel runs whose parent has ended");
    }
  }

  private async notifyParent(notice: ChildNotice, workspace: string): Promise<void> {
    const r = await this.store.applyExternal(workspace, { kind: "child", notice: await this.bounded(notice, workspace) });
    if (r.woke) this.wake();
    for (const e of r.events) this.publish(eventView(r.run.id, e));
  }

  /** A child's answer reaches its parent's model like any tool output: beyond the parent's max_tool_output, as a preview and an artifact. */
  private async bounded(notice: ChildNotice, workspace: string): Promise<ChildNotice> {
    const output = notice.output;
    if (output === null || output.length <= 1_000) return notice;
    const parent = await this.store.getRun(workspace, notice.parentRunId);
    if (!parent) return notice;
    // The agent that delegated (the parent may have been handed off since it started): last of the child's chain.
    const started = (await this.store.getEvents(notice.childRunId, 0))[0];
    const delegator = started?.type === "run.started" ? (started.data.parent?.chain.at(-1) ?? parent.agent) : parent.agent;
    const max = this.project.agents.get(delegator)?.limits.maxToolOutput ?? DEFAULT_LIMITS.maxToolOutput;
    if (output.length <= max) return notice;
    const id = `art_${createHash("sha256").update(`child:${notice.childRunId}`).digest("hex").slice(0, 24)}`;
    await this.store.putArtifact({
      id,
      workspace,
      runId: notice.childRunId,
      rootRunId: parent.rootRunId,
      callId: notice.callId,
      tool: `delegate.${notice.agent}`,
      content: output,
      size: output.length,
      createdAt: Date.now(),
    });
    return { ...notice, output: artifactPreview(output, id, max, `${notice.agent}'s answer`) };
  }

  private async startChild(r: Parameters<Collaboration["startChild"]>[0]): Promise<string> {
    const { parent, parentRun, call } = r;
    const { run, created } = await this.store.createRun({
      workspace: parentRun.workspace,
      agent: r.agent,
      input: r.task,
      idempotencyKey: `delegate:${call.key}`,
      // The child acts for the same person, and inherits its parent's taint: the task was written from what the parent read.
      startedBy: parent.by,
      tainted: [...new Set([...parent.tainted, ...injectionFindings([r.task])])],
      parent: childLink(parent, parentRun, call),
    });
    if (created) this.wake();
    return run.id;
  }

  /** Cancels a run and, below it, every run it delegated to that is still going. */
  private async cancelTree(id: string, reason: string, workspace = this.workspace): Promise<void> {
    const r = await this.store.applyExternal(workspace, { kind: "cancel", runId: id, reason });
    if (r.run.cancelRequested) this.controls.get(id)?.cancel(reason);
    for (const e of r.events) this.publish(eventView(id, e));
    if (r.run.status === "cancelled" && r.run.parentRunId) await this.deliverChildNotices();
    for (const child of await this.store.listChildRuns(workspace, id)) {
      if (!isTerminal(child.status)) await this.cancelTree(child.id, `parent run ${id} cancelled`, workspace);
    }
  }

  connections(): ({ name: string; kind: "mcp" | "openapi" } & ToolSourceStatus)[] {
    return this.tools.listSources().map((source) => ({
      name: source.name,
      kind: this.project.connections.get(source.name)?.kind ?? "mcp",
      ...source.status(),
    }));
  }

  private async execute(claimed: Parameters<typeof executeRun>[1]): Promise<void> {
    const control = new RunControl();
    if (this.closed) control.shutdown();
    this.controls.set(claimed.run.id, control);
    const ttl = this.options.approvalTtlMs ?? this.project.approvalTtlMs;
    const approvalTtl = ttl !== undefined ? { approvalTtlMs: ttl } : {};
    const { run } = claimed;
    // Every line logged while executing the run names it and its trace, to be found beside its spans.
    const log = this.log.child({ run_id: run.id, trace_id: traceIdOf(run.rootRunId), span_id: runSpanIdOf(run.id) });
    try {
      const deps: Parameters<typeof executeRun>[0] = {
        store: this.store,
        project: this.project,
        tools: this.tools,
        collaboration: this.collaboration,
        ...(this.options.outcomeRetry ? { outcomeRetry: this.options.outcomeRetry } : {}),
        modelsFor: (agent) => this.modelsFor(agent),
        policy: this.policy,
        recall: (run, state, agent) =>
          recallForStep({ memory: this.memory, policy: this.policy, project: this.project }, run, state, agent),
        governanceFor: (run) =>
          runGovernance({
            project: this.project,
            engine: this.policy,
            workspace: run.workspace,
            runId: run.id,
            ...approvalTtl,
          }),
        ...(this.budgets ? { budgets: this.budgetsForRuns(this.budgets) } : {}),
        redact: (text) => this.redactor.redact(text),
        toolSpecsFor: (agent) => this.tools.specsFor(agent),
        dataDir: this.dataDir,
        tookUp: (taken, log) => this.telemetry.claim(taken, log),
        publish: (runId, seq, type, data, at) => {
          if (seq > 0) this.telemetry.observe(runId, type, data, at); // committed (seq -1: a streamed text delta)
          if (this.options.onEvent || this.listeners.has(runId)) {
            this.publish({ run_id: runId, seq, type, data: data as Record<string, unknown>, at: iso(at) });
          }
        },
        log,
        wake: () => this.wake(),
        emitEvent: (workspace, name, payload, key, from) => this.deliverEvent(workspace, name, payload, key, from),
        ...approvalTtl,
      };
      await (isWorkflowRun(claimed.run.agent) ? executeWorkflow(deps, claimed, control) : executeRun(deps, claimed, control));
    } finally {
      this.telemetry.release(run.id);
      // The run may have been claimed again meanwhile (a lapsed lease): leave that execution's control.
      if (this.controls.get(claimed.run.id) === control) this.controls.delete(claimed.run.id);
    }
  }

  /**
   * A named event: delivered to every run of the workspace waiting for it, and a run started for each agent and
   * workflow subscribed to it (`on_events:`), once per emission (`key`, the emitting step's idempotency key).
   */
  private async deliverEvent(
    workspace: string,
    name: string,
    payload: unknown,
    key: string,
    from: string,
  ): Promise<{ delivered: number; started: number }> {
    const started = await this.triggers.fireEvent(workspace, name, payload, key);
    if (started > 0) this.log.info({ event: name, from, runs: started }, "event started subscribed runs");
    let delivered = 0;
    let before: string | undefined;
    for (;;) {
      const page = await this.store.listRuns({ workspace, status: "waiting", limit: 200, ...(before ? { before } : {}) });
      for (const r of page) {
        const w = r.waitingFor;
        if (!((w?.kind === "event" && w.event === name) || (w?.kind === "any" && w.events.includes(name)))) continue;
        const result = await this.store.applyExternal(workspace, { kind: "event", runId: r.id, name, payload });
        for (const e of result.events) this.publish(eventView(r.id, e));
        delivered++;
      }
      if (page.length < 200) break;
      before = page[page.length - 1].id;
    }
    if (delivered > 0 || started > 0) this.wake();
    return { delivered, started };
  }

  readonly workflows: WorkflowsHost = {
    listWorkflows: () => this.listWorkflows(),
    startWorkflowAs: (caller, name, request) => this.startWorkflowAs(caller, name, request),
  };

  /** The project's workflows. */
  listWorkflows(): WorkflowView[] {
    return [...(this.project.workflows?.values() ?? [])].map((w) => workflowView(w));
  }

  /** Starts a run of a workflow (answered at once; the run goes on in the background). */
  async startWorkflowAs(caller: Caller, name: string, req: { input?: unknown; idempotency_key?: string }): Promise<RunView> {
    const workflow = this.project.workflows?.get(name);
    if (!workflow) {
      const known = [...(this.project.workflows?.keys() ?? [])];
      throw notFound("workflow", name, known.length > 0 ? `known workflows: ${known.join(", ")}` : "define one in workflows/<name>.yaml");
    }
    if (req.idempotency_key?.startsWith("delegate:")) {
      throw new OutpostError(
        "invalid_request",
        'Idempotency-Key may not start with "delegate:"',
        "that prefix is kept for the runs agents delegate to; pick another key",
      );
    }
    const input = req.input ?? {};
    if (workflow.inputSchema) {
      const checked = z.fromJSONSchema(workflow.inputSchema as Parameters<typeof z.fromJSONSchema>[0]).safeParse(input);
      if (!checked.success) {
        const issues = checked.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join("; ");
        throw new OutpostError(
          "invalid_request",
          `input does not match workflow ${name}'s input schema: ${issues}`,
          `see its input: in ${workflow.file}`,
        );
      }
    }
    const { run, created } = await this.store.createRun({
      workspace: caller.workspace,
      agent: `${WORKFLOW_PREFIX}${name}`,
      input: JSON.stringify(input),
      idempotencyKey: req.idempotency_key,
      startedBy: caller.id,
    });
    if (created) this.wake();
    return runView(run);
  }

  /** Budgets as the executor uses them: each reservation counts against the agent's teams too. */
  private budgetsForRuns(budgets: Budgets): NonNullable<Parameters<typeof executeRun>[0]["budgets"]> {
    return {
      reserve: (r) => budgets.reserve({ ...r, teams: teamsOf(this.project.teams.values(), r.agent) }),
      settle: (id, actual) => budgets.settle(id, actual),
      release: (id) => budgets.release(id),
    };
  }

  /** The agent's usable models, in the order of its alias's candidates (those whose credentials are set). */
  modelsFor(agent: AgentDefinition): ModelRoute[] {
    return modelRoutes(agent, { project: this.project, env: this.env, modelFor: this.options.modelFor, clients: this.models });
  }

  /** The provider an agent's model calls go to first (`gen_ai.provider.name`); undefined for a workflow or a
   * model that cannot be routed now. */
  private providerOf(agentName: string): string | undefined {
    const agent = this.project.agents.get(agentName);
    if (!agent) return undefined;
    try {
      return this.modelsFor(agent)[0]?.provider;
    } catch {
      return undefined;
    }
  }

  modelFor(agent: AgentDefinition): ModelClient {
    const custom = this.options.modelFor?.(agent);
    if (custom) return custom;
    let client = this.models.get(agent.model);
    if (!client) {
      const alias = this.project.models.get(agent.model);
      if (!alias) throw new OutpostError("invalid_project", `agent ${agent.name} uses unknown model alias "${agent.model}"`);
      client = createModelClient(agent.model, selectCandidate(alias, this.env), { scriptsDir: this.project.scriptsDir, env: this.env });
      this.models.set(agent.model, client);
    }
    return client;
  }

  advertise(url: string): void {
    this.lock.advertise(url);
  }

  describeModels(): { agent: string; model: string }[] {
    return [...this.project.agents.values()].map((a) => {
      try {
        return { agent: a.name, model: describeModel(this.modelFor(a)) };
      } catch (err) {
        return { agent: a.name, model: `unavailable: ${(err as Error).message}` };
      }
    });
  }

  private publish(e: EventView): void {
    this.options.onEvent?.(e);
    const set = this.listeners.get(e.run_id);
    if (set) for (const l of set) l(e);
  }

  private wake(): void {
    this.scheduler?.wake();
  }

  // ---- OutpostApi ----

  async health() {
    return { status: "ok" as const, version: VERSION, store: this.storeKind };
  }

  async listAgents(): Promise<AgentView[]> {
    return [...this.project.agents.values()].map((a) => this.agentView(a));
  }

  async getAgent(name: string): Promise<AgentView> {
    const a = this.project.agents.get(name);
    if (!a) throw notFound("agent", name, `known agents: ${[...this.project.agents.keys()].join(", ")}`);
    return this.agentView(a);
  }

  private agentView(a: AgentDefinition): AgentView {
    return {
      name: a.name,
      description: a.description,
      model: a.model,
      instructions: a.instructions,
      team: [...this.project.teams.values()].find((t) => t.members.includes(a.name))?.name ?? null,
      exposed: exposedAgents(this.project).includes(a.name),
      tools: a.tools.map((ref) => {
        const t = ref.name.endsWith(".*") ? undefined : this.tools.get(ref.name);
        return { name: ref.name, description: t?.description ?? "", approval: ref.approval ?? t?.approval ?? "none" };
      }),
      limits: {
        max_steps: a.limits.maxSteps,
        max_tokens: a.limits.maxTokens,
        max_usd: a.limits.maxUsd,
        max_wall_time_ms: a.limits.maxWallTimeMs,
      },
    };
  }

  as(caller: Caller): OutpostApi {
    return new ScopedOutpost(this, caller);
  }

  startRun(req: StartRunRequest): Promise<RunView> {
    return this.local.startRun(req);
  }
  getRun(id: string): Promise<RunView> {
    return this.local.getRun(id);
  }
  listRuns(req: ListRunsRequest = {}): Promise<Page<RunView>> {
    return this.local.listRuns(req);
  }
  getEvents(runId: string, after?: number): Promise<EventView[]> {
    return this.local.getEvents(runId, after);
  }
  streamEvents(runId: string, options?: { after?: number; signal?: AbortSignal }): AsyncIterable<EventView> {
    return this.local.streamEvents(runId, options);
  }
  cancelRun(id: string, reason?: string): Promise<RunView> {
    return this.local.cancelRun(id, reason);
  }
  sendEvent(runId: string, event: { name: string; payload?: unknown }): Promise<RunView> {
    return this.local.sendEvent(runId, event);
  }
  listApprovals(req: { status?: ApprovalStatus } = {}): Promise<ApprovalView[]> {
    return this.local.listApprovals(req);
  }
  decideApproval(id: string, d: { decision: "approve" | "deny"; reason?: string; by?: string }): Promise<ApprovalView> {
    return this.local.decideApproval(id, d);
  }
  getSession(id: string): Promise<SessionView> {
    return this.local.getSession(id);
  }
  getRunTree(id: string): Promise<RunTreeView> {
    return this.local.getRunTree(id);
  }
  getArtifact(id: string, page?: { offset?: number; limit?: number }): Promise<ArtifactView> {
    return this.local.getArtifact(id, page);
  }

  // ---- WorkspaceRuntime: the same, for a given workspace and caller ----

  async startRunAs(caller: Caller, req: StartRunRequest): Promise<RunView> {
    const workspace = caller.workspace;
    rejectNul(req.input, "input");
    for (const m of req.context ?? []) rejectNul(m.content, "context");
    if (req.session_id?.includes("\u0000")) throw notFound("session", "(with a NUL)");
    if (req.idempotency_key?.startsWith("delegate:")) {
      throw new OutpostError(
        "invalid_request",
        'Idempotency-Key may not start with "delegate:"',
        "that prefix is kept for the runs agents delegate to; pick another key",
      );
    }
    let agent = req.agent;
    if (agent === undefined) {
      // Continuing a conversation: whoever holds it now (after handoffs) answers.
      if (!req.session_id)
        throw new OutpostError(
          "invalid_request",
          "agent is required to start a new session",
          "name the agent, or pass session_id to continue a conversation",
        );
      const session = await this.store.getSession(workspace, req.session_id);
      if (!session) throw notFound("session", req.session_id, "omit session_id to start a new session");
      agent = session.agent;
    }
    if (!this.project.agents.has(agent)) {
      throw notFound("agent", agent, `known agents: ${[...this.project.agents.keys()].join(", ")}`);
    }
    const { run, created } = await this.store.createRun({
      workspace,
      agent,
      input: req.input,
      sessionId: req.session_id,
      idempotencyKey: req.idempotency_key,
      startedBy: caller.id,
      tainted: injectionFindings([req.input, ...(req.context ?? []).map((m) => m.content)]),
      ...(req.context && req.context.length > 0 ? { context: req.context } : {}),
    });
    if (created) this.wake();
    return runView(run);
  }

  async getRunIn(workspace: string, id: string): Promise<RunView> {
    return runView(await this.requireRun(workspace, id));
  }

  private async requireRun(workspace: string, id: string): Promise<RunRecord> {
    const run = id.includes("\u0000") ? null : await this.store.getRun(workspace, id);
    if (!run) throw notFound("run", id, "list runs with GET /v1/runs or `outpost runs ls`");
    return run;
  }

  async listRunsIn(workspace: string, req: ListRunsRequest = {}): Promise<Page<RunView>> {
    if (req.cursor !== undefined && !/^run_[0-9a-z]{22}$/.test(req.cursor)) {
      throw new OutpostError("invalid_request", `cursor "${req.cursor}" is not a run id`, "pass the next_cursor of the previous page");
    }
    const limit = Math.min(Math.max(req.limit ?? 50, 1), 200);
    const runs = await this.store.listRuns({
      workspace,
      agent: req.agent,
      status: req.status,
      sessionId: req.session_id,
      limit: limit + 1,
      before: req.cursor,
    });
    const items = runs.slice(0, limit).map(runView);
    return { items, next_cursor: runs.length > limit ? items[items.length - 1].id : null };
  }

  async getEventsIn(workspace: string, runId: string, after = 0): Promise<EventView[]> {
    await this.requireRun(workspace, runId);
    return (await this.store.getEvents(runId, after)).map((e) => eventView(runId, e));
  }

  async *streamEventsIn(
    workspace: string,
    runId: string,
    options: { after?: number; signal?: AbortSignal } = {},
  ): AsyncIterable<EventView> {
    await this.requireRun(workspace, runId);
    this.followStore();
    let last = options.after ?? 0;
    const queue: EventView[] = [];
    let notify: (() => void) | null = null;
    const listener: Listener = (e) => {
      queue.push(e);
      notify?.();
    };
    let set = this.listeners.get(runId);
    if (!set) this.listeners.set(runId, (set = new Set()));
    set.add(listener);
    const onAbort = () => notify?.();
    options.signal?.addEventListener("abort", onAbort);
    try {
      for (;;) {
        // Catch up from the store (covers events committed before we subscribed, or by another process).
        for (const e of await this.store.getEvents(runId, last)) {
          const view = eventView(runId, e);
          last = e.seq;
          yield view;
          if (isTerminalEvent(view.type)) return;
        }
        while (queue.length > 0) {
          const e = queue.shift() as EventView;
          if (e.seq === -1) {
            yield e; // transient text delta
            continue;
          }
          if (e.seq <= last) continue;
          if (e.seq > last + 1) break; // a gap, or STORE_CHANGED (another process committed): re-read from the store
          last = e.seq;
          yield e;
          if (isTerminalEvent(e.type)) return;
        }
        if (options.signal?.aborted || this.closed) return;
        if (queue.length === 0) {
          const run = await this.store.getRun(workspace, runId);
          if (run && isTerminal(run.status) && run.lastSeq <= last) return;
          if (queue.length > 0) continue; // published while we looked
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, this.options.streamPollMs ?? 1000); // fallback: events from other processes
            notify = () => {
              clearTimeout(t);
              resolve();
            };
          });
          notify = null;
        }
      }
    } finally {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(runId);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Streams here follow runs executed by other processes: they read the store when those commit (PostgreSQL
   * notifies), not at their next poll. From the first stream on: a worker that serves none is not told of every
   * commit in the cluster.
   */
  private followStore(): void {
    if (this.followingStore) return;
    this.followingStore = true;
    this.store.onEvents?.((runIds) => {
      for (const id of runIds === "all" ? [...this.listeners.keys()] : runIds) {
        for (const l of this.listeners.get(id) ?? []) l(STORE_CHANGED);
      }
    });
  }

  async cancelRunIn(workspace: string, id: string, reason = "cancelled by request"): Promise<RunView> {
    rejectNul(reason, "reason");
    const current = await this.requireRun(workspace, id);
    if (current.status === "completed" || current.status === "failed") {
      throw new OutpostError("conflict", `run ${id} already ${current.status}; there is nothing to cancel`);
    }
    await this.cancelTree(id, reason, workspace);
    return runView(await this.requireRun(workspace, id));
  }

  async getRunTreeIn(workspace: string, id: string): Promise<RunTreeView> {
    const run = await this.requireRun(workspace, id);
    return treeView(run.id, await this.store.listRunTree(workspace, run.rootRunId).then((all) => subtree(run.id, all)));
  }

  async getArtifactIn(workspace: string, id: string, page: { offset?: number; limit?: number } = {}): Promise<ArtifactView> {
    const a = id.includes("\u0000") ? null : await this.store.getArtifact(workspace, id);
    if (!a) throw notFound("artifact", id, "artifact ids appear in tool results that were too large to show whole");
    return artifactView(a, page.offset ?? 0, Math.min(Math.max(page.limit ?? 64_000, 1), 1_000_000));
  }

  async sendEventIn(workspace: string, runId: string, event: { name: string; payload?: unknown }): Promise<RunView> {
    await this.requireRun(workspace, runId);
    rejectNul(event.name, "name");
    const r = await this.store.applyExternal(workspace, { kind: "event", runId, name: event.name, payload: event.payload ?? null });
    if (r.woke) this.wake();
    for (const e of r.events) this.publish(eventView(runId, e));
    return runView(r.run);
  }

  async listApprovalsIn(workspace: string, req: { status?: ApprovalStatus } = {}): Promise<ApprovalView[]> {
    return (await this.store.listApprovals(workspace, req.status)).map(approvalView);
  }

  /**
   * The one place an approval is decided. The decider is the caller: a `by` in the request is believed only from
   * the local owner (the CLI names its user); for everyone else it is the caller's id.
   */
  async decideApprovalAs(
    workspace: string,
    caller: Caller,
    id: string,
    d: { decision: "approve" | "deny"; reason?: string; by?: string },
  ): Promise<ApprovalView> {
    if (id.includes("\u0000")) throw notFound("approval", "(with a NUL)");
    rejectNul(d.reason ?? "", "reason");
    rejectNul(d.by ?? "", "by");
    const pending = await this.store.getApproval(workspace, id);
    if (!pending) throw notFound("approval", id, "list pending approvals with GET /v1/approvals?status=pending");
    let altered = false;
    if (pending.status === "pending") {
      // The record must say what the run's log says was asked (who may decide, until when, for which action):
      // an edited row is a denial, whoever decides it.
      const asked = (await this.store.getEvents(pending.runId)).find(
        (e) => e.type === "approval.requested" && e.data.approval_id === pending.id,
      );
      const a = asked?.type === "approval.requested" ? asked.data : null;
      altered =
        a === null ||
        (a.action_hash ?? null) !== pending.actionHash ||
        (a.approver?.role ?? "operator") !== (pending.approverRole ?? "operator") ||
        (a.approver?.group ?? null) !== pending.approverGroup ||
        (a.expires_at ? Date.parse(a.expires_at) : null) !== pending.expiresAt;
    }
    if (pending.status === "pending" && !altered) {
      // Who may decide: the role (and group) the policy asked for, never the person the run acts for.
      const problem = approverProblem(pending, caller);
      if (problem) throw new OutpostError("forbidden", `approval ${id}: ${problem}`, "ask someone who holds that role to decide it");
    }
    const by = caller.via === "local" ? (d.by ?? null) : caller.id;
    const r = await this.store.applyExternal(workspace, {
      kind: "approval",
      approvalId: id,
      decision: altered ? "deny" : d.decision,
      reason: altered ? "the approval record was altered after it was requested: denied" : (d.reason ?? null),
      by,
      rehash: approvalRehash, // a record altered since the request is a denial
    });
    if (r.woke) this.wake();
    for (const e of r.events) this.publish(eventView(r.run.id, e));
    const a = r.approval as ApprovalRecord;
    if (d.decision === "approve" && a.status !== "approved") {
      // Fail closed, and say so: the request was recorded as a denial, not approved.
      throw new OutpostError(
        "conflict",
        `approval ${id} was not approved: ${a.reason ?? a.status}`,
        a.status === "expired" ? "the run was told it expired; start the work again to ask anew" : "the action was denied",
      );
    }
    return approvalView(a);
  }

  async getSessionIn(workspace: string, id: string): Promise<SessionView> {
    const s = id.includes("\u0000") ? null : await this.store.getSession(workspace, id);
    if (!s) throw notFound("session", id, "a run's session_id names its session (GET /v1/runs/{id})");
    const runs = await this.store.listSessionRuns(id);
    const messages: SessionView["messages"] = [];
    for (const r of runs) {
      messages.push({ role: "user", content: r.input, run_id: r.id, at: iso(r.createdAt) });
      if (r.output !== null) messages.push({ role: "assistant", content: r.output, run_id: r.id, at: iso(r.completedAt ?? r.updatedAt) });
    }
    return { id: s.id, workspace: s.workspace, agent: s.agent, created_at: iso(s.createdAt), messages };
  }

  executing(): number {
    return this.scheduler?.running ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const control of this.controls.values()) control.shutdown();
    for (const set of this.listeners.values()) for (const l of set) l({ run_id: "", seq: -2, type: "outpost.closing", data: {}, at: "" });
    await this.scheduler?.stop();
    await Promise.all(this.tools.listSources().map((source) => source.close().catch(() => undefined)));
    await this.audit.close().catch((err) => this.log.warn({ err: (err as Error)?.message }, "audit chainer did not close cleanly"));
    await this.telemetry.shutdown(); // sends what is buffered
    await this.store.close();
    this.lock.release();
  }
}

/** outpost.yaml `scheduling` and the agents' `limits.max_running`, for the claims of every worker. */
function claimCaps(project: Project): ClaimCaps | undefined {
  const perAgent: Record<string, number> = {};
  for (const a of project.agents.values()) if (a.limits.maxRunning !== undefined) perAgent[a.name] = a.limits.maxRunning;
  if (project.maxRunningPerWorkspace === undefined && Object.keys(perAgent).length === 0) return undefined;
  return { ...(project.maxRunningPerWorkspace !== undefined ? { perWorkspace: project.maxRunningPerWorkspace } : {}), perAgent };
}

/** What looks like injected instructions in what a caller sent (a customer's message, pasted mail): the run starts tainted. */
function injectionFindings(texts: string[]): string[] {
  const found = new Set<string>();
  for (const text of texts) for (const f of scanForInjection(text).findings) found.add(f.pattern);
  return [...found];
}

/** PostgreSQL cannot store U+0000 in text, and no person means to send it: refuse it clearly, on every store. */
function rejectNul(value: string, field: string): void {
  if (value.includes("\u0000")) {
    throw new OutpostError("invalid_request", `${field} contains a NUL character (\\u0000)`, "remove it and send the request again");
  }
}
/** The runs below `id` in a tree listed in creation order (parents before children). */
function subtree(id: string, all: RunRecord[]): RunRecord[] {
  const keep = new Set([id]);
  return all.filter((r) => {
    if (r.id === id) return true;
    if (r.parentRunId && keep.has(r.parentRunId)) {
      keep.add(r.id);
      return true;
    }
    return false;
  });
}

const isTerminalEvent = (t: string) => t === "run.completed" || t === "run.failed" || t === "run.cancelled";

/** Who an emitted event starts: each agent and workflow whose on_events: lists it, with the input each is given. */
export function eventSubscriptions(project: Project): EventSubscription[] {
  return [
    ...[...project.agents.values()].flatMap((a) =>
      (a.onEvents ?? []).map((event) => ({
        event,
        agent: a.name,
        input: (payload: unknown) => JSON.stringify({ event, payload }, null, 2),
      })),
    ),
    ...[...(project.workflows?.values() ?? [])].flatMap((w) =>
      w.onEvents.map((event) => ({
        event,
        agent: `${WORKFLOW_PREFIX}${w.name}`,
        input: (payload: unknown) => JSON.stringify(payload ?? {}),
      })),
    ),
  ];
}
