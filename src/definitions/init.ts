/**
 * `outpost init`: scaffolds a small project that runs offline on the scripted
 * model and on OpenAI once OPENAI_API_KEY is set.
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { OutpostError } from "../core/errors.js";
import { NAME_PATTERN } from "./schemas.js";

export interface InitOptions {
  /** Workspace name (default: derived from the folder name). */
  name?: string;
}

/** Writes the scaffold into `dir` (created if needed; must be empty). Returns the created paths, relative to `dir`. */
export async function initProject(dir: string, options: InitOptions = {}): Promise<string[]> {
  const root = path.resolve(dir);
  const workspace = options.name ?? workspaceFromFolder(root);
  if (!NAME_PATTERN.test(workspace)) {
    throw new OutpostError(
      "invalid_request",
      `"${workspace}" is not a valid workspace name`,
      'use lowercase letters, digits, "-" or "_", starting with a letter (e.g. --name acme)',
    );
  }
  const existing = await readdir(root).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [] as string[];
    if (error.code === "ENOTDIR") {
      throw new OutpostError("conflict", `${root} is a file, not a folder`, "choose a new or empty folder for the project");
    }
    throw error;
  });
  if (existing.length > 0) {
    throw new OutpostError(
      "conflict",
      `${root} is not empty (it contains ${existing.slice(0, 3).join(", ")}${existing.length > 3 ? ", …" : ""}) — outpost init never overwrites files`,
      "choose a new or empty folder, e.g. `outpost init my-agents`",
    );
  }

  const files = scaffold(workspace);
  for (const [file, content] of Object.entries(files)) {
    const target = path.join(root, file);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content, { flag: "wx" });
  }
  return Object.keys(files);
}

function workspaceFromFolder(root: string): string {
  const slug = path
    .basename(root)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[^a-z]+/, "")
    .replace(/-+$/, "");
  return slug || "default";
}

function scaffold(workspace: string): Record<string, string> {
  return {
    "outpost.yaml": `# Outpost project. Reference: outpost validate checks this folder and names any mistake.
version: 1
workspace: ${workspace}

models:
  # An alias lists candidates; the first whose requires_env variables are all set is used.
  assistant:
    - provider: openai
      model: gpt-4.1-mini
      requires_env: [OPENAI_API_KEY]
      api_key_env: OPENAI_API_KEY
      price: { input_per_mtok: 0.4, output_per_mtok: 1.6 }
    # Offline fallback: plays scripts/<agent>.yaml, no network, no key.
    - provider: scripted

defaults:
  model: assistant
  limits: { max_steps: 20, max_usd: 0.5, max_wall_time: 5m }
`,
    "agents/helper.yaml": `name: helper
description: A first agent that can tell the time.
instructions: |
  You are a concise, friendly assistant.
  When someone asks for the time or the date, call the clock.now tool and answer from its result.
model: assistant
tools:
  - clock.now
`,
    "tools/clock.ts": `import { defineTool } from "outpost";
import { z } from "zod";

export default defineTool({
  name: "clock.now",
  description: "The current date and time, optionally in a given IANA time zone (e.g. Europe/Paris).",
  input: z.object({
    timezone: z.string().optional().describe("IANA time zone, e.g. Europe/Paris; default UTC"),
  }),
  sideEffects: false,
  handler: ({ input }) => {
    const timeZone = input.timezone ?? "UTC";
    const now = new Date();
    return {
      iso: now.toISOString(),
      timezone: timeZone,
      time: now.toLocaleTimeString("en-GB", { timeZone, hour: "2-digit", minute: "2-digit" }),
      date: now.toLocaleDateString("en-GB", { timeZone, dateStyle: "long" }),
    };
  },
});
`,
    "scripts/helper.yaml": `# Script for the scripted model (used when no real model is configured).
# A dialogue is chosen by matching its "when" regex (case-insensitive) against the latest user message;
# named groups become variables. Within it, the Nth assistant turn since that message plays turns[N].
dialogues:
  - when: '\\b(time|date|clock)\\b'
    turns:
      - tool_calls:
          - name: clock.now
            args: {}
      - text: "It is \${last_tool_result.time} (UTC) on \${last_tool_result.date}."
  - turns:
      - text: "Hello! I am running on the scripted model. Ask me: what time is it?"
`,
    "package.json": `${JSON.stringify({ name: workspace, private: true, type: "module" }, null, 2)}\n`,
    ".gitignore": ".outpost/\nnode_modules/\n",
    "README.md": `# ${workspace}

An Outpost project: agents defined in YAML, tools in TypeScript.

| Path | What it is |
| --- | --- |
| \`outpost.yaml\` | workspace name, model aliases, default limits |
| \`agents/helper.yaml\` | the \`helper\` agent: instructions, model, tools |
| \`tools/clock.ts\` | the \`clock.now\` tool (\`defineTool\` + a zod input schema) |
| \`scripts/helper.yaml\` | what the offline scripted model answers for \`helper\` |

## Try it

\`\`\`sh
outpost validate --project .  # checks every file; mistakes come back as file:line messages
outpost up --project .        # starts Outpost on this project
\`\`\`

Ask the \`helper\` agent "what time is it?". Without an API key it runs on the scripted model;
set \`OPENAI_API_KEY\` and the same agent runs on \`gpt-4.1-mini\` (see \`models:\` in \`outpost.yaml\`).

## Next steps

- Add an agent: a new file in \`agents/\`.
- Add a tool: a new file in \`tools/\` exporting \`defineTool({ name, description, input, handler })\`.
  Tools with side effects receive an \`idempotencyKey\`: pass it on so retries never act twice.
- Mark a risky tool \`approval: required\` in the agent's \`tools:\` list to have a person approve each call.
`,
  };
}
