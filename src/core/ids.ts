import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"; // Crockford base32, lower case

let lastTime = -1;
let lastRand: number[] = [];

/** Time-sortable ids (ULID-like): 10 chars of milliseconds + 12 random chars, with a type prefix.
 * Sorting ids sorts by creation time, which gives stable cursors for paging. Within one process ids
 * are strictly increasing even in the same millisecond (the random part counts up, as monotonic
 * ULIDs do), so a parent created before its child also sorts before it. */
export function newId(prefix: string, now = Date.now()): string {
  let t = now;
  if (t <= lastTime) {
    t = lastTime;
    let i = lastRand.length - 1;
    while (i >= 0 && lastRand[i] === 31) lastRand[i--] = 0;
    if (i >= 0) lastRand[i]++;
    else t = ++lastTime; // 32^12 ids in one millisecond: move on to the next
  } else {
    const bytes = randomBytes(12);
    lastRand = Array.from(bytes, (b) => b % 32);
    lastRand[0] &= 15; // headroom for counting up within the millisecond
  }
  lastTime = t;
  let time = "";
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  let rand = "";
  for (const d of lastRand) rand += ALPHABET[d];
  return `${prefix}_${time}${rand}`;
}
