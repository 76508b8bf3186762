/**
 * Which queued runs a worker starts next, when several workspaces (tenants) share the workers: the
 * least busy workspace first, one run at a time, so a flood from one workspace cannot starve the
 * others; and within the caps a deployment sets — runs executing at once per workspace, and per agent
 * in a workspace. Pure: both stores read the candidates and what is running, and write the pick.
 */

export interface ClaimCaps {
  /** Runs one workspace may have executing at once, across every worker. */
  perWorkspace?: number;
  /** Runs of an agent (by name) one workspace may have executing at once. */
  perAgent?: Readonly<Record<string, number>>;
}

export interface ClaimCandidate {
  id: string;
  workspace: string;
  agent: string;
}

/** How many runs a workspace's agent has executing now. */
export interface RunningCount {
  workspace: string;
  agent: string;
  n: number;
}

export const hasCaps = (caps: ClaimCaps | undefined): caps is ClaimCaps =>
  caps !== undefined && (caps.perWorkspace !== undefined || Object.keys(caps.perAgent ?? {}).length > 0);

/** Where nothing more may start: whole workspaces at their cap, and agents at theirs (by workspace). */
export function saturated(running: RunningCount[], caps: ClaimCaps): { workspaces: Set<string>; agents: Map<string, string[]> } {
  const perWorkspace = new Map<string, number>();
  const agents = new Map<string, string[]>();
  for (const r of running) {
    perWorkspace.set(r.workspace, (perWorkspace.get(r.workspace) ?? 0) + r.n);
    const cap = caps.perAgent?.[r.agent];
    if (cap !== undefined && r.n >= cap) agents.set(r.workspace, [...(agents.get(r.workspace) ?? []), r.agent]);
  }
  const workspaces = new Set<string>();
  if (caps.perWorkspace !== undefined) for (const [w, n] of perWorkspace) if (n >= caps.perWorkspace) workspaces.add(w);
  return { workspaces, agents };
}

/**
 * Up to `limit` of `candidates` (each workspace's in id order: oldest first), taken one at a time from
 * the workspace with the fewest runs executing (counting those just taken), skipping what a cap forbids.
 */
export function pickFair(candidates: ClaimCandidate[], running: RunningCount[], caps: ClaimCaps, limit: number): ClaimCandidate[] {
  const load = new Map<string, number>();
  const agentLoad = new Map<string, number>();
  const key = (workspace: string, agent: string) => `${workspace}\u0000${agent}`;
  for (const r of running) {
    load.set(r.workspace, (load.get(r.workspace) ?? 0) + r.n);
    agentLoad.set(key(r.workspace, r.agent), (agentLoad.get(key(r.workspace, r.agent)) ?? 0) + r.n);
  }
  const queues = new Map<string, ClaimCandidate[]>();
  for (const c of [...candidates].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const q = queues.get(c.workspace);
    if (q) q.push(c);
    else queues.set(c.workspace, [c]);
  }
  const picked: ClaimCandidate[] = [];
  while (picked.length < limit && queues.size > 0) {
    let next: string | null = null;
    for (const w of queues.keys()) {
      if (next === null || (load.get(w) ?? 0) < (load.get(next) ?? 0)) next = w;
    }
    const workspace = next as string;
    const queue = queues.get(workspace) as ClaimCandidate[];
    if (caps.perWorkspace !== undefined && (load.get(workspace) ?? 0) >= caps.perWorkspace) {
      queues.delete(workspace);
      continue;
    }
    const at = queue.findIndex((c) => {
      const cap = caps.perAgent?.[c.agent];
      return cap === undefined || (agentLoad.get(key(workspace, c.agent)) ?? 0) < cap;
    });
    if (at < 0) {
      queues.delete(workspace);
      continue;
    }
    const [c] = queue.splice(at, 1);
    picked.push(c);
    load.set(workspace, (load.get(workspace) ?? 0) + 1);
    agentLoad.set(key(workspace, c.agent), (agentLoad.get(key(workspace, c.agent)) ?? 0) + 1);
    if (queue.length === 0) queues.delete(workspace);
  }
  return picked;
}
