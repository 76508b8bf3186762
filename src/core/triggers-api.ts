/** Triggers as API clients see them (the server's views; triggers/ builds them). */

export interface TriggerView {
  /** `schedule:<agent>.<name>`. */
  id: string;
  kind: "schedule";
  agent: string;
  name: string;
  cron: string;
  timezone: string;
  missed: "skip" | "catch_up";
  input: string;
  /** The next occurrence, ISO (null: none). */
  next_at: string | null;
  last_firing: FiringView | null;
}

export interface FiringView {
  trigger: string;
  /** Unique within the trigger: a schedule's occurrence (ISO). */
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
