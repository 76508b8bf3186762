/**
 * Triggers: what starts runs without a person asking. Schedules for now: each occurrence of an agent's cron
 * expression starts one run, exactly once across restarts and processes.
 *
 * How "exactly once" holds: a schedule's cursor (the last occurrence dealt with) moves forward by compare-and-set, in
 * the same transaction that records the occurrences it passed as firings (`pending`, or `skipped` and why). Only one
 * process wins a move. The run of a pending firing is then created with the idempotency key of the firing, so
 * whoever creates it — this process, or any other after a crash in between — creates the same one run.
 */

import { z } from "zod";
import { OutpostError } from "../core/errors.js";
import type { FiringView, TriggersApi, TriggerView } from "../core/triggers-api.js";
import type { AgentDefinition, ScheduleDefinition, WebhookDefinition } from "../definitions/types.js";
import type { AuditRecordInput } from "../security/audit/index.js";
import { sha256Hex } from "../security/canonical.js";
import type { TriggerFiringsTable } from "../store/schema.js";
import type { DomainStorage } from "../store/types.js";
import { nextOccurrence, plan } from "./schedule.js";
import { inputFor, SIGNATURE_HEADER, signatureProblem } from "./webhooks.js";

export type { FiringView, TriggersApi, TriggerView } from "../core/triggers-api.js";
export { CATCH_UP_LIMIT, GRACE_MS, nextOccurrence, plan } from "./schedule.js";

/** Pending firings read (and their runs started) per round trip. */
const PENDING_BATCH = 200;

export { SIGNATURE_HEADER, sign, TOLERANCE_MS } from "./webhooks.js";

export interface TriggerDeps {
  storage: DomainStorage;
  workspace: string;
  agents: Iterable<AgentDefinition>;
  /** Creates the firing's run, idempotent by key: the same key again returns the same run (`created` false). In the
   * Triggers' workspace unless another is named (an event emitted by a run of that workspace). */
  startRun(request: {
    agent: string;
    input: string;
    idempotencyKey: string;
    startedBy: string;
    workspace?: string;
  }): Promise<{ id: string; created?: boolean }>;
  /** Writes audit entries (a delivery taken, a signature refused); absent: none. */
  audit?(entries: AuditRecordInput[]): void;
  /** Who runs when an event is emitted (agents' and workflows' on_events:), and the input each is given. */
  subscriptions?: EventSubscription[];
  clock?: () => number;
  /** A vault secret's value (a webhook's signing secret), or null when it is not set. */
  secret?(name: string): Promise<string | null>;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export interface EventSubscription {
  event: string;
  /** The agent, or `workflow:<name>`. */
  agent: string;
  input(payload: unknown): string;
}

/** A delivery as the server received it. */
export interface Delivery {
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Whether the request carried a valid API key that may start runs (then no signature is needed). */
  authenticated: boolean;
  /** That key's principal (`key:<id>`), for the audit log. */
  caller?: string;
}

interface Webhook {
  id: string;
  agent: string;
  def: WebhookDefinition;
  payload: z.ZodType | null;
}

interface Schedule {
  id: string;
  agent: string;
  def: ScheduleDefinition;
}

export const scheduleId = (agent: string, name: string) => `schedule:${agent}.${name}`;
export const webhookId = (name: string) => `webhook:${name}`;
export const subscriptionId = (event: string, agent: string) => `event:${event}:${agent}`;

export class Triggers {
  private readonly schedules: Schedule[];
  private readonly clock: () => number;
  /** Per schedule, when the next occurrence is due: until then a tick does not ask the database. */
  private readonly nextDue = new Map<string, number>();
  private ticking: Promise<number> | null = null;
  private pendingCheckedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly deps: TriggerDeps) {
    this.clock = deps.clock ?? Date.now;
    const agents = [...deps.agents];
    this.schedules = agents.flatMap((a) => (a.schedules ?? []).map((def) => ({ id: scheduleId(a.name, def.name), agent: a.name, def })));
    this.webhooks = new Map(
      agents.flatMap((a) =>
        (a.webhooks ?? []).map((def): [string, Webhook] => [
          def.name,
          {
            id: webhookId(def.name),
            agent: a.name,
            def,
            payload: def.schema ? z.fromJSONSchema(def.schema as Parameters<typeof z.fromJSONSchema>[0]) : null,
          },
        ]),
      ),
    );
  }

