/** Following a run and asking for its approvals at the terminal (chat, `run --wait` locally). */
import type { OutpostApi, RunView } from "../core/api.js";
import { type ChildApproval, followRun } from "./follow.js";
import { out, short } from "./output.js";
import type { LivePrinter } from "./render.js";

export type Ask = (prompt: string) => Promise<string | undefined>;

/**
 * Follows `runId` until it ends. Each approval it waits for is asked for with
 * `ask`; no answer (end of input) leaves the run waiting and returns it.
 */
export async function followAskingApprovals(api: OutpostApi, runId: string, printer: LivePrinter, ask: Ask, by: string): Promise<RunView> {
  let after: number | undefined;
  for (;;) {
    let child: ChildApproval | undefined;
    const { run, lastSeq } = await followRun(api, runId, {
      ...(after !== undefined ? { after } : {}),
      stopWhenWaiting: true,
      onEvent: (ev) => printer.handle(ev),
      onChildApproval: (c) => {
        child ??= c;
      },
    });
    after = lastSeq;
    // The run itself, or a run it delegated to, may wait for a person.
    const approvalId =
      child?.approvalId ?? (run.status === "waiting" && run.waiting_for?.kind === "approval" ? run.waiting_for.approval_id : undefined);
    if (approvalId === undefined) return run;
    if (child) out.line(`${out.yellow("⏸")}  ${out.bold(child.run.agent)} (run ${child.run.id}) waits for approval ${approvalId}`);
    const approval = (await api.listApprovals({ status: "pending" })).find((a) => a.id === approvalId);
    const what = approval ? `${approval.tool} ${short(approval.arguments, 80)}` : approvalId;
    const answer = (await ask(`${out.yellow("approve")} ${what}? [y/N] `))?.trim().toLowerCase();
    if (answer === undefined) return run;
    if (answer === "y" || answer === "yes") {
      await api.decideApproval(approvalId, { decision: "approve", by });
    } else {
      const reason = (await ask("reason for denying: "))?.trim() || "denied at the terminal";
      await api.decideApproval(approvalId, { decision: "deny", reason, by });
    }
  }
}

/** A prompt on stdin that works for a terminal and for piped input alike. */
export function lineReader(rl: import("node:readline").Interface): Ask {
  const lines = rl[Symbol.asyncIterator]();
  return async (prompt: string) => {
    out.write(prompt);
    const next = await lines.next();
    if (next.done) {
      out.line();
      return undefined;
    }
    if (!process.stdin.isTTY) out.line(next.value); // echo piped input so the transcript reads well
    return next.value;
  };
}
