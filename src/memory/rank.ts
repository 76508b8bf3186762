/**
 * Ranking: reciprocal rank fusion of the full-text and vector result lists, and a recency factor. Pure.
 *
 * RRF (Cormack, Clarke & Büttcher, 2009) fuses by rank, not score: bm25 and cosine similarity live on scales that
 * cannot be compared, while "third in one list, first in the other" can.
 */

export interface FusedHit {
  label: number;
  score: number;
}

/** The usual constant: large enough that the first few ranks of a list do not drown out agreement between lists. */
const RRF_K = 60;

/**
 * Σ weight / (k + rank) over the lists a label appears in (rank from 1; a repeat within a list counts once), best
 * first. Ties go to the label with the better best rank, then to the earlier list, then to the smaller label.
 */
export function reciprocalRankFusion(lists: { label: number }[][], options: { k?: number; weights?: number[] } = {}): FusedHit[] {
  const k = options.k ?? RRF_K;
  const fused = new Map<number, { score: number; bestRank: number; firstList: number }>();
  lists.forEach((list, li) => {
    const weight = options.weights?.[li] ?? 1;
    const seen = new Set<number>();
    list.forEach(({ label }, i) => {
      if (seen.has(label)) return;
      seen.add(label);
      const rank = i + 1;
      const entry = fused.get(label);
      if (entry) {
        entry.score += weight / (k + rank);
        entry.bestRank = Math.min(entry.bestRank, rank);
      } else {
        fused.set(label, { score: weight / (k + rank), bestRank: rank, firstList: li });
      }
    });
  });
  return [...fused]
    .sort(([la, a], [lb, b]) => b.score - a.score || a.bestRank - b.bestRank || a.firstList - b.firstList || la - lb)
    .map(([label, { score }]) => ({ label, score }));
}

export interface RecencyOptions {
  /** Age at which the decaying part has halved. Default 30 days: tickets, orders and cases live for weeks. */
  halfLifeMs?: number;
  /** What an arbitrarily old item keeps. Default 0.5. */
  floor?: number;
}

const DAY = 86_400_000;

/**
 * A multiplier in [floor, 1] for an item's fused score: floor + (1 − floor) · 2^(−age / halfLife).
 *
 * Why bounded at 0.5: with RRF at k = 60, an item both paths found scores about twice one that only one path found
 * (2/61 against 1/61), while neighbouring ranks within a list differ by under 2%. So recency reorders items of
 * similar relevance (the newer of two notes on the same topic comes first), but an old fact both paths agree on
 * still ties with a brand-new one that only one path found: memory of a customer's address must not fade just
 * because it is old. Future timestamps (clock skew) count as new.
 */
export function recencyFactor(ageMs: number, options: RecencyOptions = {}): number {
  const halfLife = options.halfLifeMs ?? 30 * DAY;
  const floor = options.floor ?? 0.5;
  if (!(ageMs > 0)) return 1;
  return floor + (1 - floor) * 0.5 ** (ageMs / halfLife);
}
