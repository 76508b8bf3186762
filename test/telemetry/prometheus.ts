/**
 * A strict reader of the Prometheus text exposition format (0.0.4), to check that what /metrics serves parses:
 * every line is a comment, a HELP or TYPE line, or a sample `name{label="value",…} value [timestamp]`; anything else
 * throws, naming the line. Keyed by sample name (a histogram's `_bucket`, `_sum`, `_count` each have their own),
 * with the TYPE and HELP of the family under the family's name.
 */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  type?: string;
  help?: string;
  samples: Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})?\\s+(\\S+)(?:\\s+(-?\\d+))?$`);
const LABEL = new RegExp(`^\\s*(${NAME.replace(":", "")})="((?:[^"\\\\]|\\\\[\\\\"n])*)"\\s*(,|$)`);
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

export function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { samples: [] }));
    return f;
  };
  text.split("\n").forEach((line, i) => {
    const where = `line ${i + 1} ("${line}")`;
    if (line.trim() === "") return;
    const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (meta) {
      const [, kind, name, rest = ""] = meta;
      if (!new RegExp(`^${NAME}$`).test(name)) throw new Error(`${where}: bad metric name`);
      const f = family(name);
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type`);
        if (f.type) throw new Error(`${where}: a second TYPE for ${name}`);
        f.type = rest;
      } else f.help = rest;
      return;
    }
    if (line.startsWith("#")) return;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`${where}: not a sample`);
    const [, name, labelText = "", valueText] = m;
    const labels: Record<string, string> = {};
    for (let rest = labelText; rest.trim() !== ""; ) {
      const l = LABEL.exec(rest);
      if (!l) throw new Error(`${where}: bad labels at "${rest}"`);
      if (l[1] in labels) throw new Error(`${where}: label ${l[1]} twice`);
      labels[l[1]] = l[2].replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c));
      rest = rest.slice(l[0].length);
    }
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText);
    if (Number.isNaN(value) && valueText !== "NaN") throw new Error(`${where}: bad value`);
    family(name).samples.push({ labels, value });
  });
  return families;
}
