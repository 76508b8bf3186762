/** `outpost approvals ls | approve ID | deny ID --reason R`. */
import type { Command } from "commander";
import type { ApprovalView, OutpostApi } from "../../core/api.js";
import { addConnectionOptions, type ConnectionOptions, withConnection } from "../connect.js";
import { EXIT_OK, Exit, UsageError } from "../errors.js";
import { followRun, lastSeqOf } from "../follow.js";
import { command } from "../hints.js";
import { age, out, short, table } from "../output.js";
import { LivePrinter } from "../render.js";
import { whoAmI } from "../whoami.js";

interface DecideOptions extends ConnectionOptions {
  reason?: string;
  follow?: boolean;
}

/** A pending approval past its expiry is expired (a denial) even before the server's sweep records it. */
function isExpired(a: ApprovalView, now = Date.now()): boolean {
  return a.status === "expired" || (a.status === "pending" && a.expires_at !== null && Date.parse(a.expires_at) <= now);
}

function statusText(a: ApprovalView): string {
  if (isExpired(a)) return out.red("expired");
  const status = a.status;
  return status === "approved" ? out.green(status) : status === "denied" ? out.red(status) : out.yellow(status);
}

/** Who may decide it: "operator", or "operator of finance". */
function approverText(a: ApprovalView): string {
  return a.approver.group ? `${a.approver.role} of ${a.approver.group}` : a.approver.role;
}

/** When a pending approval stops being decidable: "in 23h", "expired 2m ago"; "-" once decided. */
function expiryText(a: ApprovalView, now = Date.now()): string {
  if (a.expires_at === null) return "never";
  if (isExpired(a, now)) return out.red(`expired ${age(a.expires_at, now)}`);
  if (a.status !== "pending") return "-";
  const s = Math.max(0, Math.floor((Date.parse(a.expires_at) - now) / 1000));
  return s < 60
    ? `in ${s}s`
    : s < 3600
      ? `in ${Math.floor(s / 60)}m`
      : s < 86400
        ? `in ${Math.floor(s / 3600)}h`
        : `in ${Math.floor(s / 86400)}d`;
}

export function registerApprovals(program: Command): void {
  const approvals = program.command("approvals").description("see and decide actions waiting for a human");

  const ls = approvals
    .command("ls")
    .alias("list")
    .description("list pending approvals")
    .option("--all", "include approvals already decided")
    .option("--json", "print JSON");
  addConnectionOptions(ls).action(async (opts: ConnectionOptions & { all?: boolean; json?: boolean }) => {
    await withConnection(opts, { workers: false }, async ({ api, flags }) => {
      const items = await api.listApprovals(opts.all ? {} : { status: "pending" });
      if (opts.json) {
        out.line(JSON.stringify(items, null, 2));
        return;
      }
      if (items.length === 0) {
        out.line(out.dim(opts.all ? "no approvals yet" : "nothing waits for approval (use --all to see decided ones)"));
        return;
      }
      out.line(
        table(
          ["ID", "STATUS", "AGENT", "TOOL", "ARGUMENTS", "APPROVER", "EXPIRES", "POLICIES", "RUN"],
          items.map((a) => [
            a.id,
            statusText(a),
            a.agent,
            a.tool,
            short(a.arguments, 40),
            approverText(a),
            expiryText(a),
            a.policies.join(", ") || "-",
            a.run_id,
          ]),
        ),
      );
      const first = items.find((a) => a.status === "pending" && !isExpired(a));
      if (first) {
        out.line(out.dim(`approve with: ${command(["approvals", "approve", first.id], flags)}  (as ${approverText(first)})`));
      }
    });
  });

  const approve = approvals
    .command("approve")
    .description("approve a pending action; the run continues")
    .argument("<id>", "approval id")
    .option("--reason <text>", "why (recorded in the run and the audit log)")
    .option("--no-follow", "do not follow the run after deciding");
  addConnectionOptions(approve).action(async (id: string, opts: DecideOptions) => {
    throw new Exit(await decide(id, "approve", opts));
  });

  const deny = approvals
    .command("deny")
    .description("deny a pending action, with the reason on record")
    .argument("<id>", "approval id")
    .requiredOption("--reason <text>", "why (recorded in the run and the audit log)")
    .option("--no-follow", "do not follow the run after deciding");
  addConnectionOptions(deny).action(async (id: string, opts: DecideOptions) => {
    if (!opts.reason?.trim()) throw new UsageError("--reason must not be empty", "say why, e.g. --reason 'amount too high'");
    throw new Exit(await decide(id, "deny", opts));
  });
}

async function decide(id: string, decision: "approve" | "deny", opts: DecideOptions): Promise<number> {
  // Locally the run can only continue while this process holds the store, so
  // it is followed until it ends or waits again; against a server, by default too.
  return withConnection(opts, { workers: true }, async ({ api, flags, kind }) => {
    const pending = await findApproval(api, id);
    const after = pending ? await lastSeqOf(api, pending.run_id).catch(() => undefined) : undefined;
    const by = whoAmI();
    const decided = await api.decideApproval(id, { decision, ...(opts.reason ? { reason: opts.reason } : {}), ...(by ? { by } : {}) });
    const verb = decided.status === "approved" ? out.green("✓ approved") : out.red("✗ denied");
    out.line(`${verb} ${decided.id}: ${decided.tool} ${out.dim(short(decided.arguments, 80))}`);
    if (opts.follow === false && kind === "server") {
      out.line(out.dim(`follow the run: ${command(["runs", "tail", decided.run_id], flags)}`));
      return EXIT_OK;
    }
    const printer = new LivePrinter({ flags });
    const { run } = await followRun(api, decided.run_id, {
      ...(after !== undefined ? { after } : {}),
      stopWhenWaiting: true,
      onEvent: (ev) => {
        if (ev.type !== "approval.decided") printer.handle(ev);
      },
    });
    printer.summary(run);
    // The decision is what this command does; the run's own outcome is shown, not the exit code.
    return EXIT_OK;
  });
}

async function findApproval(api: OutpostApi, id: string): Promise<ApprovalView | undefined> {
  const items = await api.listApprovals({});
  return items.find((a) => a.id === id);
}