  private readonly webhooks: Map<string, Webhook>;

  /**
   * An event emitted in `workspace` (a workflow's emit step, an agent's emit tool), keyed by the emitting step: starts
   * one run of each subscriber, once per key, and records it as that subscription's firing. Returns the runs it
   * started (a retried emit starts none). The run comes first and the firing after, so a crash between leaves
   * nothing half done: the retry finds the run by its key and records the firing.
   */
  async fireEvent(workspace: string, event: string, payload: unknown, key: string): Promise<number> {
    let started = 0;
    for (const s of this.deps.subscriptions ?? []) {
      if (s.event !== event) continue;
      const run = await this.deps.startRun({
        workspace,
        agent: s.agent,
        input: s.input(payload),
        idempotencyKey: `event:${key}:${s.agent}`,
        startedBy: `event:${event}`,
      });
      if (run.created) started++;
      const now = this.clock();
      await this.deps.storage.write((trx) =>
        trx
          .insertInto("trigger_firings")
          .values({
            workspace,
            trigger: subscriptionId(event, s.agent),
            firing_key: key,
            fire_at: now,
            status: "started",
            run_id: run.id,
            detail: null,
            created_at: now,
          })
          .onConflict((oc) => oc.columns(["workspace", "trigger", "firing_key"]).doNothing())
          .execute(),
      );
    }
    return started;
  }

