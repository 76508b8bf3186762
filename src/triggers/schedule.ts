/**
 * Schedules, the pure part: which occurrences of a cron expression fall due between a schedule's cursor (the last
 * occurrence it dealt with) and now, and which of them to run after downtime. The service (triggers/index.ts) commits
 * the answer with the new cursor in one transaction; that is what makes each occurrence fire once.
 */
import { Cron } from "croner";
import type { ScheduleDefinition } from "../definitions/types.js";

/** An occurrence this late is missed, not just late (a restart of a few minutes still runs the nightly job). */
export const GRACE_MS = 5 * 60_000;
/** Catching up runs at most this many missed occurrences, the latest; older ones are skipped. */
export const CATCH_UP_LIMIT = 100;
/** Occurrences looked at in one plan, at most (a per-second schedule after a week away). */
const SCAN_LIMIT = 100_000;

export interface Plan {
  /** Occurrences to run now, oldest first (epoch ms). */
  fire: number[];
  /** Occurrences not run, and why. */
  skip: { at: number; why: string }[];
  /** The newest occurrence dealt with: the schedule's next cursor (unchanged when none was due). */
  cursor: number;
}

/** The schedule's expression, read in its time zone. */
export function cronOf(s: Pick<ScheduleDefinition, "cron" | "timezone">): Cron {
  return new Cron(s.cron, { paused: true, timezone: s.timezone });
}

/** The first occurrence after `after` (epoch ms), or null when there is none. */
export function nextOccurrence(s: Pick<ScheduleDefinition, "cron" | "timezone">, after: number): number | null {
  return cronOf(s).nextRun(new Date(after))?.getTime() ?? null;
}

/** What falls due in (cursor, now]. */
export function plan(s: Pick<ScheduleDefinition, "cron" | "timezone" | "missed">, cursor: number, now: number): Plan {
  const cron = cronOf(s);
  const due: number[] = [];
  let at = cursor;
  for (let i = 0; i < SCAN_LIMIT; i++) {
    const next = cron.nextRun(new Date(at))?.getTime();
    if (next === undefined || next > now) break;
    due.push(next);
    at = next;
  }
  if (due.length === 0) return { fire: [], skip: [], cursor };
  const last = due[due.length - 1];
  if (s.missed === "catch_up") {
    const cut = Math.max(0, due.length - CATCH_UP_LIMIT);
    return {
      fire: due.slice(cut),
      skip: due.slice(0, cut).map((t) => ({ at: t, why: `missed while Outpost was down; catch-up runs the latest ${CATCH_UP_LIMIT}` })),
      cursor: last,
    };
  }
  const onTime = (t: number) => now - t <= GRACE_MS;
  return {
    fire: due.filter(onTime),
    skip: due.filter((t) => !onTime(t)).map((t) => ({ at: t, why: "missed while Outpost was down (missed: skip)" })),
    cursor: last,
  };
}
