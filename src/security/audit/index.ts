/** The tamper-evident audit log (issue 4 §7): the chainer, verification, signing keys and transparency reports. */
export { canonicalJson, entryHash, entryHashOf, GENESIS_HASH } from "./chain.js";
export {
  type AuditSigningKey,
  checkpointSignatureValid,
  keyIdOf,
  loadAuditSigningKey,
  PUBLIC_KEY_FILE,
  parsePublicKey,
  SIGNING_KEY_FILE,
} from "./keys.js";
export {
  type AuditEntry,
  type AuditListFilter,
  AuditLog,
  type AuditLogOptions,
  type AuditRecordInput,
  listAudit,
  pendingAudit,
} from "./log.js";
export { appendToOutbox } from "./outbox.js";
export { buildReport, type ReportOptions, type TransparencyReport } from "./report.js";
export { type AuditProblem, type AuditProblemKind, type AuditVerification, type VerifiedCheckpoint, verifyAudit } from "./verify.js";
