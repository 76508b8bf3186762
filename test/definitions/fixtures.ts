/** Writes throwaway projects into temp folders (outside this repo) for the definitions tests. */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { type Issue, validateProject } from "../../src/definitions/index.js";

export const MINIMAL_SETTINGS = `version: 1
workspace: test
models:
  assistant:
    provider: scripted
defaults:
  model: assistant
`;

export const ECHO_TOOL = `import { defineTool } from "outpost";
import { z } from "zod";

export default defineTool({
  name: "text.echo",
  description: "Echoes its input.",
  input: z.object({ text: z.string() }),
  handler: ({ input }) => ({ text: input.text }),
});
`;

const folders: string[] = [];
afterAll(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

export async function tempDir(): Promise<string> {
  const folder = await mkdtemp(path.join(tmpdir(), "outpost-defs-"));
  folders.push(folder);
  return folder;
}

/** A project folder with `files` (relative path → content; null = leave out); outpost.yaml defaults to MINIMAL_SETTINGS. */
export async function writeProject(files: Record<string, string | null>): Promise<string> {
  const root = await tempDir();
  const all = { "outpost.yaml": MINIMAL_SETTINGS, ...files };
  for (const [file, content] of Object.entries(all)) {
    if (content === null) continue;
    const target = path.join(root, file);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content);
  }
  return root;
}

/** The issues of a project made of `files`, which must be invalid. */
export async function issuesOf(files: Record<string, string | null>): Promise<Issue[]> {
  const result = await validateProject(await writeProject(files));
  if (result.ok) throw new Error("expected the project to be invalid");
  return result.issues;
}
