/**
 * Triggers: what starts runs without a person asking. Schedules for now: each occurrence of an agent's cron
 * expression starts one run, exactly once across restarts and processes.
 *
 * How "exactly once" holds: a schedule's cursor (the last occurrence dealt with) moves forward by compare-and-set, in
 * the same transaction that records the occurrences it passed as firings (`pending`, or `skipped` and why). Only one
 * process wins a move. The run of a pending firing is then created with the idempotency key of the firing, so
 * whoever creates it — this process, or any other after a crash in between — creates the same one run.
 */
import { OutpostError } from "../core/errors.js";
import type { FiringView, TriggersApi, TriggerView } from "../core/triggers-api.js";
import type { AgentDefinition, ScheduleDefinition } from "../definitions/types.js";
import type { TriggerFiringsTable } from "../store/schema.js";
import type { DomainStorage } from "../store/types.js";
import { nextOccurrence, plan } from "./schedule.js";

export type { FiringView, TriggersApi, TriggerView } from "../core/triggers-api.js";
export { CATCH_UP_LIMIT, GRACE_MS, nextOccurrence, plan } from "./schedule.js";

export interface TriggerDeps {
  storage: DomainStorage;
  workspace: string;
  agents: Iterable<AgentDefinition>;
  /** Creates the firing's run, idempotent by key: the same key again returns the same run. */
  startRun(request: { agent: string; input: string; idempotencyKey: string; startedBy: string }): Promise<{ id: string }>;
  clock?: () => number;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

interface Schedule {
  id: string;
  agent: string;
  def: ScheduleDefinition;
}

export const scheduleId = (agent: string, name: string) => `schedule:${agent}.${name}`;

export class Triggers {
  private readonly schedules: Schedule[];
  private readonly clock: () => number;
  /** Per schedule, when the next occurrence is due: until then a tick does not ask the database. */
  private readonly nextDue = new Map<string, number>();
  private ticking: Promise<number> | null = null;
  private pendingCheckedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly deps: TriggerDeps) {
    this.clock = deps.clock ?? Date.now;
    this.schedules = [...deps.agents].flatMap((a) =>
      (a.schedules ?? []).map((def) => ({ id: scheduleId(a.name, def.name), agent: a.name, def })),
    );
  }

  get workspace(): string {
    return this.deps.workspace;
  }

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

  /** Starts the runs of pending firings: this tick's, and any a process left behind when it died. */
  private async startPending(): Promise<number> {
    const { storage, workspace } = this.deps;
    const pending = await storage.db
      .selectFrom("trigger_firings")
      .selectAll()
      .where("workspace", "=", workspace)
      .where("status", "=", "pending")
      .orderBy("fire_at")
      .limit(200)
      .execute();
    let started = 0;
    // Whoever finds a pending firing starts it (its own, or one a process left when it died): the key makes a second
    // start the same run.
    for (const f of pending) {
      const s = this.schedules.find((x) => x.id === f.trigger);
      if (!s) continue; // the schedule is gone from the project: the firing stays pending, visible
      try {
        const run = await this.deps.startRun({
          agent: s.agent,
          input: s.def.input,
          idempotencyKey: `trigger:${f.trigger}:${f.firing_key}`,
          startedBy: f.trigger,
        });
        await storage.write((trx) =>
          trx
            .updateTable("trigger_firings")
            .set({ status: "started", run_id: run.id })
            .where("workspace", "=", workspace)
            .where("trigger", "=", f.trigger)
            .where("firing_key", "=", f.firing_key)
            .execute(),
        );
        started++;
      } catch (err) {
        this.deps.log.warn({ trigger: f.trigger, firing: f.firing_key, err: (err as Error)?.message }, "schedule: could not start a run");
      }
    }
    if (started > 0) this.deps.log.info({ runs: started }, "schedules fired");
    return started;
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
        next_at: next === null ? null : new Date(next).toISOString(),
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
    return this.schedules.some((s) => s.id === trigger);
  }

  ids(): string[] {
    return this.schedules.map((s) => s.id);
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
