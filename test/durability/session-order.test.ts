/**
 * Sessions: messages to one session are processed in order, one run at a time,
 * and each run's model sees the conversation so far (the previous answers).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { EventView } from "../../src/core/api.js";
import { isTerminal } from "../../src/core/api.js";
import { loadProject } from "../../src/definitions/index.js";
import type { ModelRequest } from "../../src/models/index.js";
import { createScriptedClient } from "../../src/models/index.js";
import { startOutpost } from "../../src/runtime/outpost.js";
import { logProblems, readJsonLines, sleep, until } from "./fixtures/checks.js";
import { OUTPOST_ENTRY, removeDir, tempDir, writeFiles } from "./fixtures/project.js";

const MESSAGES = 5;
const TOOL_CALLS_PER_RUN = 2;

const NOTE_TOOL = `import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { defineTool } from "${OUTPOST_ENTRY}";
import { z } from "zod";

export default defineTool({
  name: "note.take",
  description: "Writes a note.",
  input: z.object({ text: z.string() }),
  handler: async ({ input, context }) => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    appendFileSync(join(context.dataDir, "notes.jsonl"), JSON.stringify({ run: context.runId, text: input.text }) + "\\n");
    return { noted: input.text };
  },
});
`;

const projectDir = writeFiles(tempDir("session-project"), {
  "outpost.yaml": "version: 1\nworkspace: durability\nmodels:\n  scripted:\n    provider: scripted\ndefaults:\n  model: scripted\n",
  "agents/chat.yaml": "name: chat\ninstructions: Take notes, then answer.\ntools:\n  - note.take\n",
  "tools/note.ts": NOTE_TOOL,
});
const dataDir = tempDir("session-data");
afterAll(() => {
  removeDir(projectDir);
  removeDir(dataDir);
});

interface ModelCall {
  input: string;
  /** Assistant turns since the latest user message. */
  turn: number;
  /** The conversation before the latest user message (system prompt left out). */
  history: { role: string; content: string }[];
}

const answerTo = (k: number) => `answer ${k} (after ${k - 1} earlier answers)`;

describe("session order", () => {
  it(`processes ${MESSAGES} messages to one session in order, one run at a time, each seeing the previous answers`, async () => {
    const calls: ModelCall[] = [];
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const model = createScriptedClient("scripted", async (request: ModelRequest) => {
      const messages = request.messages;
      let user = messages.length - 1;
      while (user >= 0 && messages[user].role !== "user") user--;
      const input = messages[user].content;
      const turn = messages.slice(user + 1).filter((m) => m.role === "assistant").length;
      const history = messages.slice(1, user).map((m) => ({ role: m.role, content: m.content }));
      calls.push({ input, turn, history });
      if (input === "message 1" && turn === 0) await gate; // hold the first run until all messages are queued
      if (turn < TOOL_CALLS_PER_RUN) return { toolCalls: [{ name: "note.take", arguments: { text: `${input} #${turn}` } }] };
      const k = Number(input.split(" ")[1]);
      const earlierAnswers = history.filter((m) => m.role === "assistant").length;
      return `answer ${k} (after ${earlierAnswers} earlier answers)`;
    });

    const project = await loadProject(projectDir);
    const outpost = await startOutpost({ project, dataDir, pollMs: 50, modelFor: () => model });
    try {
      const first = await outpost.startRun({ agent: "chat", input: "message 1" });
      const runs = [first];
      for (let k = 2; k <= MESSAGES; k++)
        runs.push(await outpost.startRun({ agent: "chat", input: `message ${k}`, session_id: first.session_id }));
      expect(new Set(runs.map((r) => r.session_id)).size).toBe(1);

      // The first run is in its model call; the others are queued behind it and stay untouched.
      await until(
        async () => calls.length,
        (n) => n >= 1,
        10_000,
        "the first model call",
      );
      await sleep(200); // several scheduler polls
      for (const r of runs.slice(1)) {
        const record = await outpost.store.getRun(project.workspace, r.id);
        expect(record?.status).toBe("queued");
        expect(record?.leaseOwner).toBeNull();
        expect(record?.lastSeq).toBe(1); // run.started only
      }
      expect(calls.map((c) => c.input)).toEqual(["message 1"]);
      openGate();

      const done = await until(
        () => Promise.all(runs.map((r) => outpost.getRun(r.id))),
        (list) => list.every((r) => isTerminal(r.status)),
        20_000,
        "every run to end",
      );
      done.forEach((r, i) => {
        expect(r.status).toBe("completed");
        expect(r.output).toBe(answerTo(i + 1));
      });

      // One run at a time: the model calls come in whole runs, in message order.
      const perRun = TOOL_CALLS_PER_RUN + 1;
      expect(calls.map((c) => `${c.input} #${c.turn}`)).toEqual(
        runs.flatMap((_, i) => Array.from({ length: perRun }, (_, t) => `message ${i + 1} #${t}`)),
      );
      // Each model call saw exactly the conversation before its message, answers included.
      for (const c of calls) {
        const k = Number(c.input.split(" ")[1]);
        const expected = Array.from({ length: k - 1 }, (_, j) => [
          { role: "user", content: `message ${j + 1}` },
          { role: "assistant", content: answerTo(j + 1) },
        ]).flat();
        expect(c.history, `${c.input} #${c.turn}`).toEqual(expected);
      }

      // From the logs: run k+1 did nothing before run k ended, though it was queued long before.
      const logs: EventView[][] = [];
      for (const r of runs) logs.push(await outpost.getEvents(r.id));
      for (const [i, events] of logs.entries()) expect(logProblems(events, "run.completed"), runs[i].id).toEqual([]);
      for (let k = 0; k + 1 < runs.length; k++) {
        const ended = Date.parse(logs[k][logs[k].length - 1].at);
        const nextStarted = Date.parse(logs[k + 1][0].at); // run.started: when it was queued
        const nextWorked = Date.parse(logs[k + 1][1].at); // its first step
        expect(nextStarted).toBeLessThanOrEqual(ended);
        expect(nextWorked).toBeGreaterThanOrEqual(ended);
        expect(Date.parse(done[k + 1].created_at)).toBeLessThanOrEqual(Date.parse(done[0].completed_at as string));
      }

      // The side effects happened in the same order.
      const notesFile = path.join(dataDir, "notes.jsonl");
      const notes = readJsonLines<{ run: string; text: string }>(notesFile, readFileSync(notesFile, "utf8"));
      expect(notes.map((n) => n.text)).toEqual(
        runs.flatMap((_, i) => Array.from({ length: TOOL_CALLS_PER_RUN }, (_, t) => `message ${i + 1} #${t}`)),
      );

      // The session reads back as the conversation, in order.
      const session = await outpost.getSession(first.session_id);
      expect(session.messages.map((m) => `${m.role}: ${m.content}`)).toEqual(
        runs.flatMap((_, i) => [`user: message ${i + 1}`, `assistant: ${answerTo(i + 1)}`]),
      );
    } finally {
      openGate();
      await outpost.close();
    }
  }, 30_000);
});
