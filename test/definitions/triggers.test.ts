/**
 * schedules: and webhooks: in agents/*.yaml: read into the definition with their defaults, and each mistake named
 * with file:line and how to fix it — a cron expression or time zone that cannot be read, a schedule or webhook name
 * used twice, a secret that is not a vault reference, a schema that is not JSON Schema.
 */
import { describe, expect, it } from "vitest";
import { formatIssue, loadProject } from "../../src/definitions/index.js";
import { issuesOf, MINIMAL_SETTINGS, writeProject } from "./fixtures.js";

const agent = (name: string, extra: string) => `name: ${name}\ninstructions: Work.\n${extra}`;

describe("triggers in agent definitions", () => {
  it("reads schedules and webhooks with their defaults", async () => {
    const root = await writeProject({
      "outpost.yaml": MINIMAL_SETTINGS,
      "agents/inventory.yaml": agent(
        "inventory",
        `schedules:
  - { name: nightly, cron: "0 2 * * *", timezone: Europe/Berlin, input: Check stock., missed: catch_up }
  - { name: hourly, cron: "0 * * * *", input: Look again. }
webhooks:
  - { name: stock-alert, secret: "secret://stock_hook", schema: { type: object }, delivery_header: X-GitHub-Delivery }
  - { name: plain }
`,
      ),
    });
    const inventory = (await loadProject(root)).agents.get("inventory");
    expect(inventory?.schedules).toEqual([
      { name: "nightly", cron: "0 2 * * *", timezone: "Europe/Berlin", input: "Check stock.", missed: "catch_up" },
      { name: "hourly", cron: "0 * * * *", timezone: "UTC", input: "Look again.", missed: "skip" },
    ]);
    expect(inventory?.webhooks).toEqual([
      { name: "stock-alert", secret: "stock_hook", schema: { type: "object" }, deliveryHeader: "x-github-delivery" },
      { name: "plain", deliveryHeader: "x-outpost-delivery" },
    ]);
  });

  it("names each mistake with its line", async () => {
    const issues = await issuesOf({
      "outpost.yaml": MINIMAL_SETTINGS,
      "agents/a.yaml": agent(
        "a",
        `schedules:
  - { name: one, cron: "61 * * * *", input: x }
  - { name: two, cron: "0 2 * * *", timezone: Mars/Olympus, input: x }
webhooks:
  - { name: hook, secret: hunter2 }
  - { name: typed, schema: { type: 12 } }
`,
      ),
    });
    expect(issues.map(formatIssue)).toEqual([
      'agents/a.yaml:4 schedules[0].cron: "61 * * * *" is not a cron expression: Invalid value for minute: 61 — five fields: minute hour day-of-month month day-of-week, e.g. "0 2 * * *" (02:00 every day)',
      'agents/a.yaml:5 schedules[1].timezone: "Mars/Olympus" is not a time zone — use an IANA name, e.g. Europe/Berlin or UTC',
      'agents/a.yaml:7 webhooks[0].secret: a vault reference, e.g. "secret://helpdesk_webhook" (set it with outpost secrets set)',
      "agents/a.yaml:8 webhooks[1].schema: not a JSON Schema Outpost can check payloads with: Unsupported type: 12",
    ]);
  });

  it("refuses a schedule name twice in an agent, and a webhook name twice in the project", async () => {
    const issues = await issuesOf({
      "outpost.yaml": MINIMAL_SETTINGS,
      "agents/a.yaml": agent(
        "a",
        `schedules:
  - { name: one, cron: "0 2 * * *", input: x }
  - { name: one, cron: "0 3 * * *", input: y }
webhooks:
  - { name: hook }
`,
      ),
      "agents/b.yaml": agent("b", "webhooks:\n  - { name: hook }\n"),
    });
    expect(issues.map(formatIssue)).toEqual([
      'agents/a.yaml:5 schedules[1].name: schedule "one" is already defined above — schedule names must be unique within an agent',
      'agents/b.yaml:4 webhooks[0].name: webhook "hook" is already agent a\'s — webhook names are the URL (/v1/hooks/<name>): unique across the project',
    ]);
  });
  it("reads emits: and on_events:, giving an emitting agent one emit tool per event, and names a bad event name", async () => {
    const root = await writeProject({
      "outpost.yaml": MINIMAL_SETTINGS,
      "agents/inventory.yaml": agent("inventory", "emits: [inventory.low_stock, inventory.low_stock]\n"),
      "agents/buyer.yaml": agent("buyer", "on_events: [inventory.low_stock]\n"),
    });
    const p = await loadProject(root);
    expect(p.agents.get("inventory")).toMatchObject({ emits: ["inventory.low_stock"], tools: [{ name: "emit.inventory.low_stock" }] });
    expect(p.agents.get("buyer")?.onEvents).toEqual(["inventory.low_stock"]);
    const issues = await issuesOf({
      "outpost.yaml": MINIMAL_SETTINGS,
      "agents/a.yaml": agent("a", "emits: [Inventory-Low]\n"),
    });
    expect(issues.map(formatIssue)).toEqual([
      'agents/a.yaml:3 emits[0]: event names are lower-case words of letters, digits and "_", joined by dots, e.g. inventory.low_stock',
    ]);
  });
});
