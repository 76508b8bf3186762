/** Listing and reading a project's files, with every problem reported as an Issue. */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Issue } from "./errors.js";

/** The files in `folder` whose names match `pattern`; a folder with such a name is an issue. */
export async function listFiles(root: string, folder: string, pattern: RegExp, issues: Issue[]): Promise<string[]> {
  const entries = await readdir(path.join(root, folder), { withFileTypes: true }).catch(() => []);
  const files: string[] = [];
  for (const entry of entries) {
    if (!pattern.test(entry.name)) continue;
    const file = `${folder}/${entry.name}`;
    if (entry.isDirectory()) {
      issues.push({ file, path: "", message: `is a folder, not a file — rename it, or move it out of ${folder}/` });
    } else {
      files.push(file);
    }
  }
  return files.sort();
}

export async function readText(root: string, file: string, issues: Issue[]): Promise<string | undefined> {
  try {
    return await readFile(path.join(root, file), "utf8");
  } catch (error) {
    issues.push({ file, path: "", message: `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` });
    return undefined;
  }
}
