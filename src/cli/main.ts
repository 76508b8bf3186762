/**
 * The `outpost` command line. Each command lives in ./commands and loads the
 * heavy parts (runtime, server, store) only when it runs, so `outpost --help`
 * stays fast.
 */
import { Command, CommanderError } from "commander";
import { registerApprovals } from "./commands/approvals.js";
import { registerAudit } from "./commands/audit.js";
import { registerBudgets } from "./commands/budgets.js";
import { registerChat } from "./commands/chat.js";
import { registerContext } from "./commands/context.js";
import { registerCosts } from "./commands/costs.js";
import { registerDemo } from "./commands/demo.js";
import { registerEval } from "./commands/eval.js";
import { registerInit } from "./commands/init.js";
import { registerKeys } from "./commands/keys.js";
import { registerKnowledge } from "./commands/knowledge.js";
import { registerMemory } from "./commands/memory.js";
import { registerPolicy } from "./commands/policy.js";
import { registerReplay } from "./commands/replay.js";
import { registerRun } from "./commands/run.js";
import { registerRuns } from "./commands/runs.js";
import { registerSecrets } from "./commands/secrets.js";
import { registerTriggers } from "./commands/triggers.js";
import { registerUp } from "./commands/up.js";
import { registerValidate } from "./commands/validate.js";
import { registerWorker } from "./commands/worker.js";
import { registerWorkflows } from "./commands/workflows.js";
import { EXIT_OK, EXIT_USAGE, reportError } from "./errors.js";
import { isServing } from "./lifecycle.js";
import { cliVersion } from "./version.js";

export function buildProgram(): Command {
  const program = new Command("outpost")
    .description("Outpost: run and govern teams of AI agents on your own infrastructure")
    .version(cliVersion(), "-v, --version")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .addHelpText(
      "after",
      `
Runs, approvals and chat work against a server (--server URL or $OUTPOST_SERVER,
with $OUTPOST_API_KEY as bearer token) or, without one, on the local store
(--project DIR, --data DIR).

Get started:
  $ outpost demo --project examples/acme       (in this repository: three teams at work)
  $ outpost init my-agents && cd my-agents
  $ outpost validate
  $ outpost up`,
    );

  registerInit(program);
  registerValidate(program);
  registerUp(program);
  registerWorker(program);
  registerRun(program);
  registerChat(program);
  registerRuns(program);
  registerApprovals(program);
  registerKeys(program);
  registerSecrets(program);
  registerMemory(program);
  registerKnowledge(program);
  registerContext(program);
  registerTriggers(program);
  registerWorkflows(program);
  registerBudgets(program);
  registerCosts(program);
  registerAudit(program);
  registerDemo(program);
  registerEval(program);
  registerPolicy(program);
  registerReplay(program);

  // Usage mistakes exit 2, and so does every subcommand's.
  const inherit = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub.exitOverride();
      sub.showHelpAfterError("(run with --help for usage)");
      inherit(sub);
    }
  };
  inherit(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are not errors; commander already printed the message.
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return EXIT_OK;
      return EXIT_USAGE;
    }
    return reportError(e);
  }
}

// `outpost runs ls | head`: a reader that goes away is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const code = await main(process.argv);
process.exitCode = code;
// `outpost up` lives until a signal; every other command ends here, even if
// some library left a handle open.
if (!isServing()) process.exit(code);
