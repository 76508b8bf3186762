/** context/*.yaml: the entity types agents look up with context.lookup, and the file:line message for each mistake. */
import { describe, expect, it } from "vitest";
import { formatIssue, loadProject } from "../../src/definitions/index.js";
import { issuesOf, MINIMAL_SETTINGS, writeProject } from "./fixtures.js";

const SETTINGS = `${MINIMAL_SETTINGS}connections:
  crm:
    mcp: { command: node, args: [crm.js] }
    classification: confidential
`;
const CLERK = "name: clerk\ndescription: books\ninstructions: work\ntools: [context.lookup]\n";

describe("context/*.yaml", () => {
  it("loads each type: its tool, the argument taking the id, its ttl (5 minutes unless set) and classification", async () => {
    const root = await writeProject({
      "outpost.yaml": SETTINGS,
      "agents/clerk.yaml": CLERK,
      "context/customer.yaml": "description: A customer.\ntool: crm.get_customer\nkey: customer_id\nttl: 10m\nclassification: restricted\n",
      "context/orders.yaml": "type: order\ndescription: An order.\ntool: crm.get_order\nkey: order_id\n",
    });
    const project = await loadProject(root, { env: {} });
    expect([...(project.context?.values() ?? [])]).toEqual([
      {
        type: "customer",
        description: "A customer.",
        tool: "crm.get_customer",
        key: "customer_id",
        ttlMs: 600_000,
        classification: "restricted",
        file: "context/customer.yaml",
      },
      { type: "order", description: "An order.", tool: "crm.get_order", key: "order_id", ttlMs: 300_000, file: "context/orders.yaml" },
    ]);
  });

  it("names the line and the fix of each mistake", async () => {
    const issues = await issuesOf({
      "outpost.yaml": SETTINGS,
      "agents/clerk.yaml": CLERK,
      "context/a.yaml": "type: customer\ndescription: A customer.\ntool: crn.get_customer\nkey: customer_id\n",
      "context/b.yaml": "type: order\ndescription: An order.\ntool: crm.get_order\nkey: order id\nttl: soon\n",
      "context/c.yaml": "type: order\ndescription: An order.\ntool: crm.get_order\nkey: order_id\n",
      "context/d.yaml": "type: order\ndescription: Again.\ntool: crm.get_order\nkey: order_id\n",
    });
    expect(issues.map(formatIssue)).toEqual([
      'context/a.yaml:3 tool: "crn.get_customer" is neither a tool of a connection in outpost.yaml nor a tool in tools/ — did you mean "crm"?',
      "context/b.yaml:4 key: key is the name of the tool's argument that takes the id (e.g. customer_id)",
      'context/b.yaml:5 ttl: "soon" is not a duration — use e.g. 90s, 10m, 1h',
      'context/d.yaml:1 type: entity type "order" is already defined in context/c.yaml — rename one',
    ]);
  });

  it("says an agent's context.lookup has nothing to look up when there are no types", async () => {
    const issues = await issuesOf({ "agents/clerk.yaml": CLERK });
    expect(issues.map(formatIssue)).toEqual([
      "agents/clerk.yaml:4 tools[0]: context.lookup looks up the entity types of context/*.yaml, and there are none — add e.g. context/customer.yaml",
    ]);
  });
});
