/**
 * outpost.yaml `knowledge:` after the schema: each path exists inside the project and is a Markdown or text file or a
 * folder holding some, each team or agent a scope names exists, and no document is kept twice under one name.
 */
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import type { Issue } from "./errors.js";
import type { ProjectFile } from "./schemas.js";
import { didYouMean } from "./suggest.js";
import type { AgentDefinition, KnowledgeFile, TeamDefinition } from "./types.js";
import type { YamlSource } from "./yaml-source.js";

/** The format a file's name implies, or null for a file Outpost does not read as knowledge. */
export const formatOf = (name: string): KnowledgeFile["format"] | null =>
  /\.(md|markdown)$/i.test(name) ? "markdown" : /\.(txt|text)$/i.test(name) ? "text" : null;

export function toKnowledge(
  inputs: NonNullable<ProjectFile["knowledge"]>,
  source: YamlSource,
  root: string,
  agents: Map<string, AgentDefinition>,
  teams: Map<string, TeamDefinition>,
  issues: Issue[],
): KnowledgeFile[] {
  const files: KnowledgeFile[] = [];
  const named = new Map<string, string>();
  inputs.forEach((k, i) => {
    const at = (field: string) => ({ file: source.file, line: source.lineOf(["knowledge", i, field]), path: `knowledge[${i}].${field}` });
    const [kind, owner] = k.scope.split("/") as [string, string | undefined];
    const known = kind === "team" ? teams : kind === "agent" ? agents : null;
    if (known && owner !== undefined && !known.has(owner)) {
      const hint = didYouMean(owner, known.keys()) || ` (known: ${[...known.keys()].join(", ") || "none"})`;
      issues.push({ ...at("scope"), message: `unknown ${kind} "${owner}"${hint}` });
      return;
    }
    const full = path.resolve(root, k.path);
    if (path.relative(root, full).startsWith("..")) {
      issues.push({ ...at("path"), message: `${k.path} is outside the project — keep knowledge files in the project folder` });
      return;
    }
    const info = statOf(full);
    if (!info) {
      issues.push({ ...at("path"), message: `${k.path}: no such file or folder` });
      return;
    }
    let found: string[];
    if (info.isDirectory()) {
      found = readdirSync(full)
        .filter((f) => formatOf(f) !== null)
        .sort()
        .map((f) => path.join(full, f));
      if (found.length === 0) {
        issues.push({ ...at("path"), message: `${k.path}: the folder holds no .md or .txt files` });
        return;
      }
    } else if (formatOf(full) === null) {
      issues.push({ ...at("path"), message: `${k.path}: only Markdown (.md) and text (.txt) files are read as knowledge` });
      return;
    } else {
      found = [full];
    }
    for (const f of found) {
      const name = `${k.scope} ${path.basename(f)}`;
      const first = named.get(name);
      if (first !== undefined) {
        issues.push({
          ...at("path"),
          message: `${path.relative(root, f)} and ${first} would both be "${path.basename(f)}" in ${k.scope} — rename one, or keep them in different scopes`,
        });
        continue;
      }
      named.set(name, path.relative(root, f));
      files.push({
        path: f,
        file: path.relative(root, f),
        scope: k.scope,
        format: formatOf(f) as KnowledgeFile["format"],
        tags: k.tags ?? [],
        ...(k.classification ? { classification: k.classification } : {}),
      });
    }
  });
  return files;
}

function statOf(p: string) {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}
