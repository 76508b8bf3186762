import { err } from "./output.js";

/** Whether the process should stay alive after its command returns (a server does). */
let serving = false;

export function markServing(): void {
  serving = true;
}

export function isServing(): boolean {
  return serving;
}

/**
 * A serving command's end: on SIGINT or SIGTERM, say so (`announce`), run `stop` once and exit 0, or 1 with what
 * went wrong (`failure` names the step); a second signal forces the exit. Marks the process as serving.
 */
export function stopOnSignals(announce: (signal: string) => string, failure: string, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = async (signal: string) => {
    if (stopping) {
      err.line("forced exit");
      process.exit(1);
    }
    stopping = true;
    err.line(announce(signal));
    try {
      await stop();
      err.line("stopped");
      process.exit(0);
    } catch (e) {
      err.line(`error while ${failure}: ${(e as Error).message}`);
      process.exit(1);
    }
  };
  markServing();
  process.on("SIGINT", () => void onSignal("SIGINT"));
  process.on("SIGTERM", () => void onSignal("SIGTERM"));
}
