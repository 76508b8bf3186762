/** `outpost chat AGENT`: an interactive session, one run per line. */
import readline from "node:readline";
import type { Command } from "commander";
import { addConnectionOptions, type ConnectionOptions, withConnection } from "../connect.js";
import { followAskingApprovals, lineReader } from "../inline-approvals.js";
import { out } from "../output.js";
import { LivePrinter } from "../render.js";
import { whoAmI } from "../whoami.js";

interface ChatOptions extends ConnectionOptions {
  session?: string;
}

export function registerChat(program: Command): void {
  const cmd = program
    .command("chat")
    .description("talk with an agent: each line you type is a run in the same session")
    .argument("<agent>", "agent name")
    .option("--session <id>", "continue an existing session");
  addConnectionOptions(cmd).action(async (agent: string, opts: ChatOptions) => {
    await withConnection(opts, { workers: true }, async ({ api, flags }) => {
      await api.getAgent(agent); // fail fast, before the prompt, on an unknown agent
      const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: Boolean(process.stdin.isTTY) });
      const ask = lineReader(rl);
      let busy = false;
      rl.on("SIGINT", () => {
        rl.close();
        // Raw-mode input swallows Ctrl+C: hand it on so an in-flight run stops cleanly.
        if (busy) process.kill(process.pid, "SIGINT");
      });

      let session = opts.session;
      out.line(out.dim(`chatting with ${agent}${session ? ` in session ${session}` : ""} — /exit to quit`));
      try {
        for (;;) {
          const line = await ask(out.bold("you › "));
          if (line === undefined) break;
          const input = line.trim();
          if (!input) continue;
          if (input === "/exit" || input === "/quit") break;
          if (input === "/session") {
            out.line(session ?? "no session yet");
            continue;
          }
          busy = true;
          // Within a session, whoever holds the conversation now answers (an agent may have handed it off).
          const started = await api.startRun(session ? { input, session_id: session } : { agent, input });
          const printer = new LivePrinter({ flags });
          const run = await followAskingApprovals(api, started.id, printer, ask, whoAmI() ?? "chat");
          printer.summary(run);
          busy = false;
          session = run.session_id;
        }
      } finally {
        rl.close();
      }
      if (session) out.line(out.dim(`session ${session} — continue it with --session ${session}`));
    });
  });
}
