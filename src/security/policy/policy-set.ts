/**
 * A project's policies as the engine uses them: the shipped baseline (unless turned off) and
 * policies/*.cedar, split into single policies with their ids and `@approval` annotations.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { cedarIssue, type Issue } from "../../definitions/index.js";
import type { PolicyFile, Project } from "../../definitions/types.js";
import { ROLES } from "../types.js";

/** How the baseline's file is named in ids, problems and the policy hash. */
export const BASELINE_FILE = "(outpost)/baseline.cedar";
const BASELINE_TEXT = readFileSync(new URL("./baseline.cedar", import.meta.url), "utf8");

export interface LoadedPolicy {
  /** `@id("…")`, else `<file>#<n>` (n counts from 1 within the file). */
  id: string;
  file: string;
  effect: "permit" | "forbid";
  /** From `@approval("role[:group]")` on a permit. */
  approval: { role: string; group: string | null } | null;
  text: string;
}

export interface LoadedPolicySet {
  files: PolicyFile[];
  policies: LoadedPolicy[];
  /** Problems that make the set unusable (syntax, templates, duplicate ids, bad annotations). */
  issues: Issue[];
  /** SHA-256 over the files' names and texts. */
  hash: string;
}

export function policyFiles(project: Project): PolicyFile[] {
  const baseline = project.policyOptions?.baseline ?? true;
  return [...(baseline ? [{ file: BASELINE_FILE, text: BASELINE_TEXT }] : []), ...(project.policies ?? [])];
}

export function loadPolicySet(project: Project): LoadedPolicySet {
  const files = policyFiles(project);
  const policies: LoadedPolicy[] = [];
  const issues: Issue[] = [];
  const ids = new Map<string, string>();
  const set = policies;
  for (const { file, text } of files) {
    const parts = cedar.policySetTextToParts(text);
    if (parts.type === "failure") {
      issues.push(...parts.errors.map((error) => cedarIssue(file, text, error)));
      continue;
    }
    if (parts.policy_templates.length > 0) {
      issues.push({ file, path: "", message: "policy templates (?principal, ?resource) are not supported — write static policies" });
    }
    parts.policies.forEach((policyText, index) => {
      const json = cedar.policyToJson(policyText);
      if (json.type === "failure") {
        issues.push(...json.errors.map((error) => cedarIssue(file, text, error)));
        return;
      }
      const annotations = json.json.annotations ?? {};
      // The nth use of an id in this file is where its duplicate is.
      const at = (value: string) => lineOf(text, value, set.filter((p) => p.file === file && p.id === value.slice(1, -1)).length);
      const id = annotations.id ?? `${file}#${index + 1}`;
      const previous = ids.get(id);
      if (previous !== undefined) {
        issues.push({
          file,
          line: at(`"${id}"`),
          path: "",
          message: `policy id "${id}" is already used in ${previous} — ids must be unique; rename one`,
        });
      } else if (file !== BASELINE_FILE && id.startsWith("baseline.")) {
        issues.push({
          file,
          line: at(`"${id}"`),
          path: "",
          message: `policy id "${id}": ids starting with "baseline." are the shipped baseline's — choose another`,
        });
      }
      ids.set(id, file);
      let approval: LoadedPolicy["approval"] = null;
      if (annotations.approval !== undefined) {
        const parsed = parseApproval(annotations.approval);
        if (typeof parsed === "string")
          issues.push({
            file,
            line: at(`@approval("${annotations.approval}")`) ?? at("@approval"),
            path: "",
            message: `policy "${id}": ${parsed}`,
          });
        else if (json.json.effect === "forbid") {
          issues.push({
            file,
            line: at("@approval"),
            path: "",
            message: `policy "${id}": @approval belongs on a permit — a forbid denies, there is nothing to approve`,
          });
        } else approval = parsed;
      }
      policies.push({ id, file, effect: json.json.effect, approval, text: policyText });
    });
  }
  const hash = createHash("sha256")
    .update(JSON.stringify(files.map((f) => [f.file, f.text])))
    .digest("hex");
  return { files, policies, issues, hash };
}

/** `operator` or `operator:finance` → {role, group}; otherwise what is wrong. */
export function parseApproval(value: string): { role: string; group: string | null } | string {
  const match = /^([a-z]+)(?::([a-z0-9][a-z0-9_-]*))?$/.exec(value);
  if (!match || !ROLES.includes(match[1] as never)) {
    return `@approval("${value}") must be "role" or "role:group" with a role of ${ROLES.join(", ")} (e.g. @approval("operator:finance"))`;
  }
  return { role: match[1] as string, group: match[2] ?? null };
}

/** The 1-based line of the (nth, from 0) occurrence of `needle` (for problems Cedar gives no offset for). */
function lineOf(text: string, needle: string, nth = 0): number | undefined {
  let index = text.indexOf(needle);
  for (let i = 0; i < nth && index >= 0; i++) index = text.indexOf(needle, index + 1);
  if (index < 0) index = text.indexOf(needle);
  return index < 0 ? undefined : text.slice(0, index).split("\n").length;
}
