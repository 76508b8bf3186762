import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fts5Match, ftsBody, MAX_QUERY_TERMS, metaToken, pgTsQuery, queryTerms } from "../../src/memory/query.js";
import { createTestDatabase } from "../pg/database.js";

describe("queryTerms", () => {
  it("keeps the content words, lowercased, each once, in order", () => {
    expect(queryTerms("What did Maria Lopez say about the REFUND for order 105708? The refund!")).toEqual([
      "maria",
      "lopez",
      "say",
      "refund",
      "order",
      "105708",
    ]);
  });

  it("drops English stopwords and the commonest German, French, Spanish and Dutch ones", () => {
    expect(queryTerms("the and of to in is it")).toEqual([]);
    expect(queryTerms("die Rechnung für den Kunden")).toEqual(["die", "rechnung", "kunden"]);
    expect(queryTerms("le colis est arrivé avec une rayure")).toEqual(["colis", "est", "arrivé", "rayure"]);
    expect(queryTerms("el pedido llegó con la pantalla rota")).toEqual(["pedido", "llegó", "pantalla", "rota"]);
    expect(queryTerms("de factuur van het bestelling is niet betaald")).toEqual(["factuur", "van", "bestelling", "betaald"]);
  });

  it("keeps English business words that are stopwords elsewhere", () => {
    expect(queryTerms("the delivery van, the back door, a 2 ton pallet, storage bin")).toEqual([
      "delivery",
      "van",
      "back",
      "door",
      "2",
      "ton",
      "pallet",
      "storage",
      "bin",
    ]);
  });

  it("drops lone letters but keeps lone digits, and folds accents to find repeats", () => {
    expect(queryTerms("plan B or plan 3")).toEqual(["plan", "3"]);
    expect(queryTerms("Café cafe CAFÉ")).toEqual(["café"]);
  });

  it("is bounded", () => {
    const many = Array.from({ length: 100 }, (_, i) => `word${i}`).join(" ");
    expect(queryTerms(many)).toHaveLength(MAX_QUERY_TERMS);
    expect(queryTerms(many)[0]).toBe("word0");
  });
});

describe("metaToken", () => {
  it("is the kind and 15 digits, different per workspace and per value", () => {
    const t = metaToken("s", "acme", "customer:1042");
    expect(t).toMatch(/^s\d{15}$/);
    expect(metaToken("s", "acme", "customer:1042")).toBe(t);
    expect(metaToken("s", "globex", "customer:1042")).not.toBe(t);
    expect(metaToken("s", "acme", "customer:1043")).not.toBe(t);
    // The separator keeps ("ab", "c") and ("a", "bc") apart.
    expect(metaToken("c", "ab", "c")).not.toBe(metaToken("c", "a", "bc"));
  });
});

describe("ftsBody", () => {
  it("adds the tags and the words of the subject", () => {
    expect(ftsBody("Prefers email", ["vip", "contact-preference"], "customer:1042")).toBe(
      "Prefers email\nvip contact preference customer 1042",
    );
    expect(ftsBody("Prefers email", [], null)).toBe("Prefers email");
  });
});

