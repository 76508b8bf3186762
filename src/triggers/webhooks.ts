/**
 * Webhooks, the pure part: the signature a sender puts on a delivery, checking it, and the run's input made from the
 * payload. The scheme is Stripe's: `X-Outpost-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with
 * the webhook's secret. The timestamp is signed too, so a captured delivery replayed later than the tolerance is
 * refused; one replayed sooner carries its delivery id, which starts nothing new.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "x-outpost-signature";
/** How far a delivery's signed time may be from now. */
export const TOLERANCE_MS = 5 * 60_000;

/** The header value that signs `body` at `at` (epoch ms): what a sender computes (tests, the docs' example). */
export function sign(secret: string, body: string, at: number): string {
  const t = Math.floor(at / 1000);
  return `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
}

/** null when the header signs `body` with `secret` within the tolerance; else why not. */
export function signatureProblem(header: string, secret: string, body: string, now: number): string | null {
  const parts = header.split(",").map((p) => p.trim().split("="));
  const t = Number(parts.find(([k]) => k === "t")?.[1]);
  const signatures = parts.filter(([k, v]) => k === "v1" && v !== undefined).map(([, v]) => v as string);
  if (!Number.isInteger(t) || signatures.length === 0) {
    return `${SIGNATURE_HEADER} must read t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`;
  }
  if (Math.abs(now - t * 1000) > TOLERANCE_MS) {
    return `the delivery was signed at ${new Date(t * 1000).toISOString()}, more than 5 minutes from now (a replay, or the sender's clock is off)`;
  }
  const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest();
  const matches = signatures.some((s) => {
    const given = Buffer.from(s, "hex");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return matches ? null : "the signature does not match the body (wrong secret, or the body was changed on the way)";
}

/** The run's input: the template with `{{payload}}` replaced, or the payload alone. */
export function inputFor(template: string | undefined, payload: unknown): string {
  const json = JSON.stringify(payload, null, 2);
  return template === undefined ? json : template.split("{{payload}}").join(json);
}
