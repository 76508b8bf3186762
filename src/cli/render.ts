/**
 * Turning run events into lines for people: live (`outpost run`, `runs tail`)
 * and as a timeline (`runs show`).
 */
import type { EventView, RunView } from "../core/api.js";
import { command, quote } from "./hints.js";
import { formatInt, formatUsd, out, Spinner, short, truncate } from "./output.js";

type Data = Record<string, any>;

const str = (v: unknown) => (typeof v === "string" ? v : v === undefined || v === null ? "" : JSON.stringify(v));

export function approveCommand(approvalId: string, flags: string): string {
  return command(["approvals", "approve", approvalId], flags);
}

export function denyCommand(approvalId: string, flags: string): string {
  return `${command(["approvals", "deny", approvalId])} --reason ${quote("…")}${flags ? ` ${flags}` : ""}`;
}

/** One short line describing an event, for timelines. */
export function describeEvent(ev: EventView): string {
  const d = ev.data as Data;
  switch (ev.type) {
    case "delegation.started":
      return `→ ${d.agent} (${d.child_run_id})`;
    case "child.finished":
      return `← ${d.agent} ${d.status}${d.output ? `: ${JSON.stringify(truncate(str(d.output), 60))}` : ""}`;
    case "run.handed_off":
      return `${d.from} → ${d.to}: ${truncate(str(d.reason), 60)}`;
    case "run.started":
      return `${d.agent} ← ${JSON.stringify(truncate(str(d.input), 70))}`;
    case "model.called":
      return `step ${d.step}${d.model ? ` · ${d.model}` : ""}`;
    case "model.responded": {
      const calls: Data[] = Array.isArray(d.tool_calls) ? d.tool_calls : [];
      const what = calls.length > 0 ? `→ ${calls.map((c) => c.name).join(", ")}` : `"${truncate(str(d.text), 60)}"`;
      const tokens = d.usage ? `${formatInt((d.usage.input_tokens ?? 0) + (d.usage.output_tokens ?? 0))} tok` : "";
      return [what, tokens, typeof d.cost_usd === "number" ? formatUsd(d.cost_usd) : ""].filter(Boolean).join(" · ");
    }
    case "model.failed":
      return `${d.error?.code ?? "error"}: ${truncate(str(d.error?.message ?? d.error), 80)}`;
    case "tool.called":
      return `${d.tool} ${short(d.arguments, 70)}`;
    case "tool.completed":
      return `${d.tool}${d.is_error ? " (error)" : ""} → ${short(d.output, 70)}`;
    case "approval.requested":
      return `${d.approval_id}: ${d.tool} ${short(d.arguments, 60)}`;
    case "approval.decided":
      return `${d.approval_id} ${d.decision === "approve" ? "approved" : d.decision === "expire" ? "expired" : "denied"}${d.by ? ` by ${d.by}` : ""}${d.reason ? `: ${truncate(str(d.reason), 60)}` : ""}`;
    case "run.waiting":
      return waitingText(d.for);
    case "run.resumed":
      return d.reason ? str(d.reason) : "";
    case "event.received":
      return `${d.name} ${short(d.payload, 60)}`;
    case "workflow.started":
      return `${d.workflow} (version ${str(d.version).slice(0, 12)}) ← ${short(d.input, 60)}`;
    case "step.started":
      return `${d.path} (${d.kind}${d.attempt > 1 ? `, attempt ${d.attempt}` : ""})`;
    case "step.completed":
      return `${d.path} → ${short(d.output, 70)}`;
    case "step.failed":
      return `${d.path}: ${d.error?.message ?? "failed"}${d.retry_at ? ` (again at ${d.retry_at})` : ""}`;
    case "workflow.compensating":
      return `${d.failed} failed: undoing the completed steps`;
    case "step.compensated":
      return `${d.path} undone by ${d.tool}${d.is_error ? " (error)" : ""}`;
    case "context.compacted":
      return `${formatInt(d.replaced?.messages ?? 0)} messages (${formatInt(d.replaced?.tokens ?? 0)} tok) → summary of ${formatInt(d.tokens ?? 0)} tok`;
    case "run.completed":
      return `"${truncate(str(d.output), 80)}"`;
    case "run.failed":
      return `${d.error?.code ?? "error"}: ${truncate(str(d.error?.message ?? d.error), 80)}`;
    case "run.cancelled":
      return str(d.reason);
    default:
      return short(d, 80);
  }
}

