/** Listing and reading a project's files, with every problem reported as an Issue. */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { z } from "zod";
import type { Issue } from "./errors.js";
import { checkYaml } from "./schema-issues.js";
import { parseYaml, type YamlSource } from "./yaml-source.js";

/** Every `<folder>/*.yaml` that parses and passes `schema`; the problems of the others go to `issues`. */
export async function readYamlFolder<T>(
  root: string,
  folder: string,
  schema: z.ZodType<T>,
  issues: Issue[],
): Promise<{ file: string; source: YamlSource; value: T }[]> {
  const out: { file: string; source: YamlSource; value: T }[] = [];
  for (const file of await listFiles(root, folder, /\.ya?ml$/, issues)) {
    const text = await readText(root, file, issues);
    if (text === undefined) continue;
    const source = parseYaml(file, text);
    if (source.syntaxIssues.length > 0) {
      issues.push(...source.syntaxIssues);
      continue;
    }
    const checked = checkYaml(source, schema);
    if (!checked.ok) {
      issues.push(...checked.issues);
      continue;
    }
    out.push({ file, source, value: checked.value });
  }
  return out;
}

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
