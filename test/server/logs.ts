import pino from "pino";

/** A pino logger that keeps its lines in memory (to assert what was logged, and keep test output quiet). */
export function collectLogs(): { logger: pino.Logger; lines: { level: number; [k: string]: unknown }[] } {
  const lines: { level: number; [k: string]: unknown }[] = [];
  const logger = pino(
    { level: "debug" },
    {
      write(line: string) {
        try {
          lines.push(JSON.parse(line));
        } catch {
          lines.push({ level: 30, msg: line });
        }
      },
    },
  );
  return { logger, lines };
}