  /**
   * A delivery to POST /v1/hooks/<name>: authenticated (signed with the webhook's secret, or by an API key),
   * de-duplicated by its delivery id, its payload checked against the schema; starts one run and answers its id. A
   * redelivery answers the first delivery's run (`duplicate`).
   */
  async deliver(name: string, d: Delivery): Promise<{ run_id: string; delivery_id: string; duplicate: boolean }> {
    const hook = this.webhooks.get(name);
    if (!hook) {
      throw new OutpostError(
        "not_found",
        `there is no webhook "${name}" in workspace ${this.deps.workspace}`,
        this.webhooks.size > 0 ? `webhooks of this project: ${[...this.webhooks.keys()].join(", ")}` : "add webhooks: to an agent's YAML",
      );
    }
    const header = (h: string) => {
      const v = d.headers[h];
      return Array.isArray(v) ? v[0] : v;
    };
    const signed = header(SIGNATURE_HEADER);
    if (signed !== undefined) {
      if (!hook.def.secret) {
        throw new OutpostError(
          "unauthorized",
          `webhook ${name} has no secret to check a signature with`,
          "send an API key instead, or give the webhook secret: secret://NAME",
        );
      }
      const secret = await this.deps.secret?.(hook.def.secret);
      if (!secret) {
        throw new OutpostError(
          "unavailable",
          `webhook ${name}'s secret secret://${hook.def.secret} is not set`,
          `set it with outpost secrets set ${hook.def.secret} (the value the sender signs with)`,
        );
      }
      const problem = signatureProblem(signed, secret, d.body, this.clock());
      if (problem) {
        // A forged or replayed delivery is worth a trace: someone knows the URL and tries.
        this.deps.audit?.([{ kind: "webhook.refused", actor: "system", data: { webhook: name, reason: problem } }]);
        throw new OutpostError("unauthorized", `webhook ${name}: ${problem}`, "sign each delivery as the README's Webhooks section shows");
      }
    } else if (!d.authenticated) {
      throw new OutpostError("unauthorized", `webhook ${name} needs a signed delivery (${SIGNATURE_HEADER}) or an API key`);
    }
    const deliveryId = header(hook.def.deliveryHeader)?.trim() ?? "";
    if (deliveryId === "" || deliveryId.length > 200) {
      throw new OutpostError(
        "invalid_request",
        `the delivery has no ${hook.def.deliveryHeader} header (1–200 characters)`,
        "send the sender's id of this delivery: a redelivery with the same id starts nothing new",
      );
    }
    let payload: unknown;
    try {
      payload = JSON.parse(d.body);
    } catch (err) {
      throw new OutpostError(
        "invalid_request",
        `the payload is not JSON: ${(err as Error).message}`,
        "send Content-Type: application/json",
      );
    }
    if (hook.payload) {
      const checked = hook.payload.safeParse(payload);
      if (!checked.success) {
        const issue = checked.error.issues[0];
        const where = issue?.path.length ? `payload.${issue.path.join(".")}` : "payload";
        throw new OutpostError(
          "invalid_request",
          `${where}: ${issue?.message ?? "does not match the webhook's schema"}`,
          `webhook ${name}'s schema is in ${hook.agent}'s YAML`,
        );
      }
    }
    const { storage, workspace } = this.deps;
    const now = this.clock();
    const inserted = await storage.write(async (trx) => {
      const r = await trx
        .insertInto("trigger_firings")
        .values({
          workspace,
          trigger: hook.id,
          firing_key: deliveryId,
          fire_at: now,
          status: "pending",
          run_id: null,
          detail: null,
          created_at: now,
        })
        .onConflict((oc) => oc.columns(["workspace", "trigger", "firing_key"]).doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
    });
    if (!inserted) {
      const first = await storage.db
        .selectFrom("trigger_firings")
        .select(["run_id"])
        .where("workspace", "=", workspace)
        .where("trigger", "=", hook.id)
        .where("firing_key", "=", deliveryId)
        .executeTakeFirst();
      if (first?.run_id) return { run_id: first.run_id, delivery_id: deliveryId, duplicate: true };
      // Recorded but never started (the first delivery's process died): start it now, with the same key.
    }
    const run = await this.deps.startRun({
      agent: hook.agent,
      input: inputFor(hook.def.input, payload),
      idempotencyKey: `trigger:${hook.id}:${deliveryId}`,
      startedBy: hook.id,
    });
    await this.markStarted(hook.id, deliveryId, run.id);
    this.deps.audit?.([
      {
        kind: "webhook.delivered",
        actor: d.caller ?? `webhook:${name}`,
        runId: run.id,
        data: {
          webhook: name,
          delivery_id: deliveryId,
          run_id: run.id,
          agent: hook.agent,
          signed: signed !== undefined,
          duplicate: !inserted,
          payload_sha256: sha256Hex(d.body),
        },
      },
    ]);
    return { run_id: run.id, delivery_id: deliveryId, duplicate: !inserted };
  }

  get workspace(): string {
    return this.deps.workspace;
  }

  /** Schedules: what the sweeper ticks for. */
  get size(): number {
    return this.schedules.length;
  }

  /** Fires what is due (once at a time in this process); returns how many runs it started. */
  tick(): Promise<number> {
    this.ticking ??= this.fireDue().finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  private async fireDue(): Promise<number> {
    const now = this.clock();
    let looked = false;
    for (const s of this.schedules) {
      if ((this.nextDue.get(s.id) ?? Number.NEGATIVE_INFINITY) > now) continue;
      looked = true;
      try {
        await this.advance(s, now);
      } catch (err) {
        this.nextDue.delete(s.id); // look again at the next tick
        this.deps.log.warn({ trigger: s.id, err: (err as Error)?.message }, "schedule: could not fire; will retry");
      }
    }
    // Pending firings: this tick's, or (every 30 s) any a process left behind when it died before starting them.
    if (!looked && now - this.pendingCheckedAt < 30_000) return 0;
    this.pendingCheckedAt = now;
    return this.startPending();
  }

  /** Moves the schedule's cursor over what fell due, recording each occurrence as a firing. */
  private async advance(s: Schedule, now: number): Promise<void> {
    const { storage, workspace } = this.deps;
    const state = await storage.db
      .selectFrom("trigger_state")
      .select("cursor")
      .where("workspace", "=", workspace)
      .where("trigger", "=", s.id)
      .executeTakeFirst();
    if (!state) {
      // A new schedule starts from now: nothing before it was missed.
      await storage.write((trx) =>
        trx
          .insertInto("trigger_state")
          .values({ workspace, trigger: s.id, cursor: now, updated_at: now })
          .onConflict((oc) => oc.columns(["workspace", "trigger"]).doNothing())
          .execute(),
      );
      this.nextDue.set(s.id, nextOccurrence(s.def, now) ?? Number.POSITIVE_INFINITY);
      return;
    }
    const cursor = Number(state.cursor);
    const p = plan(s.def, cursor, now);
    if (p.cursor !== cursor) {
      await storage.write(async (trx) => {
        const moved = await trx
          .updateTable("trigger_state")
          .set({ cursor: p.cursor, updated_at: now })
          .where("workspace", "=", workspace)
          .where("trigger", "=", s.id)
          .where("cursor", "=", cursor)
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) === 0) return; // another process moved it first: its firings stand
        const rows = [
          ...p.fire.map((at) => firingRow(workspace, s.id, at, "pending", null, now)),
          ...p.skip.map(({ at, why }) => firingRow(workspace, s.id, at, "skipped", why, now)),
        ];
        for (let i = 0; i < rows.length; i += 200) {
          await trx
            .insertInto("trigger_firings")
            .values(rows.slice(i, i + 200))
            .onConflict((oc) => oc.columns(["workspace", "trigger", "firing_key"]).doNothing())
            .execute();
        }
        if (p.skip.length > 0) this.deps.log.warn({ trigger: s.id, skipped: p.skip.length }, "schedule: occurrences missed while down");
      });
    }
    this.nextDue.set(s.id, nextOccurrence(s.def, p.cursor) ?? Number.POSITIVE_INFINITY);
  }

