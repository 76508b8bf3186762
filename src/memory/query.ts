/**
 * Query-side text processing for full-text recall: the words worth searching for, and safe search expressions for
 * SQLite FTS5 and PostgreSQL `to_tsquery`. Pure functions; the store runs the SQL.
 *
 * Stopwords are dropped from queries, not from documents: a common word matches most rows, and ranking every row
 * that contains "the" is what makes a raw query over a million items take seconds instead of milliseconds.
 */
import { createHash } from "node:crypto";

/** More terms than this add little to ranking but cost a posting-list scan each. */
export const MAX_QUERY_TERMS = 24;

/** Letters or digits, in any script: what both FTS5's unicode61 tokenizer and PostgreSQL's parser call a word. */
const WORD = /[\p{L}\p{N}]+/gu;
const COMBINING_MARKS = /\p{M}+/gu;

// The English list is the usual search-engine one (articles, pronouns, auxiliaries, prepositions, conjunctions and
// the commonest adverbs). The other languages keep only their most frequent function words, and leave out any that
// is also an English word a business cares about: German "die", "war", "hat", "bin"; French "car", "son", "ton",
// "plus", "mon", "est"; Spanish "sea", "solo", "mi", "hay"; Dutch "door", "van", "man", "ben", "bent", "dan".
const ENGLISH = `a about above after again against all am an and any are aren as at be because been before being below
between both but by can cannot could couldn did didn do does doesn doing don down during each few for from further had
hadn has hasn have haven having he her here hers herself him himself his how i if in into is isn it its itself just let
ll me more most mustn my myself no nor not now of off on once only or other ought our ours ourselves out over own re
same shan she should shouldn so some such than that the their theirs them themselves then there these they this those
through to too under until up ve very was wasn we were weren what when where which while who whom why will with won
would wouldn you your yours yourself yourselves also etc hi hello please thanks thank get got s t d m y`;
const GERMAN = `der das dem den des ein eine einer eines einem einen und oder aber ist sind bist wir ihr sie er es
ich du mit von zu im ins auf aus bei nach nicht kein keine auch noch wie wo wer was wenn dass für über unter um an am
vom zum zur sich so nur schon sehr`;
const FRENCH = `le la les un une des du de et ou mais sont je tu il elle nous vous ils elles ce cet cette ces
qui que quoi dont dans pour par sur avec sans au aux ne pas en y se sa ses ma mes ta tes leur leurs notre votre été
être avoir ont`;
const SPANISH = `el los las una unos unas y o pero es soy eres está están estoy del al en con sin por para que
qué quien como cuando donde yo tú él ella nosotros ellos ellas su sus mis tu tus lo le les se muy más ya ser fue`;
const DUTCH = `de het een en of maar is zijn wij jij hij zij ze ik je u met voor op te aan bij uit over naar niet
geen ook nog wel dat dit deze wat wie waar hoe als er om zo`;

/** A word folded as the tokenizers fold it: lowercase, accents removed ("été" → "ete"). */
export function foldWord(word: string): string {
  return word.normalize("NFKD").replace(COMBINING_MARKS, "").toLowerCase();
}

export const STOPWORDS: ReadonlySet<string> = new Set(
  [ENGLISH, GERMAN, FRENCH, SPANISH, DUTCH].flatMap((list) => list.split(/\s+/).filter(Boolean).map(foldWord)),
);

/** The words of a text, lowercased, in order (with repeats and stopwords). */
export function words(text: string): string[] {
  // NFC first, so a letter written as base + combining accent stays one word.
  return text.normalize("NFC").toLowerCase().match(WORD) ?? [];
}

/** The words of a query worth searching for: lowercased, stopwords and single letters dropped, each once, at most 24. */
export function queryTerms(text: string): string[] {
  const seen = new Set<string>();
  const terms: string[] = [];
  for (const word of words(text)) {
    const folded = foldWord(word);
    // A lone letter is noise; a lone digit may be part of an identifier ("plan 3").
    if (STOPWORDS.has(folded) || (folded.length === 1 && !/\p{N}/u.test(folded)) || seen.has(folded)) continue;
    seen.add(folded);
    terms.push(word);
    if (terms.length === MAX_QUERY_TERMS) break;
  }
  return terms;
}

/**
 * An FTS5 MATCH expression: any of the terms in column `body`, and, for each inner list of `filters.all`, one of its
 * tokens in column `meta`. Every term is a quoted string, so nothing in user text (quotes, `NEAR`, `*`, `^`, `col:`,
 * `AND`/`OR`/`NOT`) is read as syntax. Null when no term has a word in it: match nothing rather than everything.
 */
export function fts5Match(terms: string[], filters: { all?: string[][] } = {}): string | null {
  const phrases = terms.filter((t) => /[\p{L}\p{N}]/u.test(t)).map(quote);
  if (phrases.length === 0) return null;
  const parts = [`body : (${phrases.join(" OR ")})`];
  for (const anyOf of filters.all ?? []) {
    const tokens = anyOf.filter((t) => /[\p{L}\p{N}]/u.test(t)).map(quote);
    // An empty "one of" can never be satisfied.
    if (tokens.length === 0) return null;
    parts.push(`meta : (${tokens.join(" OR ")})`);
  }
  return parts.join(" AND ");
}

/** An FTS5 string: double quotes doubled, so the whole term is one phrase and never syntax. */
function quote(term: string): string {
  return `"${term.replaceAll('"', '""')}"`;
}

/**
 * A `to_tsquery('english', …)` expression matching any of the terms. Only the words of each term are kept, each
 * single-quoted, so no operator (`&`, `|`, `!`, `<->`, `:*`), quote or backslash from user text reaches the parser.
 * Null when there is no word at all.
 */
export function pgTsQuery(terms: string[]): string | null {
  const lexemes = [...new Set(terms.flatMap((t) => words(t)))];
  if (lexemes.length === 0) return null;
  return lexemes.map((w) => `'${w}'`).join(" | ");
}

/**
 * A filter token for column `meta`: the kind (w workspace, c scope, s subject, k item kind) and 48 bits of
 * sha256 over the parts: metaToken("s", "acme", "customer:1042") is "s" and 15 digits. It is tenant-specific
 * (the workspace is one of the parts) and no user text can produce it in `body` by accident. The bits are written in
 * decimal (15 digits), not hex: a token that ends in a digit passes every tokenizer and stemmer unchanged, while a hex
 * tail ending in "e" or "ed" would be stemmed by porter.
 */
export function metaToken(kind: "w" | "c" | "s" | "k", ...parts: string[]): string {
  const digest = createHash("sha256").update(parts.join("\u0000")).digest();
  return `${kind}${digest.readUIntBE(0, 6).toString().padStart(15, "0")}`;
}

/** The text FTS5 indexes for an item: its text, its tags and the words of its subject ("customer:1042" → "customer 1042"). */
export function ftsBody(text: string, tags: string[], subject: string | null): string {
  const extra = [...tags, subject ?? ""]
    .join(" ")
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
  return extra ? `${text}\n${extra}` : text;
}
