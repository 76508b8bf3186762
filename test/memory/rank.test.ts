import { describe, expect, it } from "vitest";
import { recencyFactor, reciprocalRankFusion } from "../../src/memory/rank.js";

const list = (...labels: number[]) => labels.map((label) => ({ label }));
const DAY = 86_400_000;

describe("reciprocalRankFusion", () => {
  it("sums 1 / (60 + rank) over the lists", () => {
    const fused = reciprocalRankFusion([list(1, 2, 3), list(3, 4)]);
    expect(fused.map((h) => h.label)).toEqual([3, 1, 2, 4]);
    expect(fused[0].score).toBeCloseTo(1 / 63 + 1 / 61, 12);
    expect(fused[1].score).toBeCloseTo(1 / 61, 12);
    expect(fused[3].score).toBeCloseTo(1 / 62, 12);
  });

  it("puts what both lists found above what one list ranked first", () => {
    const fused = reciprocalRankFusion([list(10, 20, 30, 40, 50), list(99, 98, 97, 96, 50)]);
    expect(fused[0].label).toBe(50);
  });

  it("weights lists and takes another k", () => {
    const fused = reciprocalRankFusion([list(1), list(2)], { weights: [1, 2] });
    expect(fused.map((h) => h.label)).toEqual([2, 1]);
    expect(reciprocalRankFusion([list(1, 2)], { k: 0 })[1].score).toBeCloseTo(1 / 2, 12);
  });

  it("counts a label once per list", () => {
    const fused = reciprocalRankFusion([list(1, 1, 2)]);
    expect(fused).toEqual([
      { label: 1, score: 1 / 61 },
      { label: 2, score: 1 / 63 },
    ]);
  });

  it("breaks exact ties by the earlier list, then by label", () => {
    // Both first in a list: the full-text list, given first, wins.
    expect(reciprocalRankFusion([list(7), list(5)]).map((h) => h.label)).toEqual([7, 5]);
    // Same ranks, same first list: the smaller label, so the order never depends on insertion.
    expect(reciprocalRankFusion([list(7, 5), list(5, 7)]).map((h) => h.label)).toEqual([5, 7]);
  });

  it("handles no lists and empty lists", () => {
    expect(reciprocalRankFusion([])).toEqual([]);
    expect(reciprocalRankFusion([[], list(4)])).toEqual([{ label: 4, score: 1 / 61 }]);
  });
});

describe("recencyFactor", () => {
  it("is 1 for a new item, decays with a 30-day half-life towards 0.5", () => {
    expect(recencyFactor(0)).toBe(1);
    expect(recencyFactor(30 * DAY)).toBeCloseTo(0.75, 12);
    expect(recencyFactor(60 * DAY)).toBeCloseTo(0.625, 12);
    expect(recencyFactor(10 * 365 * DAY)).toBeCloseTo(0.5, 6);
    expect(recencyFactor(10 * 365 * DAY)).toBeGreaterThanOrEqual(0.5);
  });

  it("counts a future timestamp (clock skew) as new, and takes other settings", () => {
    expect(recencyFactor(-5_000)).toBe(1);
    expect(recencyFactor(Number.NaN)).toBe(1);
    expect(recencyFactor(DAY, { halfLifeMs: DAY, floor: 0 })).toBeCloseTo(0.5, 12);
    expect(recencyFactor(DAY, { halfLifeMs: DAY, floor: 1 })).toBe(1);
  });

  it("lets an old item both paths found tie a new one only one path found, but reorders near-equals", () => {
    const both = 2 / 61;
    const one = 1 / 61;
    expect(both * recencyFactor(5 * 365 * DAY)).toBeCloseTo(one * recencyFactor(0), 6);
    // Neighbouring ranks of one list: a month of age is enough to swap them.
    expect((1 / 61) * recencyFactor(30 * DAY)).toBeLessThan((1 / 62) * recencyFactor(0));
  });
});
