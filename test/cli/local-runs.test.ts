/**
 * Runs on the local store, in-process: the CLI opens the project and the data
 * folder itself, runs the agent, and closes them again.
 */
import { afterAll, describe, expect, it } from "vitest";
import { argsOf, removeDir, runCli, tempDir } from "./harness.js";

const data = tempDir();
afterAll(() => removeDir(data));

const local = ["--project", "test/fixtures/shop", "--data", data];

describe("outpost run on the local store (test/fixtures/shop, scripted model)", () => {
  it("answers a question, with cost, tokens and steps", async () => {
    const result = await runCli(["run", "support", "where is order 1042", ...local]);
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("orders.lookup"); // the tool call, shown as a step
    expect(result.stdout).toContain("scripted model"); // canned replies never pass for a model's answer
    expect(result.stdout).toMatch(/1042/);
    expect(result.stdout).toMatch(/✓ completed · \d+ steps? · [\d,]+ tokens .* · \$\d/);

    const ls = await runCli(["runs", "ls", ...local]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/ID\s+AGENT\s+STATUS/);
    expect(ls.stdout).toMatch(/support\s+completed/);
  });

  it("stops at an approval with the exact command; approving it completes the run", async () => {
    const run = await runCli(["run", "support", "refund order 1042", ...local]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("orders.refund");
    const approveLine = run.stdout.match(/approve: ((?:npx )?outpost approvals approve \S+.*)$/m);
    expect(approveLine, run.stdout).not.toBeNull();
    const runId = run.stdout.match(/· run (\S+) ·/)?.[1];
    expect(runId).toBeTruthy();
    const approvalId = argsOf(approveLine![1])[2];

    const pending = await runCli(["approvals", "ls", ...local]);
    expect(pending.code).toBe(0);
    expect(pending.stdout).toContain(approvalId);
    expect(pending.stdout).toContain("orders.refund");

    const waiting = await runCli(["runs", "show", runId!, ...local]);
    expect(waiting.stdout).toMatch(/waiting/);

    // Exactly the command the CLI printed.
    const approve = await runCli(argsOf(approveLine![1]));
    expect(approve.stderr).not.toMatch(/error/);
    expect(approve.code).toBe(0);
    expect(approve.stdout).toMatch(/✓ approved/);
    expect(approve.stdout).toMatch(/✓ completed/);

    const show = await runCli(["runs", "show", runId!, ...local]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`Run ${runId}\\s+completed`));
    for (const type of ["run.started", "approval.requested", "approval.decided", "tool.completed", "run.completed"]) {
      expect(show.stdout).toContain(type);
    }

    const decided = await runCli(["approvals", "ls", "--all", ...local]);
    expect(decided.stdout).toMatch(new RegExp(`${approvalId}\\s+approved`));
  }, 90_000); // six CLI processes, each a cold Node start: slow on a loaded machine

  it("cancels a waiting run: its approval can no longer be granted", async () => {
    const run = await runCli(["run", "support", "please refund order 1043", ...local]);
    const runId = run.stdout.match(/· run (\S+) ·/)?.[1] as string;
    const approvalId = run.stdout.match(/approvals approve (\S+)/)?.[1] as string;
    const cancel = await runCli(["runs", "cancel", runId, "--reason", "customer called back", ...local]);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toContain(`cancelled ${runId}: customer called back`);
    const approve = await runCli(["approvals", "approve", approvalId, ...local]);
    expect(approve.code).toBe(1);
    expect(approve.stderr).toMatch(/no longer pending/);
  });

  it("chats: each line is a run in the same session, /exit quits", async () => {
    const chat = await runCli(["chat", "support", ...local], { input: "where is order 1042\nwhat can you do?\n/exit\n" });
    expect(chat.stderr).not.toMatch(/error/);
    expect(chat.code).toBe(0);
    expect(chat.stdout).toContain("orders.lookup");
    const session = chat.stdout.match(/session (ses_\S+)/)?.[1];
    expect(session).toBeTruthy();

    const ls = await runCli(["runs", "ls", "--json", "--limit", "2", ...local]);
    const runs = JSON.parse(ls.stdout) as { session_id: string; input: string }[];
    expect(runs.map((r) => r.input).sort()).toEqual(["what can you do?", "where is order 1042"]);
    expect(runs.every((r) => r.session_id === session)).toBe(true);
  });

  it("prints JSON with --json", async () => {
    const result = await runCli(["run", "support", "where is order 1042", "--json", ...local]);
    expect(result.code).toBe(0);
    const run = JSON.parse(result.stdout);
    expect(run.status).toBe("completed");
    expect(typeof run.output).toBe("string");
  });

  it("reports an unknown agent or run as an error with a hint, exit 1", async () => {
    const agent = await runCli(["run", "nobody", "hello", ...local]);
    expect(agent.code).toBe(1);
    expect(agent.stderr).toMatch(/^error: /m);
    expect(agent.stderr).not.toMatch(/\n\s+at /);

    const run = await runCli(["runs", "show", "run_doesnotexist", ...local]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^error: /m);
  });
});
