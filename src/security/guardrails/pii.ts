/**
 * PII detection and masking: what is replaced by a placeholder before text goes to an external model,
 * and put back into the tool arguments the model writes with those placeholders.
 *
 * Every detector is a cheap regex followed by the check the format carries (Luhn for cards, mod-97 for
 * IBANs, the 11-check for Dutch BSNs, the invalid ranges of US SSNs), so order numbers, dates, amounts
 * and ids like ORD-1042 stay as they are. Pure: no I/O, no clock, no randomness — the same messages give
 * the same mapping, so replaying a run's log masks it the same way.
 */
import type { ChatMessage } from "../../models/types.js";

export type PiiKind = "EMAIL" | "PHONE" | "CARD" | "IBAN" | "SSN" | "NINO" | "BSN";

export interface PiiMatch {
  kind: PiiKind;
  /** The text as it appears. */
  value: string;
  start: number;
  end: number;
}

/**
 * Placeholders and the values they stand for. Build it with `newPiiMapping()` (or let `maskMessages` do it);
 * the same value (after normalising: case of emails, separators of numbers) always gets the same placeholder.
 */
export interface PiiMapping {
  /** `[EMAIL_1]` → the value as first seen. */
  readonly values: Map<string, string>;
  /** `EMAIL:<normalised value>` → `[EMAIL_1]`. */
  readonly placeholders: Map<string, string>;
  /** Next number per kind. */
  readonly counters: Map<PiiKind, number>;
}

export const newPiiMapping = (): PiiMapping => ({ values: new Map(), placeholders: new Map(), counters: new Map() });

// ---------------------------------------------------------------------------------------------
// Checks

const digitsOf = (s: string) => s.replace(/\D/g, "");