  /** Starts the runs of pending firings: this tick's, and any a process left behind when it died — a batch at a time
   * until none is left (a busy minute can make more firings than one batch). */
  private async startPending(): Promise<number> {
    let started = 0;
    for (;;) {
      const batch = await this.startPendingBatch();
      started += batch.started;
      if (batch.seen < PENDING_BATCH || batch.started === 0) return started;
    }
  }

  private async startPendingBatch(): Promise<{ seen: number; started: number }> {
    const { storage, workspace } = this.deps;
    const pending = await storage.db
      .selectFrom("trigger_firings")
      .selectAll()
      .where("workspace", "=", workspace)
      .where("status", "=", "pending")
      .orderBy("fire_at")
      .limit(PENDING_BATCH)
      .execute();
    let started = 0;
    const byId = new Map(this.schedules.map((x) => [x.id, x]));
    // Whoever finds a pending firing starts it (its own, or one a process left when it died): the key makes a second
    // start the same run.
    for (const f of pending) {
      const s = byId.get(f.trigger);
      if (!s) continue; // the schedule is gone from the project: the firing stays pending, visible
      try {
        const run = await this.deps.startRun({
          agent: s.agent,
          input: s.def.input,
          idempotencyKey: `trigger:${f.trigger}:${f.firing_key}`,
          startedBy: f.trigger,
        });
        await this.markStarted(f.trigger, f.firing_key, run.id);
        started++;
      } catch (err) {
        this.deps.log.warn({ trigger: f.trigger, firing: f.firing_key, err: (err as Error)?.message }, "schedule: could not start a run");
      }
    }
    if (started > 0) this.deps.log.info({ runs: started }, "schedules fired");
    return { seen: pending.length, started };
  }

  /** A firing's run exists: the firing points at it. */
  private markStarted(trigger: string, key: string, runId: string): Promise<unknown> {
    const { storage, workspace } = this.deps;
    return storage.write((trx) =>
      trx
        .updateTable("trigger_firings")
        .set({ status: "started", run_id: runId })
        .where("workspace", "=", workspace)
        .where("trigger", "=", trigger)
        .where("firing_key", "=", key)
        .execute(),
    );
  }

