/**
 * One place that knows every secret value this process has handed out (resolved `secret://` references and the
 * environment values connections use) and replaces them with `[secret:name]` wherever text leaves: tool outputs and
 * errors before they are committed, log lines, API error messages.
 *
 * Each value is matched as written and in the forms it travels in: JSON-escaped, base64 (and base64url),
 * URL-encoded. Values shorter than MIN_SECRET_LENGTH are not matched: replacing them would garble ordinary text.
 */

export const MIN_SECRET_LENGTH = 4;

/** The forms a value may be found in, e.g. echoed in a JSON body, an Authorization header, a query string. */
export function secretForms(value: string): string[] {
  const forms = [
    value,
    JSON.stringify(value).slice(1, -1),
    Buffer.from(value).toString("base64"),
    Buffer.from(value).toString("base64").replace(/=+$/, ""),
    Buffer.from(value).toString("base64url"),
    encodeURIComponent(value),
    encodeURIComponent(value).replace(/%20/g, "+"),
  ];
  return [...new Set(forms)].filter((form) => form.length >= MIN_SECRET_LENGTH);
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export class Redactor {
  /** form → label, e.g. "s3cr3t" → "ledger_token". */
  private readonly forms = new Map<string, string>();
  private pattern: RegExp | null = null;

  /** Registers a value under a label (its secret name, or `env:VAR`); returns whether it is long enough to be matched. */
  add(label: string, value: string): boolean {
    if (value.length < MIN_SECRET_LENGTH) return false;
    let added = false;
    for (const form of secretForms(value)) {
      if (this.forms.has(form)) continue;
      this.forms.set(form, label);
      added = true;
    }
    if (added) this.pattern = null;
    return true;
  }

  get size(): number {
    return this.forms.size;
  }

  /** `text` with every registered value replaced by `[secret:label]`. */
  redact(text: string): string {
    if (this.forms.size === 0 || !text) return text;
    this.pattern ??= new RegExp(
      [...this.forms.keys()]
        .sort((a, b) => b.length - a.length) // the longest form first: a value that contains another is masked whole
        .map(escapeRegExp)
        .join("|"),
      "g",
    );
    return text.replace(this.pattern, (found) => `[secret:${this.forms.get(found)}]`);
  }

  /** A JSON value with every string in it redacted (keys too). */
  redactValue<T>(value: T): T {
    if (this.forms.size === 0) return value;
    const walk = (v: unknown): unknown => {
      if (typeof v === "string") return this.redact(v);
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === "object" && (v as object).constructor === Object) {
        return Object.fromEntries(Object.entries(v).map(([k, item]) => [this.redact(k), walk(item)]));
      }
      return v;
    };
    return walk(value) as T;
  }

  /** An Error's message redacted, same class kept (ToolOutcomeUnknown etc. must still be recognised). */
  redactError<E>(err: E): E {
    if (err instanceof Error) {
      const masked = this.redact(err.message);
      if (masked !== err.message) err.message = masked;
    }
    return err;
  }

  /**
   * pino options that redact every line as it is written (message, fields, errors, child loggers alike):
   * `pino({ ...redactor.pinoOptions(), level }, destination)`.
   */
  pinoOptions(): { hooks: { streamWrite: (line: string) => string } } {
    return { hooks: { streamWrite: (line) => this.redact(line) } };
  }
}