export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** ISO 13616: move the first four characters to the end, letters to 10..35, the number mod 97 must be 1. */
export function ibanValid(iban: string): boolean {
  const s = iban.replace(/\s/g, "").toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(s)) return false;
  const expected = IBAN_LENGTHS[s.slice(0, 2)];
  if (expected !== undefined && s.length !== expected) return false;
  let rest = 0;
  for (const ch of s.slice(4) + s.slice(0, 4)) {
    const code = ch.charCodeAt(0);
    const v = code >= 65 ? String(code - 55) : ch;
    for (const d of v) rest = (rest * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rest === 1;
}

/** Lengths of the common countries' IBANs: a match that runs into the next word is cut to its country's length. */
const IBAN_LENGTHS: Record<string, number> = {
  AT: 20,
  BE: 16,
  CH: 21,
  CZ: 24,
  DE: 22,
  DK: 18,
  ES: 24,
  FI: 18,
  FR: 27,
  GB: 22,
  IE: 22,
  IT: 27,
  LU: 20,
  NL: 18,
  NO: 15,
  PL: 28,
  PT: 25,
  SE: 24,
};

/** US SSN: area 000, 666 and 900–999, group 00 and serial 0000 are never issued. */
export function ssnValid(ssn: string): boolean {
  const d = digitsOf(ssn);
  if (d.length !== 9) return false;
  const area = Number(d.slice(0, 3));
  return area !== 0 && area !== 666 && area < 900 && d.slice(3, 5) !== "00" && d.slice(5) !== "0000";
}

/** Dutch BSN 11-check: 9·d1 + 8·d2 + … + 2·d8 − d9 is a multiple of 11 (and not all zeros). */
export function bsnValid(bsn: string): boolean {
  const d = digitsOf(bsn);
  if (d.length !== 9 || /^0+$/.test(d)) return false;
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += (9 - i) * (d.charCodeAt(i) - 48);
  sum -= d.charCodeAt(8) - 48;
  return sum % 11 === 0;
}

// UK NINO: no D F I Q U V in either prefix letter, no O as the second, and BG GB NK KN TN NT ZZ are never issued.
const NINO_BAD_PREFIX = new Set(["BG", "GB", "NK", "KN", "TN", "NT", "ZZ"]);

// ---------------------------------------------------------------------------------------------
// Detectors, in order of precedence: where two overlap, the earlier one keeps its match.

interface Detector {
  kind: PiiKind;
  pattern: RegExp;
  /** The span inside the regex match that is the value, or null when it is not one. */
  accept: (m: RegExpExecArray) => { start: number; end: number } | null;
  normalise: (value: string) => string;
}

const whole = (m: RegExpExecArray) => ({ start: m.index, end: m.index + m[0].length });

/** A number glued to an id prefix (`ORD-`, `#`, `INV-105708-`) or a currency sign is an id or an amount, not PII. */
function idOrAmount(text: string, start: number, end: number): boolean {
  const before = text.slice(Math.max(0, start - 12), start);
  const after = text.slice(end, end + 2);
  return /(?:[A-Za-z]{1,12}[-_/]|[#$€£¥]\s?|[A-Za-z0-9]\.|[\d][,.])$/.test(before) || /^(?:[-_/]?[A-Za-z0-9]|[.,]\d)/.test(after);
}

const DETECTORS: Detector[] = [
  {
    kind: "EMAIL",
    pattern:
      /[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b/g,
    accept: whole,
    normalise: (v) => v.toLowerCase(),
  },
  {
    kind: "IBAN",
    pattern: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g,
    accept: (m) => {
      // The match may run into the next word ("NL91 ABNA 0417 1643 00 ABCD"): try the country's length,
      // then shorter prefixes, each mapped back onto the original span.
      const raw = m[0];
      const ends: number[] = [];
      let count = 0;
      for (let i = 0; i < raw.length; i++) {
        if (raw[i] !== " ") {
          count++;
          ends[count] = i + 1;
        }
      }
      const known = IBAN_LENGTHS[raw.slice(0, 2)];
      const lengths = known !== undefined ? [known] : Array.from({ length: count - 14 }, (_, i) => count - i);
      for (const len of lengths) {
        if (len > count) continue;
        const end = ends[len];
        if (end < raw.length && /[A-Z0-9]/.test(raw[end])) continue; // cut inside a group
        if (ibanValid(raw.slice(0, end))) return { start: m.index, end: m.index + end };
      }
      return null;
    },
    normalise: (v) => v.replace(/\s/g, "").toUpperCase(),
  },
  {
    kind: "CARD",
    // 13–19 digits, in groups split by one kind of separator; issuers' numbers start with 2–6.
    pattern: /\b[2-6]\d{3}(?:([ -]?)\d{2,6}){2,4}\b/g,
    accept: (m) => {
      const sep = m[1];
      if (
        sep &&
        !m[0]
          .slice(4)
          .split(/\d+/)
          .every((s) => s === "" || s === sep)
      )
        return null;
      const d = digitsOf(m[0]);
      return d.length >= 13 && d.length <= 19 && luhnValid(d) ? whole(m) : null;
    },
    normalise: digitsOf,
  },
  {
    kind: "SSN",
    pattern: /\b\d{3}([- ])\d{2}\1\d{4}\b/g,
    accept: (m) => (ssnValid(m[0]) ? whole(m) : null),
    normalise: digitsOf,
  },
  {
    kind: "NINO",
    pattern: /\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b/g,
    accept: (m) => (NINO_BAD_PREFIX.has(m[0].slice(0, 2)) ? null : whole(m)),
    normalise: (v) => v.replace(/\s/g, ""),
  },
  {
    kind: "BSN",
    pattern: /\b\d{9}\b/g,
    accept: (m) => (bsnValid(m[0]) ? whole(m) : null),
    normalise: (v) => v,
  },
  {
    kind: "PHONE",
    // E.164 / international (+31 6 1234 5678, +1 (415) 555-0100, +4420794609 58), then national forms:
    // (415) 555-0100, 415-555-0100, 415.555.0100, 020 7946 0958, 07700 900123, 06-12345678.
    pattern:
      /(?:\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,5}\)?){1,5}|\(\d{3}\) ?\d{3}[ .-]\d{4}\b|\b[2-9]\d{2}([.-]| )\d{3}\1\d{4}\b|\b0\d{1,4}(?:[ -]\d{2,8}){1,3}\b|\b0[1-9]\d{8,9}\b)/g,
    accept: (m) => {
      const d = digitsOf(m[0]);
      const international = m[0].startsWith("+");
      if (international ? d.length < 8 || d.length > 15 : d.length < 10 || d.length > 11) return null;
      return whole(m);
    },
    normalise: (v) => (v.startsWith("+") ? `+${digitsOf(v)}` : digitsOf(v)),
  },
];

/** Every PII value in `text`, in order, without overlaps. */
export function detectPii(text: string): PiiMatch[] {
  const found: PiiMatch[] = [];
  const taken: Array<[number, number]> = [];
  const free = (s: number, e: number) => taken.every(([a, b]) => e <= a || s >= b);
  for (const det of DETECTORS) {
    det.pattern.lastIndex = 0;
    for (let m = det.pattern.exec(text); m; m = det.pattern.exec(text)) {
      const span = det.accept(m);
      if (!span) continue;
      if (det.kind !== "EMAIL" && det.kind !== "IBAN" && det.kind !== "NINO" && idOrAmount(text, span.start, span.end)) continue;
      if (!free(span.start, span.end)) continue;
      taken.push([span.start, span.end]);
      found.push({ kind: det.kind, value: text.slice(span.start, span.end), start: span.start, end: span.end });
    }
  }
  return found.sort((a, b) => a.start - b.start);
}

const NORMALISE = new Map(DETECTORS.map((d) => [d.kind, d.normalise]));

function placeholderFor(match: PiiMatch, mapping: PiiMapping): string {
  const key = `${match.kind}:${NORMALISE.get(match.kind)?.(match.value) ?? match.value}`;
  let p = mapping.placeholders.get(key);
  if (!p) {
    const n = (mapping.counters.get(match.kind) ?? 0) + 1;
    mapping.counters.set(match.kind, n);
    p = `[${match.kind}_${n}]`;
    mapping.placeholders.set(key, p);
    mapping.values.set(p, match.value);
  }
  return p;
}

/** Replaces each PII value in `text` with its placeholder, adding new values to `mapping`. */
export function maskText(text: string, mapping: PiiMapping = newPiiMapping()): { text: string; mapping: PiiMapping } {
  const matches = detectPii(text);
  if (matches.length === 0) return { text, mapping };
  let out = "";
  let at = 0;
  for (const m of matches) {
    out += text.slice(at, m.start) + placeholderFor(m, mapping);
    at = m.end;
  }
  return { text: out + text.slice(at), mapping };
}

/**
 * Masks a whole conversation for an external model: every message's content and the arguments of the
 * assistant's earlier tool calls. Placeholders are numbered in order of first appearance.
 */
export function maskMessages(
  messages: ChatMessage[],
  mapping: PiiMapping = newPiiMapping(),
): { messages: ChatMessage[]; mapping: PiiMapping } {
  const mask = (s: string) => maskText(s, mapping).text;
  const out = messages.map((m): ChatMessage => {
    if (m.role === "assistant") {
      const masked: ChatMessage = { ...m, content: mask(m.content) };
      if (m.toolCalls) masked.toolCalls = m.toolCalls.map((c) => ({ ...c, arguments: mask(c.arguments) }));
      return masked;
    }
    return { ...m, content: mask(m.content) };
  });
  return { messages: out, mapping };
}

const PLACEHOLDER = /\[(?:EMAIL|PHONE|CARD|IBAN|SSN|NINO|BSN)_\d+\]/g;

/**
 * Puts the real values back wherever the model wrote a placeholder: deep over objects and arrays, in
 * strings (keys included). Unknown placeholders stay as they are. Also safe on raw JSON text (a tool
 * call's `arguments`): no PII value this module detects contains a quote or a backslash.
 */
export function unmaskValue<T>(value: T, mapping: PiiMapping): T {
  if (mapping.values.size === 0) return value;
  const text = (s: string) => s.replace(PLACEHOLDER, (p) => mapping.values.get(p) ?? p);
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return text(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [text(k), walk(x)]));
    return v;
  };
  return walk(value) as T;
}
