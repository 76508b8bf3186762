/**
 * The scheduler claims runnable runs from the store and hands each to the
 * executor, up to a concurrency limit. It is woken in-process when work
 * arrives and polls as a fallback (due timers, expired leases of dead workers).
 * Leases are renewed by heartbeat while runs execute.
 */
import type { ClaimCaps } from "../store/fair-claim.js";
import type { ClaimedRun, Store } from "../store/types.js";

export interface SchedulerOptions {
  owner: string;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  /** Claims per round trip. */
  batch: number;
  /** What a workspace, and an agent in it, may execute at once across every worker. */
  caps?: ClaimCaps;
}

export class Scheduler {
  private readonly active = new Map<string, Promise<void>>();
  private stopped = false;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private loop: Promise<void> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    private readonly options: SchedulerOptions,
    private readonly execute: (claimed: ClaimedRun) => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    this.loop = this.run();
    this.heartbeat = setInterval(
      () => {
        const ids = [...this.active.keys()];
        if (ids.length > 0) this.store.renewLeases(this.options.owner, ids, this.options.leaseMs).catch(this.onError);
      },
      Math.max(50, Math.floor(this.options.leaseMs / 3)),
    );
    this.heartbeat.unref();
  }

  /** Work may be available: claim soon. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  get running(): number {
    return this.active.size;
  }

  isExecuting(runId: string): boolean {
    return this.active.has(runId);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const free = this.options.concurrency - this.active.size;
      let claimed: ClaimedRun[] = [];
      if (free > 0) {
        this.woken = false;
        try {
          claimed = await this.store.claimRuns(
            this.options.owner,
            Math.min(free, this.options.batch),
            this.options.leaseMs,
            this.options.caps,
          );
        } catch (err) {
          this.onError(err);
        }
        for (const c of claimed) {
          const p = this.execute(c)
            .catch(this.onError)
            .finally(() => {
              // The same run may have been claimed again meanwhile (a lapsed lease): keep that execution tracked.
              if (this.active.get(c.run.id) === p) this.active.delete(c.run.id);
              this.wake();
            });
          this.active.set(c.run.id, p);
        }
      }
      if (this.stopped) break;
      const full = this.active.size >= this.options.concurrency;
      if (!full && claimed.length > 0 && claimed.length === Math.min(free, this.options.batch)) continue; // maybe more
      if (!full && this.woken) continue;
      this.woken = false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.pollMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = null;
    }
  }

  /** Stop claiming; wait for executing runs (which were asked to stop) to hand back. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.loop;
    await Promise.allSettled([...this.active.values()]);
  }
}
