/**
 * Runs the real `outpost` CLI as a child process, the way a user does.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TEST_ADMIN_KEY } from "../helpers/auth.js";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = path.join(REPO, "bin/outpost.js");
export const SHOP = path.join(REPO, "test/fixtures/shop");

/** No real model credentials, no ambient server: the scripted model and the local store. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", ...extra };
  for (const name of [
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OUTPOST_LLM_BASE_URL",
    "OUTPOST_SERVER",
    "OUTPOST_API_KEY",
    "OUTPOST_DATABASE_URL",
  ]) {
    if (!(name in extra)) delete env[name];
  }
  // A server started by a test adopts this admin key, and the CLI sends it (unless a test names its own).
  if (!("OUTPOST_ADMIN_KEY" in extra)) env.OUTPOST_ADMIN_KEY = TEST_ADMIN_KEY;
  if (!("OUTPOST_API_KEY" in extra)) env.OUTPOST_API_KEY = TEST_ADMIN_KEY;
  return env;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function tempDir(prefix = "outpost-cli-"): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Runs `outpost <args>` to completion. */
export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? REPO,
      env: cliEnv(options.env),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

/** A long-running `outpost` process (e.g. `up`) whose output can be awaited. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: (() => void)[] = [];

  constructor(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? REPO,
      env: cliEnv(options.env),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const wake = () => {
      for (const w of this.waiters) w();
    };
    this.child.stdout?.on("data", (d) => {
      this.stdout += d;
      wake();
    });
    this.child.stderr?.on("data", (d) => {
      this.stderr += d;
      wake();
    });
    this.exited = new Promise((resolve) =>
      this.child.on("close", (code, signal) => {
        resolve({ code, signal });
        wake();
      }),
    );
  }

  /** Resolves with the first match of `pattern` in stdout; rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = this.stdout.match(pattern);
        if (match) {
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve(match);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          this.waiters = this.waiters.filter((w) => w !== check);
          reject(new Error(`process exited before printing ${pattern}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
        }
      };
      this.waiters.push(check);
      check();
    });
  }

  exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited;
  }

  /** Best-effort cleanup for afterAll. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

/** The words of a command line printed by the CLI (`outpost a b --c d`), without "outpost". */
export function argsOf(commandLine: string): string[] {
  // Hints say `npx outpost …` where outpost is not on the PATH (inside a checkout, as here).
  const words = commandLine.trim().replace(/^npx /, "").split(/\s+/);
  if (words[0] !== "outpost") throw new Error(`not an outpost command: ${commandLine}`);
  return words.slice(1).map((w) => w.replace(/^'(.*)'$/, "$1"));
}
