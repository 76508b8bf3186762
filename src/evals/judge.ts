/**
 * The LLM judge: a model alias of the project (through the same model layer as the agents) grades a case's answer
 * against a rubric. On the scripted provider it plays `<scripts>/eval.judge.yaml` (no agent can be called that:
 * agent names have no dots), whose dialogues match the prompt below — so an offline suite can be judged too.
 */
import { selectCandidate } from "../definitions/index.js";
import type { Project } from "../definitions/types.js";
import { createModelClient, type ModelClient } from "../models/index.js";
import type { CaseRecord } from "./record.js";
import { judgeScore, type Score } from "./scorers.js";
import type { JudgeSpec } from "./suite.js";

const JUDGE_AGENT = "eval.judge";

const INSTRUCTIONS = `You grade the answer of an AI agent against a rubric. Read the rubric, what the agent was asked, the tools it called and its answer.
Reply with one JSON object and nothing else: {"score": <a number from 0 to 1: how well the answer meets the rubric>, "reason": "<one sentence>"}.`;

export function judgeClient(project: Project, alias: string, env: NodeJS.ProcessEnv): ModelClient {
  const definition = project.models.get(alias);
  if (!definition) throw new Error(`unknown model alias "${alias}"`);
  return createModelClient(alias, selectCandidate(definition, env), { scriptsDir: project.scriptsDir, env });
}

/** What the judge reads; its last section is the answer, so a script can match on it. */
function judgePrompt(spec: JudgeSpec, record: CaseRecord): string {
  const calls =
    record.tool_calls.map((c) => `- ${c.agent}: ${c.tool} ${JSON.stringify(c.arguments)} → ${c.outcome}`).join("\n") || "(none)";
  return `Rubric:\n${spec.rubric}\n\nInput:\n${record.input}\n\nTools called:\n${calls}\n\nAnswer:\n${record.output ?? ""}`;
}

export async function judgeCase(spec: JudgeSpec, record: CaseRecord, client: ModelClient): Promise<Score> {
  const fail = (detail: string): Score => ({ scorer: "judge", pass: false, score: 0, detail });
  if (record.output === null) return fail(`the run ${record.status} without an answer to judge`);
  // The judge reads what the run read: restricted data goes to local models only, as the baseline policy keeps it.
  if (record.classification === "restricted" && client.location !== "local") {
    return fail(`the run touched restricted data and judge model "${spec.model}" is ${client.location}: use an alias with location: local`);
  }
  try {
    const response = await client.generate({
      agent: JUDGE_AGENT,
      messages: [
        { role: "system", content: INSTRUCTIONS },
        { role: "user", content: judgePrompt(spec, record) },
      ],
      tools: [],
      maxOutputTokens: 400,
    });
    return judgeScore(spec, response.text);
  } catch (err) {
    return fail(`the judge's model failed: ${(err as Error).message.split("\n")[0]}`);
  }
}