function waitingText(w: Data | undefined): string {
  if (!w) return "waiting";
  if (w.kind === "approval") return `for approval ${w.approval_id}`;
  if (w.kind === "timer") return w.retry ? `to retry ${w.retry} (its system was away) at ${w.until}` : `until ${w.until}`;
  if (w.kind === "event") return `for event "${w.event}"`;
  if (w.kind === "children") return `for ${Array.isArray(w.run_ids) ? w.run_ids.length : "its"} child run(s)`;
  return `for ${short(w, 60)}`;
}

/** "3 steps · 1,234 tokens (1,000 in / 234 out) · $0.0012" */
export function usageLine(run: RunView): string {
  const u = run.usage ?? { input_tokens: 0, output_tokens: 0, cost_usd: 0 };
  const steps = `${run.steps} step${run.steps === 1 ? "" : "s"}`;
  const tokens = `${formatInt(u.input_tokens + u.output_tokens)} tokens (${formatInt(u.input_tokens)} in / ${formatInt(u.output_tokens)} out)`;
  return `${steps} · ${tokens} · ${formatUsd(u.cost_usd)}`;
}

/**
 * Prints a run as it happens: tool calls, results, approvals, streamed text,
 * the final answer. A spinner on stderr (TTY only) covers model and tool time.
 */
export class LivePrinter {
  private readonly spinner = new Spinner();
  /** Steps whose text arrived as deltas, so it is not printed again. */
  private readonly streamedSteps = new Set<number>();
  private streamingStep: number | undefined;
  private lastText = "";
  private readonly announced = new Set<string>();
  /** Child run id → agent, from delegation.started. */
  private readonly children = new Map<string, string>();

  constructor(private readonly options: { flags: string; showStart?: boolean; showInput?: boolean }) {}

