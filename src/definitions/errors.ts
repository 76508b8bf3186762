import { OutpostError } from "../core/errors.js";

/** One mistake in a project, located precisely enough to jump to it. */
export interface Issue {
  /** File relative to the project root, e.g. "agents/support.yaml". */
  file: string;
  /** 1-based line, when the mistake can be pinned to one. */
  line?: number;
  /** 1-based column (YAML syntax errors). */
  column?: number;
  /** Field path inside the file, e.g. "models.assistant[0].provider"; "" for the whole file. */
  path: string;
  /** What is wrong and how to fix it. */
  message: string;
}

/** `agents/triage.yaml:12 tools[2]: unknown tool …` */
export function formatIssue(issue: Issue): string {
  let where = issue.file;
  if (issue.line !== undefined) where += `:${issue.line}`;
  if (issue.line !== undefined && issue.column !== undefined) where += `:${issue.column}`;
  return issue.path ? `${where} ${issue.path}: ${issue.message}` : `${where} ${issue.message}`;
}

/** Compares issues by file, then line, so reports read top to bottom. */
export function byLocation(a: Issue, b: Issue): number {
  if (a.file !== b.file) {
    // outpost.yaml first, then the rest alphabetically.
    if (a.file === "outpost.yaml") return -1;
    if (b.file === "outpost.yaml") return 1;
    return a.file < b.file ? -1 : 1;
  }
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
}

/** Every problem found in a project, thrown at once. */
export class ProjectError extends OutpostError {
  constructor(
    readonly root: string,
    readonly issues: Issue[],
  ) {
    const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
    super(
      "invalid_project",
      [`project ${root} has ${count}:`, ...issues.map(formatIssue)].join("\n"),
      "fix the problems listed above, then run `outpost validate` to check again",
    );
    this.name = "ProjectError";
  }
}
