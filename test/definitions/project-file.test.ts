import { describe, expect, it } from "vitest";
import { formatIssue, loadProject, ProjectError } from "../../src/definitions/index.js";
import { issuesOf, MINIMAL_SETTINGS, tempDir, writeProject } from "./fixtures.js";

describe("outpost.yaml validation", () => {
  it("names file, line and field of a misspelt provider and suggests the right one", async () => {
    const issues = await issuesOf({
      "outpost.yaml": `version: 1
workspace: acme
models:
  assistant:
    - provider: openai
      model: gpt-4.1-mini
    - provider: opena1
      model: gpt-4.1
`,
    });
    expect(issues.map(formatIssue)).toEqual([
      'outpost.yaml:7 models.assistant[1].provider: must be one of openai, anthropic, amazon-bedrock, openai-compatible, scripted (got "opena1") — did you mean "openai"?',
    ]);
    expect(issues[0]).toMatchObject({ file: "outpost.yaml", line: 7, path: "models.assistant[1].provider" });
  });

  it("reads how long approvals stay open, and refuses a duration it cannot read", async () => {
    const root = await writeProject({ "outpost.yaml": `${MINIMAL_SETTINGS}approvals: { expire_after: 2h }\n` });
    expect((await loadProject(root)).approvalTtlMs).toBe(7_200_000);
    const issues = await issuesOf({ "outpost.yaml": `${MINIMAL_SETTINGS}approvals: { expire_after: soon }\n` });
    expect(issues.map(formatIssue)).toEqual([`outpost.yaml:8 approvals.expire_after: "soon" is not a duration — use e.g. 90s, 10m, 1h`]);
  });

  it("reads memory.embedder (base_url with ${VAR}), and says which field an embedder is missing", async () => {
    const root = await writeProject({
      "outpost.yaml": `${MINIMAL_SETTINGS}memory:
  embedder: { provider: openai-compatible, model: nomic-embed-text, base_url: "\${EMBED_HOST}/v1", api_key_env: EMBED_KEY, dimensions: 768 }
`,
    });
    expect((await loadProject(root, { env: { EMBED_HOST: "http://127.0.0.1:11434" } })).embedder).toEqual({
      provider: "openai-compatible",
      model: "nomic-embed-text",
      baseUrl: "http://127.0.0.1:11434/v1",
      apiKeyEnv: "EMBED_KEY",
      dimensions: 768,
    });
    const missing = await issuesOf({
      "outpost.yaml": `${MINIMAL_SETTINGS}memory:\n  embedder:\n    provider: openai-compatible\n    model: bge-m3\n`,
    });
    expect(missing.map(formatIssue)).toEqual([
      'outpost.yaml:10 memory.embedder.base_url: missing required field "base_url" — an openai-compatible embedder needs it (e.g. base_url: http://localhost:11434/v1)',
      'outpost.yaml:10 memory.embedder.dimensions: missing required field "dimensions" — an openai-compatible embedder needs it (e.g. dimensions: 768)',
    ]);
    const hashed = await issuesOf({ "outpost.yaml": `${MINIMAL_SETTINGS}memory: { embedder: { provider: hashed, model: x } }\n` });
    expect(hashed.map(formatIssue)).toEqual([
      "outpost.yaml:8 memory.embedder.provider: the hashed embedder is built in: it takes only dimensions (drop model, base_url and api_key_env)",
    ]);
    const url = await issuesOf({
      "outpost.yaml": `${MINIMAL_SETTINGS}memory: { embedder: { provider: openai, base_url: "ftp://example.com/v1" } }\n`,
    });
    expect(url.map(formatIssue)[0]).toMatch(/^outpost\.yaml:8 memory\.embedder\.base_url: /);
    // The built-in embedder when there is no setting.
    expect((await loadProject(await writeProject({ "outpost.yaml": MINIMAL_SETTINGS }))).embedder).toBeUndefined();
  });

  it("reports unknown fields at the key's line with a did-you-mean", async () => {
    const issues = await issuesOf({
      "outpost.yaml": `version: 1
workspace: acme
models:
  assistant:
    provider: openai
    model: gpt-4.1-mini
    requires_evn: [OPENAI_API_KEY]
defaults:
  model: assistant
  limits:
    max_step: 5
`,
    });
    expect(issues.map(formatIssue)).toEqual([
      'outpost.yaml:7 models.assistant.requires_evn: unknown field "requires_evn" — did you mean "requires_env"?',
      'outpost.yaml:11 defaults.limits.max_step: unknown field "max_step" — did you mean "max_steps"?',
    ]);
  });

  it("lists the known fields when an unknown one is not close to any", async () => {
    const issues = await issuesOf({ "outpost.yaml": "version: 1\nworkspace: acme\nmodels: {}\nflavour: vanilla\n" });
    expect(issues).toHaveLength(1);
    expect(formatIssue(issues[0])).toBe(
      'outpost.yaml:4 flavour: unknown field "flavour" — remove it (known fields: version, workspace, models, defaults, scripts_dir, connections, policies, egress, knowledge, memory, budgets, scheduling, approvals, auth)',
    );
  });

  it("points a missing required field at the enclosing object's line", async () => {
    const issues = await issuesOf({
      "outpost.yaml": `version: 1
models:
  assistant:
    - provider: scripted
    - provider: anthropic
      requires_env: [ANTHROPIC_API_KEY]
`,
    });
    expect(issues.map(formatIssue)).toEqual([
      'outpost.yaml:1 workspace: missing required field "workspace"',
      'outpost.yaml:5 models.assistant[1].model: missing required field "model" — provider anthropic needs a model id (e.g. model: claude-sonnet-4-5)',
    ]);
  });

  it("requires base_url for openai-compatible", async () => {
    const issues = await issuesOf({
      "outpost.yaml": `version: 1
workspace: acme
models:
  local:
    provider: openai-compatible
    model: llama3.1
defaults:
  model: local
`,
    });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ line: 5, path: "models.local.base_url" });
    expect(issues[0].message).toContain("base_url: http://localhost:11434/v1");
  });

  it("explains bad durations, wrong types, wrong version and a non-numeric limit", async () => {
    const issues = await issuesOf({
      "outpost.yaml": `version: 2
workspace: acme
models:
  assistant:
    provider: openai
    model: gpt-4.1-mini
    timeout: 1 minute
    max_retries: 1.5
defaults:
  model: assistant
  limits: { max_steps: lots, max_wall_time: "10 minutes" }
`,
    });
    expect(issues.map(formatIssue)).toEqual([
      "outpost.yaml:1 version: must be 1 (got 2)",
      'outpost.yaml:7 models.assistant.timeout: "1 minute" is not a duration — use e.g. 90s, 10m, 1h',
      "outpost.yaml:8 models.assistant.max_retries: expected a whole number, got 1.5",
      'outpost.yaml:11 defaults.limits.max_steps: expected a number, got "lots"',
      'outpost.yaml:11 defaults.limits.max_wall_time: "10 minutes" is not a duration — use e.g. 90s, 10m, 1h',
    ]);
  });

  it("rejects a secret where the name of an environment variable belongs, without echoing it", async () => {
    const issues = await issuesOf({
      "outpost.yaml": `version: 1
workspace: acme
models:
  assistant:
    provider: openai
    model: gpt-4.1-mini
    api_key_env: sk-proj-abc123
defaults:
  model: assistant
`,
    });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ line: 7, path: "models.assistant.api_key_env" });
    expect(issues[0].message).toContain("NAME of an environment variable");
    expect(formatIssue(issues[0])).not.toContain("sk-proj");
  });

  it("reports an unknown defaults.model alias", async () => {
    const issues = await issuesOf({
      "outpost.yaml": "version: 1\nworkspace: acme\nmodels:\n  assistant:\n    provider: scripted\ndefaults:\n  model: asistant\n",
    });
    expect(issues.map(formatIssue)).toEqual(['outpost.yaml:7 defaults.model: unknown model alias "asistant" — did you mean "assistant"?']);
  });

  it("gives YAML syntax errors with line and column", async () => {
    const issues = await issuesOf({ "outpost.yaml": "version: 1\nworkspace: acme: corp\nmodels: {}\n" });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: "outpost.yaml", line: 2, column: 12, path: "" });
    expect(issues[0].message).toMatch(/^YAML syntax error: /);
    expect(formatIssue(issues[0])).toMatch(/^outpost\.yaml:2:12 YAML syntax error: /);
  });

  it("reports duplicate keys as a syntax error on the second one", async () => {
    const issues = await issuesOf({ "outpost.yaml": "version: 1\nworkspace: a\nworkspace: b\nmodels: {}\n" });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ line: 3 });
    expect(issues[0].message).toContain("unique");
    expect(issues[0].message).toContain("remove or rename one of them");
  });

  it("says an empty outpost.yaml is empty", async () => {
    const issues = await issuesOf({ "outpost.yaml": "# nothing yet\n" });
    expect(issues.map(formatIssue)).toEqual([
      "outpost.yaml:1 the file is empty — expected a mapping with the fields version, workspace, models, defaults, scripts_dir, connections, policies, egress, knowledge, memory, budgets, scheduling, approvals, auth",
    ]);
  });

  it("says which folder lacks outpost.yaml and suggests outpost init", async () => {
    const root = await writeProject({ "outpost.yaml": null });
    const error = await loadProject(root).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProjectError);
    const projectError = error as ProjectError;
    expect(projectError.code).toBe("invalid_project");
    expect(projectError.status).toBe(422);
    expect(projectError.issues).toHaveLength(1);
    expect(projectError.issues[0].file).toBe("outpost.yaml");
    expect(projectError.issues[0].message).toContain(`no outpost.yaml in ${root}`);
    expect(projectError.issues[0].message).toContain("outpost init");
  });

  it("says when the folder does not exist", async () => {
    const missing = `${await tempDir()}/nope`;
    const error = (await loadProject(missing).catch((caught: unknown) => caught)) as ProjectError;
    expect(error).toBeInstanceOf(ProjectError);
    expect(error.issues[0].message).toContain(`folder ${missing} does not exist`);
  });

  it("collects problems from every file into one error, one per line", async () => {
    const root = await writeProject({
      "outpost.yaml": "version: 1\nworkspace: acme\nmodels:\n  assistant: { provider: scripted }\nflavor: x\n",
      "agents/a.yaml": "name: a\ninstructions: hi\nmodel: nope\n",
      "agents/b.yaml": "name: b\n",
    });
    const error = (await loadProject(root).catch((caught: unknown) => caught)) as ProjectError;
    expect(error).toBeInstanceOf(ProjectError);
    expect(error.issues.map((issue) => `${issue.file}:${issue.line}`)).toEqual(["outpost.yaml:5", "agents/a.yaml:3", "agents/b.yaml:1"]);
    const lines = error.message.split("\n");
    expect(lines[0]).toBe(`project ${root} has 3 problems:`);
    expect(lines.slice(1)).toEqual(error.issues.map(formatIssue));
    expect(error.hint).toContain("outpost validate");
  });
});
