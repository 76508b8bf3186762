/**
 * `outpost knowledge add | ls | rm`: documents (Markdown, text) kept as knowledge chunks in a scope, recalled by
 * agents like memory. On the local store (--project/--data) or a server (--server), through the same MemoryApi.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import type { IngestView } from "../../core/memory-api.js";
import { formatOf } from "../../memory/knowledge.js";
import { addConnectionOptions, type ConnectionOptions } from "../connect.js";
import { UsageError } from "../errors.js";
import { command } from "../hints.js";
import { age, out, table } from "../output.js";
import { withMemory } from "./memory.js";

type Json = { json?: boolean };
const collect = (value: string, previous: string[]) => [...previous, value];
const CLASSES = ["public", "internal", "confidential", "restricted"] as const;

export function registerKnowledge(program: Command): void {
  const knowledge = program
    .command("knowledge")
    .description("documents agents recall like memory: add Markdown or text files to a scope, list, remove");

  const add = knowledge
    .command("add")
    .description("add or update documents: each is cut into chunks under its headings (the same name again replaces it)")
    .argument("<files...>", "Markdown (.md) or text (.txt) files, or folders holding them")
    .requiredOption("--scope <scope>", "where agents find it: workspace, team/NAME, agent/NAME")
    .option("--tag <tag>", "a tag on every chunk (repeat for more)", collect, [])
    .option("--classification <class>", "public, internal (default), confidential or restricted")
    .option("--subject <subject>", "what the document is about, if one thing (customer:1042): erasing it removes the chunks")
    .option("--name <name>", "its name in the scope (one file only; default the file's name)")
    .option("--json", "print JSON");
  addConnectionOptions(add).action(
    async (
      files: string[],
      opts: ConnectionOptions & Json & { scope: string; tag: string[]; classification?: string; subject?: string; name?: string },
    ) => {
      if (opts.classification !== undefined && !(CLASSES as readonly string[]).includes(opts.classification)) {
        throw new UsageError(
          `--classification ${opts.classification}: there is no such classification`,
          `use one of ${CLASSES.join(", ")}`,
        );
      }
      const documents = await readDocuments(files);
      if (opts.name !== undefined && documents.length !== 1) {
        throw new UsageError(
          `--name names one document, but ${documents.length} files were given`,
          "drop --name, or add one file at a time",
        );
      }
      await withMemory(opts, async ({ api, flags }) => {
        const reports: IngestView[] = [];
        for (const doc of documents) {
          reports.push(
            await api.ingestKnowledge({
              name: opts.name ?? doc.name,
              scope: opts.scope,
              text: doc.text,
              format: doc.format,
              ...(opts.tag.length > 0 ? { tags: opts.tag } : {}),
              ...(opts.classification ? { classification: opts.classification as (typeof CLASSES)[number] } : {}),
              ...(opts.subject ? { subject: opts.subject } : {}),
            }),
          );
        }
        if (opts.json) return out.line(JSON.stringify(reports, null, 2));
        for (const r of reports) {
          const changes = [
            `${r.added} new`,
            `${r.updated} updated`,
            `${r.unchanged} unchanged`,
            ...(r.removed > 0 ? [`${r.removed} removed`] : []),
          ];
          out.line(`${r.name} → ${r.scope}: ${r.chunks} ${r.chunks === 1 ? "chunk" : "chunks"} (${changes.join(", ")})`);
        }
        const scope = reports[0]?.scope ?? opts.scope;
        out.line(
          out.dim(`agents that may read ${scope} now recall it; try ${command(["memory", "search", "QUERY", "--scope", scope], flags)}`),
        );
      });
    },
  );

  const ls = knowledge
    .command("ls")
    .alias("list")
    .description("the documents kept as knowledge, by scope")
    .option("--scope <scope>", "only this scope")
    .option("--json", "print JSON");
  addConnectionOptions(ls).action(async (opts: ConnectionOptions & Json & { scope?: string }) => {
    await withMemory(opts, async ({ api, flags }) => {
      const { documents } = await api.listKnowledge(opts.scope !== undefined ? { scope: opts.scope } : {});
      if (opts.json) return out.line(JSON.stringify(documents, null, 2));
      if (documents.length === 0) {
        return out.line(out.dim(`no knowledge documents yet (${command(["knowledge", "add", "FILE.md", "--scope", "SCOPE"], flags)})`));
      }
      out.line(
        table(
          ["SCOPE", "NAME", "CHUNKS", "CLASS", "SUBJECT", "UPDATED"],
          documents.map((d) => [d.scope, d.name, String(d.chunks), d.classification, d.subject ?? "-", age(d.updated_at)]),
        ),
      );
    });
  });

  const rm = knowledge
    .command("rm")
    .alias("remove")
    .description("remove a document's chunks (and their history) from a scope")
    .argument("<name>", "the document's name, as knowledge ls shows it")
    .requiredOption("--scope <scope>", "the scope it is in");
  addConnectionOptions(rm).action(async (name: string, opts: ConnectionOptions & { scope: string }) => {
    await withMemory(opts, async ({ api }) => {
      const r = await api.removeKnowledge(opts.scope, name);
      out.line(
        `removed ${r.name} from ${r.scope}: ${r.chunks} ${r.chunks === 1 ? "chunk" : "chunks"} (recorded in the audit log as knowledge.removed)`,
      );
    });
  });
}

interface DocumentFile {
  name: string;
  format: "markdown" | "text";
  text: string;
}

/** The files named, and the Markdown and text files of the folders named (not their subfolders). */
export async function readDocuments(paths: string[]): Promise<DocumentFile[]> {
  const files: string[] = [];
  for (const p of paths) {
    const info = await stat(p).catch(() => null);
    if (!info) throw new UsageError(`${p}: no such file or folder`, "name Markdown (.md) or text (.txt) files, or a folder of them");
    if (info.isDirectory()) {
      const inside = (await readdir(p)).filter((f) => formatOf(f) !== null).sort();
      if (inside.length === 0) throw new UsageError(`${p}: the folder holds no .md or .txt files`, "name the files to add");
      files.push(...inside.map((f) => path.join(p, f)));
    } else {
      if (formatOf(p) === null) {
        throw new UsageError(
          `${p}: only Markdown (.md, .markdown) and text (.txt) files are read as knowledge`,
          "convert it to Markdown or text first",
        );
      }
      files.push(p);
    }
  }
  return Promise.all(
    files.map(async (f) => {
      const text = await readFile(f, "utf8");
      return { name: path.basename(f), format: formatOf(f) as DocumentFile["format"], text };
    }),
  );
}
