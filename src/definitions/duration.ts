/**
 * Durations in definitions: a number of milliseconds, or text such as
 * `500ms`, `90s`, `10m`, `1h`, `2d`, or a combination like `1h30m`.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

export const DURATION_HINT = "use e.g. 90s, 10m, 1h";

/** Milliseconds for `text` (see above); throws an Error for people when it is not a duration. */
export function parseDuration(value: string | number): number {
  if (typeof value === "number") {
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
    throw new Error(`${value} is not a duration — ${DURATION_HINT} (or a number of milliseconds)`);
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  if (!WHOLE.test(text)) throw new Error(`${JSON.stringify(value)} is not a duration — ${DURATION_HINT}`);
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit];
  return Math.round(total);
}
