/**
 * Knowledge documents (Markdown or plain text) cut into chunks that are recalled like memory (kind `knowledge`).
 * Pure: the store (store.ts `ingest`) writes the chunks.
 *
 * A chunk is a run of whole paragraphs under one heading, at most `maxChars` long, with the heading path as its first
 * line ("Refunds › Damaged items"): a recalled chunk says where in the document it is, and full text finds the words
 * of its headings. A paragraph longer than a chunk is cut at sentence ends, and a sentence longer still at a space.
 * Fenced code blocks are never read as headings.
 */
export { formatOf } from "../definitions/knowledge.js";

export interface KnowledgeChunk {
  /** 0-based position in the document: with the document's name, the chunk's key. */
  index: number;
  /** The headings above it, outermost first, joined by " › "; null before the first heading or in plain text. */
  heading: string | null;
  text: string;
}

export interface ChunkOptions {
  /** `markdown` reads ATX headings (`#`…`######`); `text` only paragraphs. */
  format: "markdown" | "text";
  /** The longest chunk, in characters (default 1,200: about 300 tokens, a few paragraphs). */
  maxChars?: number;
}

export const DEFAULT_CHUNK_CHARS = 1_200;

export function chunkDocument(source: string, options: ChunkOptions): KnowledgeChunk[] {
  const maxChars = Math.max(200, options.maxChars ?? DEFAULT_CHUNK_CHARS);
  const chunks: KnowledgeChunk[] = [];
  for (const section of sections(source.replace(/\r\n?/g, "\n"), options.format)) {
    const prefix = section.heading ? `${section.heading}\n` : "";
    const room = Math.max(100, maxChars - prefix.length);
    let body = "";
    const flush = () => {
      if (body.trim() === "") return;
      chunks.push({ index: chunks.length, heading: section.heading, text: `${prefix}${body.trim()}` });
      body = "";
    };
    for (const paragraph of section.paragraphs.flatMap((p) => cut(p, room))) {
      if (body !== "" && body.length + 2 + paragraph.length > room) flush();
      body = body === "" ? paragraph : `${body}\n\n${paragraph}`;
    }
    flush();
  }
  return chunks;
}

interface Section {
  heading: string | null;
  paragraphs: string[];
}

function sections(source: string, format: ChunkOptions["format"]): Section[] {
  const out: Section[] = [];
  const path: string[] = [];
  let current: Section = { heading: null, paragraphs: [] };
  let paragraph: string[] = [];
  let fence: string | null = null;
  const endParagraph = () => {
    const text = paragraph.join("\n").trim();
    if (text !== "") current.paragraphs.push(text);
    paragraph = [];
  };
  for (const line of source.split("\n")) {
    const fenceMark = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (format === "markdown" && fenceMark && (fence === null || fenceMark.startsWith(fence))) {
      fence = fence === null ? fenceMark : null;
      paragraph.push(line);
      continue;
    }
    const heading = format === "markdown" && fence === null ? /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line) : null;
    if (heading) {
      endParagraph();
      out.push(current);
      const level = (heading[1] as string).length;
      path.length = Math.min(path.length, level - 1);
      path[level - 1] = (heading[2] as string).trim();
      current = { heading: path.filter(Boolean).join(" › ") || null, paragraphs: [] };
      continue;
    }
    if (line.trim() === "" && fence === null) endParagraph();
    else paragraph.push(line);
  }
  endParagraph();
  out.push(current);
  return out.filter((s) => s.paragraphs.length > 0);
}

/** A paragraph as pieces of at most `max` characters: at sentence ends where it can, else at a space, else anywhere. */
function cut(paragraph: string, max: number): string[] {
  if (paragraph.length <= max) return [paragraph];
  const pieces: string[] = [];
  let rest = paragraph;
  while (rest.length > max) {
    const window = rest.slice(0, max + 1);
    const sentence = Math.max(...[". ", "! ", "? ", ".\n", "\n"].map((end) => window.lastIndexOf(end)));
    const space = window.lastIndexOf(" ");
    const at = sentence > max / 2 ? sentence + 1 : space > max / 2 ? space : max;
    pieces.push(rest.slice(0, at).trim());
    rest = rest.slice(at).trim();
  }
  if (rest !== "") pieces.push(rest);
  return pieces;
}