  /** Every trigger of the project, with its next occurrence and its latest firing. */
  async list(): Promise<TriggerView[]> {
    const now = this.clock();
    const out: TriggerView[] = [];
    for (const s of this.schedules) {
      const [last] = await this.firings(s.id, 1);
      const next = nextOccurrence(s.def, now);
      out.push({
        id: s.id,
        kind: "schedule",
        agent: s.agent,
        name: s.def.name,
        cron: s.def.cron,
        timezone: s.def.timezone,
        missed: s.def.missed,
        input: s.def.input,
        path: null,
        signed: null,
        next_at: next === null ? null : new Date(next).toISOString(),
        last_firing: last ?? null,
      });
    }
    for (const h of this.webhooks.values()) {
      const [last] = await this.firings(h.id, 1);
      out.push({
        id: h.id,
        kind: "webhook",
        agent: h.agent,
        name: h.def.name,
        cron: null,
        timezone: null,
        missed: null,
        input: h.def.input ?? null,
        path: `/v1/hooks/${h.def.name}`,
        signed: h.def.secret !== undefined,
        next_at: null,
        last_firing: last ?? null,
      });
    }
    for (const sub of this.deps.subscriptions ?? []) {
      const id = subscriptionId(sub.event, sub.agent);
      const [last] = await this.firings(id, 1);
      out.push({
        id,
        kind: "event",
        agent: sub.agent,
        name: sub.event,
        cron: null,
        timezone: null,
        missed: null,
        input: null,
        path: null,
        signed: null,
        next_at: null,
        last_firing: last ?? null,
      });
    }
    return out;
  }

  /** A trigger's firings, newest first. */
  async firings(trigger: string, limit = 50): Promise<FiringView[]> {
    const rows = await this.deps.storage.db
      .selectFrom("trigger_firings")
      .selectAll()
      .where("workspace", "=", this.deps.workspace)
      .where("trigger", "=", trigger)
      .orderBy("fire_at", "desc")
      .limit(limit)
      .execute();
    return rows.map(firingView);
  }

  has(trigger: string): boolean {
    return this.ids().includes(trigger);
  }

  ids(): string[] {
    return [
      ...this.schedules.map((s) => s.id),
      ...[...this.webhooks.values()].map((h) => h.id),
      ...(this.deps.subscriptions ?? []).map((x) => subscriptionId(x.event, x.agent)),
    ];
  }
}

function firingRow(
  workspace: string,
  trigger: string,
  at: number,
  status: TriggerFiringsTable["status"],
  detail: string | null,
  now: number,
): TriggerFiringsTable {
  return { workspace, trigger, firing_key: new Date(at).toISOString(), fire_at: at, status, run_id: null, detail, created_at: now };
}

const firingView = (r: TriggerFiringsTable): FiringView => ({
  trigger: r.trigger,
  key: r.firing_key,
  fire_at: new Date(Number(r.fire_at)).toISOString(),
  status: r.status,
  run_id: r.run_id,
  detail: r.detail,
  recorded_at: new Date(Number(r.created_at)).toISOString(),
});

/** The triggers of `triggers` as a caller of `workspace` sees them: another workspace has none. */
export function triggersApi(triggers: Triggers, workspace: string): TriggersApi {
  const own = workspace === triggers.workspace;
  return {
    async listTriggers() {
      return { triggers: own ? await triggers.list() : [] };
    },
    async listFirings(trigger, request = {}) {
      if (!own || !triggers.has(trigger)) {
        throw new OutpostError(
          "not_found",
          `there is no trigger "${trigger}" in workspace ${workspace}`,
          `list triggers with outpost triggers ls (GET /v1/triggers)${own && triggers.size > 0 ? `; this project has ${triggers.ids().join(", ")}` : ""}`,
        );
      }
      const limit = request.limit ?? 50;
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
        throw new OutpostError("invalid_request", `limit: must be a whole number from 1 to 500, not ${limit}`);
      }
      return { firings: await triggers.firings(trigger, limit) };
    },
  };
}
