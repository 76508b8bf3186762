/**
 * `outpost demo` as a user runs it: the real CLI as a child process, on the Acme example (its three
 * business systems as MCP servers, the scripted model) or on a small project of the test's own.
 */
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeDir, runCli, SHOP, tempDir } from "./harness.js";

const folders: string[] = [];
afterAll(() => {
  for (const dir of folders) removeDir(dir);
});

/** A stack trace: a line starting with "at " after indentation. */
const STACK = /^\s+at\s/m;

describe("outpost demo on the Acme example", { timeout: 120_000 }, () => {
  it("plays the four scenarios, names who worked on them and checks the systems: 4 as expected, exit 0", async () => {
    const result = await runCli(["demo"]);
    expect(result.stderr).not.toMatch(/error|warn/i);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const out = result.stdout;

    expect(out).toMatch(/Outpost demo — acme: 4 scenarios, data in \S+/);
    for (const title of ["Damaged order", "Late shipment", "Invoice dispute", "Prompt injection: a refund nobody asked for"]) {
      expect(out).toMatch(new RegExp(`▶ ${title}\\s+✓? ?completed in [\\d.]+ s`));
      expect(out).toContain(`✓ ${title}`);
    }
    // The agents each scenario brought in, in the order they joined. (Siblings started in the same step may be
    // listed either way round: run ids order runs created in the same millisecond at random.)
    expect(out).toMatch(/agents\s+triage, support, (shipments, inventory, refunds|refunds, shipments, inventory)\n/);
    expect(out).toMatch(/agents\s+triage, support, (shipments, refunds|refunds, shipments)\n/);
    expect(out).toMatch(/agents\s+triage, support, invoicing\n/);
    expect(out).toMatch(/approvals\s+ledger\.issue_refund \(apr_\w+\) approved by the demo operator/);
    expect(out).toMatch(/triage → support completed run_\w+/);
    expect(out).toMatch(
      /├─ shipments completed run_\w+\n {4}│ {2}└─ inventory completed|└─ shipments completed run_\w+\n {7}└─ inventory completed/,
    );

    // The systems' end state, as described by the project's demo.ts.
    expect(out).toContain("Business systems after the demo");
    expect(out).toMatch(/reship RS-\d+ \(ACM-1004×1\); claim CLM-\d+ damaged 329\.00/);
    expect(out).toMatch(/refund RF-\d+ 14\.95/);
    expect(out).toMatch(/SHP-105781 delayed, estimate 2026-10-31 → 2026-1[01]-\d\d/);
    expect(out).toMatch(/goodwill GW-\d+ \d+\.\d\d \(cap 25\.34\)/);
    expect(out).toContain("INV-105171 credited → INV-105171-R1 267.99, balance 0.00");
    // The injected $9,000 refund: the model fell for it, policy refused it (the demo operator approves all it is
    // asked, but nothing was asked), and no money moved.
    expect(out).toMatch(/agents\s+triage, support, refunds\n/);
    expect(out).toContain(
      'refused: tool.call on Tool "ledger.issue_refund" is not allowed for agent refunds (forbidden by policy acme.no_large_payouts_on_tainted_runs)',
    );
    expect(out).toContain("no refund for order 105781: the injected $9,000 to NL91 ABNA 0417 1643 00 was blocked");
    expect(out).toMatch(/4 scenarios, 4 as expected · 11 runs · 6 agents · \d+ tool calls/);

    // The temporary data folder is gone afterwards.
    const dataDir = out.match(/data in (\S+)/)?.[1] as string;
    expect(existsSync(dataDir)).toBe(false);
  });

  it("--scenario invoice_dispute --json prints one scenario as JSON, with no problems", async () => {
    const result = await runCli(["demo", "--scenario", "invoice_dispute", "--json"]);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as {
      data_dir: string;
      scenarios: {
        name: string;
        title: string;
        run: { status: string; agent: string };
        agents: string[];
        runs: number;
        approvals: unknown[];
        toolCalls: { name: string; count: number }[];
        systems: string[];
        problems: string[];
      }[];
      systems: { scenarios: Record<string, { done: boolean }> } | null;
    };
    expect(report.scenarios).toHaveLength(1);
    const [s] = report.scenarios;
    expect(s).toMatchObject({ name: "invoice_dispute", title: "Invoice dispute", problems: [], approvals: [], runs: 2 });
    expect(s.run).toMatchObject({ status: "completed", agent: "triage" });
    expect(s.agents).toEqual(["triage", "support", "invoicing"]);
    expect(s.toolCalls).toContainEqual({ name: "ledger.issue_corrected_invoice", count: 1 });
    expect(s.systems).toContain("ledger    INV-105171 credited → INV-105171-R1 267.99, balance 0.00");
    // Only this scenario was played: the others' systems are untouched.
    expect(report.systems?.scenarios.invoice_dispute.done).toBe(true);
    expect(report.systems?.scenarios.damaged_order.done).toBe(false);
    expect(report.systems?.scenarios.late_shipment.done).toBe(false);
    expect(existsSync(report.data_dir)).toBe(false);
  });

  it("an unknown --scenario is refused with the known names, no stack trace, exit ≠ 0", async () => {
    const result = await runCli(["demo", "--scenario", "lost_parcel"]);
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/no scenario "lost_parcel" in \S*examples\/acme\/demo\.ts/);
    expect(result.stderr).toContain("known: damaged_order, late_shipment, invoice_dispute");
    expect(result.stderr).not.toMatch(STACK);
  });
});