describe("fts5Match against a real FTS5 table", () => {
  const db = new Database(":memory:");
  db.exec(
    "CREATE VIRTUAL TABLE memory_fts USING fts5(body, meta, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2')",
  );
  const acme = (kind: "c" | "s", value: string) => metaToken(kind, "acme", value);
  const rows: [number, string, string[], string | null, string][] = [
    [1, "Refunds for Maria Lopez go to her original Visa card", ["billing"], "customer:1042", "team:finance"],
    [2, "Maria Lopez prefers to be contacted by email", [], "customer:1042", "team:support"],
    [3, "Order 105708 arrived with the monitor's screen cracked", ["damage"], "order:105708", "team:support"],
    [4, 'Quote "NEAR" and col:value * ^ are just words here', [], null, "team:support"],
    [5, "Le colis est arrivé très abîmé", [], "customer:77", "team:support"],
  ];
  const insert = db.prepare("INSERT INTO memory_fts (rowid, body, meta) VALUES (?, ?, ?)");
  for (const [num, text, tags, subject, scope] of rows) {
    const meta = [metaToken("w", "acme"), acme("c", scope), ...(subject ? [acme("s", subject)] : [])].join(" ");
    insert.run(num, ftsBody(text, tags, subject), meta);
  }
  // A second workspace with the very same text: its rows must never come back for acme's tokens.
  insert.run(99, rows[0][1], [metaToken("w", "globex"), metaToken("c", "globex", "team:finance")].join(" "));
  const search = (text: string, all?: string[][]) => {
    const match = fts5Match(queryTerms(text), { all });
    if (match === null) return null;
    return (
      db.prepare("SELECT rowid AS num FROM memory_fts WHERE memory_fts MATCH ? ORDER BY bm25(memory_fts, 1.0, 0.0)").all(match) as {
        num: number;
      }[]
    ).map((r) => r.num);
  };
  const everyScope = [[...new Set(rows.map((r) => acme("c", r[4])))]];

  it("finds any of the terms, stemmed, best match first", () => {
    expect(search("refunded to the visa card", everyScope)).toEqual([1]);
    expect(search("maria lopez", everyScope)?.sort()).toEqual([1, 2]);
    expect(search("cracked monitor screens", everyScope)).toEqual([3]);
  });

  it("filters by meta tokens: one of each inner list, every list", () => {
    expect(search("maria lopez", [[acme("c", "team:finance")]])).toEqual([1]);
    expect(search("maria lopez", [[acme("c", "team:finance"), acme("c", "team:support")], [acme("s", "customer:1042")]])?.sort()).toEqual([
      1, 2,
    ]);
    expect(search("maria lopez", [[acme("c", "team:support")], [acme("s", "customer:1042")]])).toEqual([2]);
    expect(search("maria lopez", [[acme("c", "team:support")], [acme("s", "customer:9999")]])).toEqual([]);
    expect(search("refunds visa", [[metaToken("c", "globex", "team:finance")]])).toEqual([99]);
  });

  it("never matches a meta token from body text, nor body words in meta", () => {
    const token = acme("s", "customer:1042");
    expect(search(token)).toEqual([]);
    expect(fts5Match(["maria"], { all: [["maria"]] })).toBe('body : ("maria") AND meta : ("maria")');
    expect(search("maria", [["maria"]])).toEqual([]);
  });

  it("treats FTS5 syntax in user text as words", () => {
    for (const hostile of [
      '"unbalanced quote',
      "NEAR(refund visa, 2)",
      "refund*",
      "^maria",
      "meta:anything",
      "body:maria OR 1=1",
      "{body meta}: maria",
      "maria AND NOT lopez",
      "col:value",
      "-- ; DROP TABLE memory_fts",
      "''",
    ]) {
      expect(() => search(hostile, everyScope), hostile).not.toThrow();
    }
    // "NEAR", "col" and "value" are plain words of row 4.
    expect(search("NEAR col:value", everyScope)).toEqual([4]);
    // Quotes inside a term are doubled, never closing the string.
    expect(fts5Match(['ma"ria'])).toBe('body : ("ma""ria")');
    expect(() =>
      db.prepare("SELECT rowid FROM memory_fts WHERE memory_fts MATCH ?").all(fts5Match(['ma"ria', "x) OR (meta : *"]) as string),
    ).not.toThrow();
  });

  it("matches accented text either way", () => {
    expect(search("abime", everyScope)).toEqual([5]);
    expect(search("arrivé très abîmé", [[acme("s", "customer:77")]])).toEqual([5]);
  });

  it("is null for a query of stopwords or punctuation, and for an empty filter list", () => {
    expect(fts5Match(queryTerms("the and of it"))).toBeNull();
    expect(fts5Match(["!!!", "  "])).toBeNull();
    expect(fts5Match(["refund"], { all: [[]] })).toBeNull();
    expect(fts5Match(["refund"], { all: [] })).toBe('body : ("refund")');
  });

  it("follows deletes of the contentless table", () => {
    db.prepare("DELETE FROM memory_fts WHERE rowid = ?").run(2);
    expect(search("maria lopez", everyScope)).toEqual([1]);
  });
});

describe("pgTsQuery", () => {
  it("ORs the words of the terms, single-quoted, with nothing else of the input", () => {
    expect(pgTsQuery(["refund", "visa"])).toBe("'refund' | 'visa'");
    expect(pgTsQuery(["o'brien", "a&b", "x:*", "!no", "<->", "back\\slash"])).toBe(
      "'o' | 'brien' | 'a' | 'b' | 'x' | 'no' | 'back' | 'slash'",
    );
    expect(pgTsQuery([])).toBeNull();
    expect(pgTsQuery(["&|!", "  "])).toBeNull();
  });
});

const database = await createTestDatabase("outpost_query");
afterAll(() => database.drop());

describe.skipIf(!database.reachable)("pgTsQuery against PostgreSQL", () => {
  let client: pg.Client;
  beforeAll(async () => {
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.query(
      "CREATE TABLE items (num int PRIMARY KEY, text text, tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED)",
    );
    await client.query(
      "INSERT INTO items (num, text) VALUES (1, 'Refunds for Maria Lopez go to her Visa card'), (2, 'Order 105708 arrived cracked'), (3, 'O''Brien asked about shipping')",
    );
  });
  afterAll(() => client?.end());

  const search = async (text: string) => {
    const q = pgTsQuery(queryTerms(text));
    if (q === null) return null;
    const { rows } = await client.query(
      "SELECT num FROM items WHERE tsv @@ to_tsquery('english', $1) ORDER BY ts_rank_cd(tsv, to_tsquery('english', $1)) DESC, num",
      [q],
    );
    return rows.map((r) => r.num);
  };

  it("finds any of the terms, stemmed", async () => {
    expect(await search("refunded to visa")).toEqual([1]);
    expect(await search("cracked order 105708")).toEqual([2]);
    expect(await search("o'brien shipped")).toEqual([3]);
  });

  it("survives tsquery syntax in user text", async () => {
    for (const hostile of ["a & b | !c", "refund:*", "'; DROP TABLE items; --", "\\'", "<-> <2>", "(((", "visa:A"]) {
      await expect(search(hostile), hostile).resolves.not.toBeUndefined();
    }
    expect(await search("refund:* & !visa")).toEqual([1]);
  });
});