  handle(ev: EventView): void {
    const d = ev.data as Data;
    if (ev.type !== "model.delta") this.endStream();
    switch (ev.type) {
      case "run.started":
        if (this.options.showStart) {
          out.line(out.dim(`▶ ${d.agent} · run ${ev.run_id} · session ${d.session_id}`));
          if (this.options.showInput) out.line(`${out.bold("›")} ${str(d.input)}`);
        }
        break;
      case "model.called":
        this.lastText = "";
        this.spinner.start(`thinking (step ${d.step})`);
        break;
      case "model.delta": {
        this.spinner.stop();
        const text = str(d.text);
        if (!text) break;
        const step = typeof d.step === "number" ? d.step : -1;
        this.streamedSteps.add(step);
        if (this.streamingStep === undefined) out.line();
        this.streamingStep = step;
        out.write(text);
        this.lastText += text;
        break;
      }
      case "model.responded": {
        this.spinner.stop();
        if (d.model === "scripted" && !this.announced.has("scripted")) {
          // Never let a canned reply pass for a model's answer.
          this.announced.add("scripted");
          out.line(out.dim("· scripted model: replies are replayed from the project's scripts/, no LLM is called"));
        }
        const calls: Data[] = Array.isArray(d.tool_calls) ? d.tool_calls : [];
        const text = str(d.text).trim();
        if (!this.streamedSteps.has(d.step)) {
          if (calls.length > 0 && text) out.line(out.dim(`💬 ${truncate(text, 200)}`));
          this.lastText = "";
        }
        break;
      }
      case "model.failed":
        this.spinner.stop();
        out.line(out.yellow(`⚠ model error: ${describeEvent(ev)}`));
        break;
      case "tool.called":
        this.spinner.stop();
        out.line(`🛠  ${out.bold(str(d.tool))} ${out.dim(short(d.arguments, 100))}`);
        this.spinner.start(`running ${d.tool}`);
        break;
      case "tool.completed": {
        this.spinner.stop();
        const output = short(d.output, 120);
        out.line(d.is_error ? `   ${out.red(`✗ ${output}`)}` : `   ${out.dim(`↳ ${output}`)}`);
        break;
      }
      case "approval.requested":
        this.spinner.stop();
        out.line(`${out.yellow("⏸")}  ${out.bold(str(d.tool))} ${short(d.arguments, 100)} ${out.yellow("needs approval")}`);
        break;
      case "run.waiting": {
        this.spinner.stop();
        const w = (d.for ?? {}) as Data;
        if (w.kind === "approval") {
          const id = str(w.approval_id);
          if (this.announced.has(id)) break;
          this.announced.add(id);
          out.line(`${out.yellow("⏸")}  waiting for approval ${out.bold(id)}`);
          out.line(`   approve: ${out.cyan(approveCommand(id, this.options.flags))}`);
          out.line(`   deny:    ${out.cyan(denyCommand(id, this.options.flags))}`);
        } else if (w.kind === "children") {
          const ids: string[] = Array.isArray(w.run_ids) ? w.run_ids : [];
          const who = ids.map((id) => this.children.get(id) ?? id).join(", ");
          out.line(`${out.yellow("⏸")}  waiting for ${who}`);
          this.spinner.start(`waiting for ${who}`);
        } else {
          out.line(`${out.yellow("⏸")}  waiting ${waitingText(w)}`);
        }
        break;
      }
      case "step.started":
        this.spinner.stop();
        out.line(`▸  step ${out.bold(str(d.path))} ${out.dim(`${d.kind}${d.attempt > 1 ? `, attempt ${d.attempt}` : ""}`)}`);
        break;
      case "step.completed":
        this.spinner.stop();
        out.line(`   ${out.dim(`↳ ${short(d.output, 120)}`)}`);
        break;
      case "step.failed":
        this.spinner.stop();
        out.line(`   ${out.red(`✗ ${describeEvent(ev)}`)}`);
        break;
      case "workflow.compensating":
        out.line(out.yellow(`↺  ${describeEvent(ev)}`));
        break;
      case "step.compensated":
        out.line(`   ${d.is_error ? out.red(`✗ ${describeEvent(ev)}`) : out.dim(`↺ ${describeEvent(ev)}`)}`);
        break;
      case "delegation.started":
        this.children.set(str(d.child_run_id), str(d.agent));
        out.line(out.dim(`   ↳ ${d.agent} is on it (run ${d.child_run_id})`));
        break;
      case "child.finished": {
        this.spinner.stop();
        const ok = d.status === "completed";
        const what = ok ? truncate(str(d.output), 160) : `${d.status}${d.error ? `: ${(d.error as Data).message}` : ""}`;
        out.line(`${ok ? out.green("✓") : out.red("✗")}  ${out.bold(str(d.agent))} ${ok ? "answered" : ""} ${out.dim(what)}`);
        break;
      }
      case "run.handed_off":
        out.line(`⇢  ${out.bold(str(d.to))} takes over ${out.dim(`(${truncate(str(d.reason), 100)})`)}`);
        break;
      case "approval.decided":
        out.line(
          d.decision === "approve"
            ? `${out.green("✓")}  ${d.approval_id} approved${d.by ? ` by ${d.by}` : ""}${d.reason ? `: ${d.reason}` : ""}`
            : `${out.red("✗")}  ${d.approval_id} denied${d.by ? ` by ${d.by}` : ""}${d.reason ? `: ${d.reason}` : ""}`,
        );
        break;
      case "run.resumed":
        out.line(out.dim("▶ resumed"));
        break;
      case "event.received":
        out.line(`📨 event ${describeEvent(ev)}`);
        break;
      case "run.completed": {
        this.spinner.stop();
        const output = str(d.output).trim();
        // Text already streamed as deltas is not printed twice.
        if (output && output !== this.lastText.trim()) {
          out.line();
          out.line(output);
          out.line();
        } else if (output) {
          out.line();
        }
        break;
      }
      case "run.failed":
      case "run.cancelled":
        this.spinner.stop();
        break;
      default:
        break;
    }
  }

  /** A run this one delegated to waits for a person. */
  childApproval(c: { run: RunView; approvalId: string }): void {
    if (this.announced.has(c.approvalId)) return;
    this.announced.add(c.approvalId);
    this.spinner.stop();
    out.line(`${out.yellow("⏸")}  ${out.bold(c.run.agent)} (run ${c.run.id}) waits for approval ${out.bold(c.approvalId)}`);
    out.line(`   approve: ${out.cyan(approveCommand(c.approvalId, this.options.flags))}`);
    out.line(`   deny:    ${out.cyan(denyCommand(c.approvalId, this.options.flags))}`);
  }

  private endStream(): void {
    if (this.streamingStep !== undefined) {
      out.line();
      this.streamingStep = undefined;
    }
  }

  /** The closing line: ✓/✗, usage and the run id. */
  summary(run: RunView): void {
    this.stop();
    const tail = out.dim(`${usageLine(run)} · ${run.id}`);
    switch (run.status) {
      case "completed":
        out.line(`${out.green("✓ completed")} · ${tail}`);
        break;
      case "failed":
        out.line(`${out.red("✗ failed")}${run.error ? `: ${run.error.code}: ${run.error.message}` : ""}`);
        out.line(`  ${tail}`);
        break;
      case "cancelled":
        out.line(`${out.red("✗ cancelled")} · ${tail}`);
        break;
      default:
        out.line(out.dim(`${run.status} · ${usageLine(run)} · ${run.id}`));
    }
  }

  stop(): void {
    this.spinner.stop();
    this.endStream();
  }
}
