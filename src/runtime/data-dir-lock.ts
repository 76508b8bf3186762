/**
 * One embedded Outpost per data folder: a second process (or a second Outpost in this process) would
 * resume the first one's runs. The lock file names the holder's pid and, once it serves, its URL.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { OutpostError } from "../core/errors.js";

export interface DataDirLock {
  release(): void;
  /** Record where this process serves its API, so a second one can point people there. */
  advertise(url: string): void;
}

/** Data folders locked by this process (a second Outpost in the same process is refused too). */
const lockedHere = new Set<string>();

export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, "outpost.lock");
  if (lockedHere.has(file)) {
    throw new OutpostError("conflict", `the data folder ${dataDir} is already in use by an Outpost in this process`, "close it first");
  }
  const read = (): { pid: number; url?: string } => {
    try {
      return JSON.parse(readFileSync(file, "utf8"));
    } catch {
      return { pid: 0 };
    }
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, JSON.stringify({ pid: process.pid }));
      closeSync(fd);
      lockedHere.add(file);
      return {
        release: () => {
          if (!lockedHere.delete(file)) return;
          if (read().pid === process.pid) rmSync(file, { force: true });
        },
        advertise: (url) => writeFileSync(file, JSON.stringify({ pid: process.pid, url })),
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = read();
      if (holder.pid && holder.pid !== process.pid && processAlive(holder.pid)) {
        throw new OutpostError(
          "conflict",
          `the data folder ${dataDir} is in use by another Outpost (pid ${holder.pid})`,
          holder.url
            ? `talk to it with --server ${holder.url}, stop it first, or use another --data folder`
            : "stop it first, or use another --data folder",
        );
      }
      rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  throw new OutpostError("conflict", `cannot lock the data folder ${dataDir}`, "remove outpost.lock there if no Outpost is running");
}

/** Whether a process with this id exists (EPERM: it does, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
