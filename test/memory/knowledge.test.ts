import { describe, expect, it } from "vitest";
import { chunkDocument, formatOf } from "../../src/memory/knowledge.js";

describe("chunkDocument", () => {
  it("cuts Markdown at headings, with the heading path as each chunk's first line", () => {
    const chunks = chunkDocument(
      [
        "Intro line.",
        "# Shipping",
        "We ship daily.",
        "## Express",
        "Next day before 14:00.",
        "### Remote areas",
        "Two days.",
        "## Standard",
        "Three to five days.",
      ].join("\n\n"),
      { format: "markdown" },
    );
    expect(chunks.map((c) => [c.heading, c.text])).toEqual([
      [null, "Intro line."],
      ["Shipping", "Shipping\nWe ship daily."],
      ["Shipping › Express", "Shipping › Express\nNext day before 14:00."],
      ["Shipping › Express › Remote areas", "Shipping › Express › Remote areas\nTwo days."],
      ["Shipping › Standard", "Shipping › Standard\nThree to five days."],
    ]);
    expect(chunks.map((c) => c.index)).toEqual([0, 1, 2, 3, 4]);
  });

  it("never reads a heading inside a fenced code block, and keeps the block whole", () => {
    const chunks = chunkDocument("# Setup\n\n```sh\n# not a heading\n\nnpm start\n```\n\nDone.", { format: "markdown" });
    expect(chunks).toHaveLength(1);
    expect(chunks[0]?.text).toBe("Setup\n```sh\n# not a heading\n\nnpm start\n```\n\nDone.");
  });

  it("packs paragraphs up to the size, and cuts a long paragraph at sentence ends", () => {
    const sentence = (i: number) => `Sentence number ${i} says something about refunds.`;
    const long = Array.from({ length: 40 }, (_, i) => sentence(i)).join(" ");
    const chunks = chunkDocument(`Short one.\n\nShort two.\n\n${long}`, { format: "text", maxChars: 400 });
    expect(chunks[0]?.text.startsWith("Short one.\n\nShort two.")).toBe(true);
    for (const c of chunks) expect(c.text.length).toBeLessThanOrEqual(400);
    for (const c of chunks.slice(1)) expect(c.text).toMatch(/^Sentence number \d+ .*refunds\.$/s);
    expect(chunks.map((c) => c.text).join(" ")).toContain(sentence(39));
    expect(chunks.flatMap((c) => c.text.match(/Sentence number \d+/g) ?? [])).toHaveLength(40);
  });

  it("reads plain text as paragraphs only, and has nothing to say about blank input", () => {
    expect(chunkDocument("# not a heading here\n\nsecond", { format: "text" }).map((c) => c.heading)).toEqual([null]);
    expect(chunkDocument(" \r\n\r\n ", { format: "markdown" })).toEqual([]);
  });

  it("knows Markdown and text files by name", () => {
    expect([formatOf("a.md"), formatOf("B.MARKDOWN"), formatOf("c.txt"), formatOf("d.pdf")]).toEqual([
      "markdown",
      "markdown",
      "text",
      null,
    ]);
  });
});
