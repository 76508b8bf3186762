/**
 * Custom scorers: a TypeScript (or JavaScript) module whose default export scores a case's record, loaded the way
 * the project's own TypeScript is (tsx; `outpost` and `zod` resolve to this installation's when the project has none).
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import { tsImport } from "tsx/esm/api";
import { OutpostError } from "../core/errors.js";
import { registerOutpostResolution } from "../definitions/resolve-hook.js";
import type { CaseRecord } from "./record.js";
import { customScore, type Score } from "./scorers.js";
import type { CustomScorerRef, EvalCase } from "./suite.js";

/** What a custom scorer module exports by default. */
export type CustomScorer = (
  record: CaseRecord,
  context: { case: EvalCase; options: unknown },
) => { pass: boolean; score?: number; detail?: string } | boolean | Promise<{ pass: boolean; score?: number; detail?: string } | boolean>;

/** Loads each module once; a module that does not load stops the suite before any case runs. */
export async function loadCustomScorers(refs: CustomScorerRef[]): Promise<Map<string, CustomScorer>> {
  const loaded = new Map<string, CustomScorer>();
  if (refs.length > 0) registerOutpostResolution();
  for (const file of new Set(refs.map((r) => r.path))) {
    let exported: unknown;
    try {
      exported = ((await tsImport(pathToFileURL(file).href, import.meta.url)) as { default?: unknown }).default;
    } catch (err) {
      throw new OutpostError(
        "invalid_project",
        `scorer ${rel(file)} cannot be loaded: ${(err as Error).message.split("\n")[0]}`,
        "fix the module, then run the suite again",
      );
    }
    // A module compiled to CommonJS arrives as { default: exports }.
    if (exported && typeof exported === "object" && "default" in exported) exported = (exported as { default: unknown }).default;
    if (typeof exported !== "function") {
      throw new OutpostError(
        "invalid_project",
        `scorer ${rel(file)} must export a function by default`,
        'export default (record, { case, options }) => ({ pass: true, score: 1, detail: "…" })',
      );
    }
    loaded.set(file, exported as CustomScorer);
  }
  return loaded;
}

export async function runCustomScorer(ref: CustomScorerRef, scorer: CustomScorer, record: CaseRecord, evalCase: EvalCase): Promise<Score> {
  try {
    return customScore(ref.name, await scorer(record, { case: evalCase, options: ref.options }));
  } catch (err) {
    return { scorer: `custom:${ref.name}`, pass: false, score: 0, detail: `threw: ${(err as Error)?.message ?? String(err)}` };
  }
}

const rel = (file: string) => path.relative(process.cwd(), file) || file;
