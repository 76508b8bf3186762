/**
 * Writing audit entries into the outbox inside a caller's own transaction: a key created, a secret changed,
 * an approval decided is never committed without its entry (the chainer links it in order later).
 */
import type { Transaction } from "kysely";
import { newId } from "../../core/ids.js";
import type { Database } from "../../store/schema.js";
import type { AuditEntryInput } from "../../store/types.js";

export interface AuditRecordInput extends AuditEntryInput {
  runId?: string | null;
}

/** Rows per INSERT: 7 parameters each stays far below either database's parameter limit. */
const INSERT_CHUNK = 500;

export async function appendToOutbox(
  trx: Transaction<Database>,
  workspace: string,
  entries: AuditRecordInput[],
  at = Date.now(),
): Promise<void> {
  const rows = entries.map((e) => ({
    id: newId("aud", at),
    workspace,
    at,
    kind: e.kind,
    actor: e.actor,
    run_id: e.runId ?? null,
    data: JSON.stringify(e.data),
  }));
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await trx
      .insertInto("audit_outbox")
      .values(rows.slice(i, i + INSERT_CHUNK))
      .execute();
  }
}
