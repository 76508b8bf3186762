/**
 * Guardrails: pure functions over text. PII masking for external models (pii.ts), untrusted tool output
 * delimited as data (untrusted.ts), prompt-injection detection (injection.ts).
 */
export { type InjectionFinding, type InjectionScan, scanForInjection } from "./injection.js";
export {
  bsnValid,
  detectPii,
  ibanValid,
  luhnValid,
  maskMessages,
  maskText,
  newPiiMapping,
  type PiiKind,
  type PiiMapping,
  type PiiMatch,
  ssnValid,
  unmaskValue,
} from "./pii.js";
export { neutraliseMarkers, UNTRUSTED_DATA_NOTE, wrapUntrusted } from "./untrusted.js";
