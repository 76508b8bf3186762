/** outpost.yaml `knowledge:`: what loads (files and folders, in their scopes), and the file:line message for each mistake. */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { formatIssue, loadProject } from "../../src/definitions/index.js";
import { issuesOf, MINIMAL_SETTINGS, writeProject } from "./fixtures.js";

const ORG = {
  "agents/clerk.yaml": "name: clerk\ndescription: books\ninstructions: work\n",
  "teams/finance.yaml": "name: finance\ndescription: money\nlead: clerk\nmembers: [clerk]\n",
  "knowledge/refunds.md": "# Refunds\n\nWithin 30 days.\n",
  "knowledge/notes.txt": "Plain notes.\n",
  "knowledge/logo.png": "not text",
  "handbook/terms.md": "# Terms\n",
};
const withKnowledge = (entries: string) => ({ ...ORG, "outpost.yaml": `${MINIMAL_SETTINGS}knowledge:\n${entries}` });

describe("outpost.yaml knowledge", () => {
  it("loads files and the Markdown and text files of folders, each with its scope, format, tags and classification", async () => {
    const root = await writeProject(
      withKnowledge(
        "  - { path: knowledge, scope: workspace, tags: [policy] }\n" +
          "  - { path: handbook/terms.md, scope: team/finance, classification: confidential }\n",
      ),
    );
    const project = await loadProject(root, { env: {} });
    expect(project.knowledge).toEqual([
      { path: path.join(root, "knowledge/notes.txt"), file: "knowledge/notes.txt", scope: "workspace", format: "text", tags: ["policy"] },
      {
        path: path.join(root, "knowledge/refunds.md"),
        file: "knowledge/refunds.md",
        scope: "workspace",
        format: "markdown",
        tags: ["policy"],
      },
      {
        path: path.join(root, "handbook/terms.md"),
        file: "handbook/terms.md",
        scope: "team/finance",
        format: "markdown",
        tags: [],
        classification: "confidential",
      },
    ]);
  });

  it("names the line and the fix of each mistake", async () => {
    const issues = await issuesOf(
      withKnowledge(
        [
          "  - { path: knowledge/missing.md, scope: workspace }",
          "  - { path: knowledge/logo.png, scope: workspace }",
          "  - { path: knowledge/refunds.md, scope: team/finanse }",
          "  - { path: ../elsewhere.md, scope: workspace }",
          "  - { path: agents, scope: workspace }",
          "  - { path: knowledge/refunds.md, scope: agent/clerk }",
          "  - { path: knowledge, scope: agent/clerk }",
          "",
        ].join("\n"),
      ),
    );
    expect(issues.map(formatIssue)).toEqual([
      "outpost.yaml:9 knowledge[0].path: knowledge/missing.md: no such file or folder",
      "outpost.yaml:10 knowledge[1].path: knowledge/logo.png: only Markdown (.md) and text (.txt) files are read as knowledge",
      'outpost.yaml:11 knowledge[2].scope: unknown team "finanse" — did you mean "finance"?',
      "outpost.yaml:12 knowledge[3].path: ../elsewhere.md is outside the project — keep knowledge files in the project folder",
      "outpost.yaml:13 knowledge[4].path: agents: the folder holds no .md or .txt files",
      'outpost.yaml:15 knowledge[6].path: knowledge/refunds.md and knowledge/refunds.md would both be "refunds.md" in agent/clerk — rename one, or keep them in different scopes',
    ]);
  });

  it("refuses a scope that is not the workspace, a team or an agent", async () => {
    const issues = await issuesOf(withKnowledge("  - { path: knowledge/refunds.md, scope: teams/finance }\n"));
    expect(issues.map(formatIssue)).toContain(
      'outpost.yaml:9 knowledge[0].scope: knowledge lives in "workspace", "team/<name>" or "agent/<name>" (e.g. "team/finance")',
    );
  });
});
