/**
 * The audit chain: append throughput (entries written to the outbox, then chained and checkpointed) and verify
 * throughput (every hash recomputed, links, checkpoint signatures), on the embedded store. Target: verify
 * ≥ 100,000 entries/s.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog, loadAuditSigningKey, verifyAudit } from "../src/security/audit/index.js";
import { openStore } from "../src/store/index.js";
import { median } from "./driver.js";

export interface AuditResult {
  entries: number;
  appendPerSec: number;
  verifyPerSec: number[];
}

const entry = (i: number) => ({
  kind: i % 3 === 0 ? "model.used" : "policy.decision",
  actor: "agent:refunds",
  runId: `run_${i >> 4}`,
  data:
    i % 3 === 0
      ? {
          run_id: `run_${i >> 4}`,
          agent: "refunds",
          model: "local",
          location: "on_prem",
          run_classification: "internal",
          input_tokens: 812,
          output_tokens: 96,
          cost_usd: 0.0012,
        }
      : {
          run_id: `run_${i >> 4}`,
          agent: "refunds",
          on_behalf_of: "key:k1",
          action: "tool.call",
          resource: { type: "Tool", id: "ledger.issue_refund" },
          effect: i % 7 === 0 ? "deny" : "allow",
          policies: ["refunds-permit"],
          context: { amount_cents: 1200 + i, classification: "confidential" },
        },
});

export async function auditThroughput(quick: boolean): Promise<AuditResult> {
  const entries = quick ? 20_000 : 100_000;
  const dir = mkdtempSync(join(tmpdir(), "outpost-bench-audit-"));
  const store = await openStore({ dataDir: dir });
  try {
    const key = loadAuditSigningKey({ dataDir: dir, env: {} });
    const log = new AuditLog(store, key);
    const t0 = process.hrtime.bigint();
    // Batches of 100 into the outbox, chained every 1,000 (as a background drain would find them).
    for (let i = 0; i < entries; i += 100) {
      await log.record(
        "acme",
        Array.from({ length: 100 }, (_, j) => entry(i + j)),
      );
      if ((i + 100) % 1000 === 0) await log.flush();
    }
    await log.close();
    const appendSec = Number(process.hrtime.bigint() - t0) / 1e9;
    const verifyPerSec: number[] = [];
    for (let round = 0; round < 3; round++) {
      const t1 = process.hrtime.bigint();
      const v = await verifyAudit(store, "acme", { publicKey: key.publicKey });
      const sec = Number(process.hrtime.bigint() - t1) / 1e9;
      if (!v.ok || v.entries !== entries) throw new Error(`audit bench: verification failed: ${JSON.stringify(v)}`);
      verifyPerSec.push(entries / sec);
    }
    return { entries, appendPerSec: entries / appendSec, verifyPerSec };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

export function auditSection(r: AuditResult, record: (name: string, value: string, note?: string) => void): string {
  const verify = median(r.verifyPerSec);
  const met = verify >= 100_000;
  record("audit append (outbox + chain + checkpoints)", `${fmt(r.appendPerSec)}/s`, `${fmt(r.entries)} entries`);
  record("audit verify", `${fmt(verify)}/s`, `target ≥ 100,000/s: ${met ? "met" : "MISSED"}`);
  return `## Audit chain

${fmt(r.entries)} entries (policy decisions and model calls) in one workspace on the embedded store.

| Measure | Value | Note |
| --- | ---: | --- |
| Append: outbox insert, chaining (SHA-256 over RFC 8785 JSON), checkpoint every 1,000 | ${fmt(r.appendPerSec)} entries/s | batches of 100, chained every 1,000 |
| Verify: every hash, every link, every checkpoint signature | ${fmt(verify)} entries/s | median of 3; target ≥ 100,000/s: ${met ? "met" : "**missed**"} |
`;
}
