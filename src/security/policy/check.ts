/**
 * Checking a project's policies for `outpost validate`: what makes them unusable (errors), and what
 * strict validation against the generated schema finds (errors, except reading arguments the schema
 * cannot know — tools from connections — which are warnings).
 */
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { cedarIssue, type Issue } from "../../definitions/index.js";
import type { Project } from "../../definitions/types.js";
import { loadPolicySet } from "./policy-set.js";
import { policySchema } from "./schema.js";

export interface PolicyCheck {
  errors: Issue[];
  warnings: Issue[];
}

export function checkPolicies(project: Project): PolicyCheck {
  const set = loadPolicySet(project);
  if (set.issues.length > 0) return { errors: set.issues, warnings: [] };
  const schema = policySchema(project) as cedar.Schema;
  const errors: Issue[] = [];
  const warnings: Issue[] = [];
  for (const { file, text } of set.files) {
    const ids = set.policies.filter((p) => p.file === file).map((p) => p.id);
    const answer = cedar.validate({ schema, policies: { staticPolicies: text }, validationSettings: { mode: "strict" } });
    if (answer.type === "failure") {
      errors.push(...answer.errors.map((error) => cedarIssue(file, text, error, "the policy schema: ")));
      continue;
    }
    const found = [
      ...answer.validationErrors.map((e) => ({ ...e, warning: /attribute `arguments\./.test(e.error.message) })),
      ...answer.validationWarnings.map((e) => ({ ...e, warning: true })),
    ];
    for (const { policyId, error, warning } of found) {
      const id = ids[Number(policyId.replace(/^policy/, ""))] ?? policyId;
      const message = error.message.replace(/^for policy `[^`]*`, /, "");
      const issue = cedarIssue(file, text, { ...error, message }, `policy "${id}": `);
      if (/attribute `arguments\./.test(error.message)) {
        issue.message += " — no project tool has this argument; fine if a connection's tool does (check the spelling)";
      } else if (/impossible/.test(error.message) && /context\.arguments/.test(text)) {
        issue.message += " — if it tests arguments of a connection's tool, the schema cannot know them (only project tools' are declared)";
      }
      (warning ? warnings : errors).push(issue);
    }
  }
  return { errors, warnings };
}

/** The generated schema in Cedar's own syntax (`outpost policy schema`). */
export function policySchemaText(project: Project): string {
  const answer = cedar.schemaToText(policySchema(project) as cedar.Schema);
  if (answer.type === "failure") throw new Error(answer.errors.map((e) => e.message).join("; "));
  return answer.text.replaceAll("__cedar::", "");
}