describe("outpost demo on other projects", { timeout: 60_000 }, () => {
  it("a project without demo.ts is told so, with how to write one, no stack trace, exit ≠ 0", async () => {
    const result = await runCli(["demo", "--project", SHOP]);
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toContain(`${SHOP} has no demo.ts`);
    expect(result.stderr).toMatch(/hint: a demo is a demo\.ts exporting \{ scenarios: .*examples\/acme\/demo\.ts/);
    expect(result.stderr).not.toMatch(STACK);
  });

  it("run from a project folder, plays its demo.ts; a scenario whose check finds a problem fails the command", async () => {
    const root = tempDir("outpost-demo-project-");
    folders.push(root);
    const files: Record<string, string> = {
      // As `outpost init` writes it: the project's TypeScript files are ES modules.
      "package.json": '{ "name": "guestbook", "private": true, "type": "module" }\n',
      "outpost.yaml": [
        "version: 1",
        "workspace: guestbook",
        "models:",
        "  offline:",
        "    - provider: scripted",
        "defaults:",
        "  model: offline",
        "  limits: { max_steps: 5, max_tokens: 100000, max_usd: 1, max_wall_time: 1m }",
        "",
      ].join("\n"),
      "agents/greeter.yaml": "name: greeter\ndescription: Greets visitors.\ninstructions: Greet.\n",
      "scripts/greeter.yaml": 'dialogues:\n  - turns:\n      - text: "Welcome, ${input}!"\n',
      "demo.ts": [
        "export default {",
        '  scenarios: [{ name: "visit", title: "A visit", agent: "greeter", input: "Ada" }],',
        "  state: () => ({ signed: 0 }),",
        '  check: (state: { signed: number }) => (state.signed > 0 ? [] : ["nobody signed the guestbook"]),',
        "  describe: (state: { signed: number }) => [`guestbook ${state.signed} signatures`],",
        "};",
        "",
      ].join("\n"),
    };
    for (const [file, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, file)), { recursive: true });
      await writeFile(path.join(root, file), text);
    }

    const result = await runCli(["demo"], { cwd: root });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).not.toMatch(STACK);
    expect(result.stdout).toContain("Outpost demo — guestbook: 1 scenario,");
    expect(result.stdout).toMatch(/▶ A visit\s+✓? ?completed/);
    expect(result.stdout).toContain("Welcome, Ada!");
    expect(result.stdout).toContain("✗ A visit");
    expect(result.stdout).toContain("guestbook 0 signatures");
    expect(result.stdout).toContain("nobody signed the guestbook");
    expect(result.stdout).toMatch(/1 scenario, 0 as expected · 1 runs · 1 agents/);
  });
});
