/** Triggers as API clients see them (the server's views; triggers/ builds them). */

export interface TriggerView {
  /** `schedule:<agent>.<name>`, `webhook:<name>`, or `event:<event>:<subscriber>` (an on_events: subscription). */
  id: string;
  kind: "schedule" | "webhook" | "event";
  /** The agent (or `workflow:<name>`) it starts. */
  agent: string;
  /** The schedule's or webhook's name; the event's. */
  name: string;
  /** Schedules: the expression, its time zone and the missed-firing policy (null for webhooks). */
  cron: string | null;
  timezone: string | null;
  missed: "skip" | "catch_up" | null;
  /** A schedule's input, a webhook's input template (null: the payload alone). */
  input: string | null;
  /** Webhooks: where deliveries go, and whether they may be signed (null for schedules). */
  path: string | null;
  signed: boolean | null;
  /** A schedule's next occurrence, ISO (null: none, or a webhook). */
  next_at: string | null;
  last_firing: FiringView | null;
}

export interface FiringView {
  trigger: string;
  /** Unique within the trigger: a schedule's occurrence (ISO), a webhook's delivery id. */
  key: string;
  fire_at: string;
  /** pending: committed, its run not yet created; started; skipped (see detail). */
  status: "pending" | "started" | "skipped";
  run_id: string | null;
  detail: string | null;
  recorded_at: string;
}

/** Triggers as one caller sees them (HTTP, the local CLI): its workspace's only. */
export interface TriggersApi {
  listTriggers(): Promise<{ triggers: TriggerView[] }>;
  /** not_found for a trigger the project does not have. */
  listFirings(trigger: string, request?: { limit?: number }): Promise<{ firings: FiringView[] }>;
}
