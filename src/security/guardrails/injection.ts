/**
 * Prompt-injection detection over text that comes from outside (tickets, emails, order notes, tool and
 * MCP results). A heuristic, not a proof: it catches the common shapes — instruction overrides, persona
 * switches, fake system turns and chat-template tokens, requests for prompts or secrets, directives to
 * call tools or move money, approval bypasses — also when hidden (zero-width characters, invisible tag
 * characters, HTML comments, base64 or hex blobs) or disguised (look-alike letters, fullwidth forms,
 * spaced-out or leetspeak words, several languages). Its job is to mark the run tainted and record the
 * attempt; policy and approvals are what stop the action. Tuned to stay quiet on ordinary business text
 * (customers asking for a refund of their shipping fee are not an injection). Pure: no I/O.
 */

export interface InjectionFinding {
  /** Which rule matched, e.g. `instruction_override`, `money_directive`, `hidden_characters`. */
  pattern: string;
  /** The matched text (normalised view), at most 120 characters. */
  excerpt: string;
}

export interface InjectionScan {
  suspicious: boolean;
  findings: InjectionFinding[];
}

interface Rule {
  pattern: string;
  re: RegExp;
}

// Words that name the instructions an attacker wants dropped.
const RULES_WORD = String.raw`(?:instructions?|rules|guidelines|guidance|prompts?|directives?|polic(?:y|ies)|guardrails|constraints|restrictions|programming|system\s+message|context)`;
// Whose instructions: the agent's, not the customer's own ("ignore my previous email" is fine).
const OWNER = String.raw`(?:all|any|every|your|the|these|those|previous|prior|above|earlier|preceding|former|existing|original|current|system|safety|security|operator'?s?)`;

const RULES: Rule[] = [
  {
    pattern: "instruction_override",
    re: new RegExp(
      String.raw`\b(?:ignore|disregard|forget|override|overrule|bypass|drop|abandon|discard|neglect|skip)\s+(?:(?:all|any|of|everything|what)\s+)*${OWNER}\b(?:\s+[\w'-]+){0,3}?\s+${RULES_WORD}\b(?!\s+(?:i|we)\s+(?:gave|sent|wrote|left|added|mentioned|put))`,
      "i",
    ),
  },
  {
    pattern: "instruction_override",
    re: /\b(?:ignore|disregard|forget)\s+(?:everything|all|the\s+(?:\w+\s+){0,2}(?:text|content|message|data))\s+(?:above|below|before\s+this)/i,
  },
  { pattern: "instruction_override", re: /\bforget\s+(?:everything|all)\s+(?:you\s+(?:were|have\s+been)\s+told|above|before|previously)/i },
  {
    pattern: "instruction_override",
    re: /\b(?:new|updated|revised|real|actual|additional|hidden|secret|important)\s+(?:system\s+)?instructions?\s*(?::|follow|below|for\s+(?:the\s+)?(?:ai|assistant|agent|model|llm))/i,
  },
  {
    pattern: "instruction_override",
    re: /\b(?:system|admin(?:istrator)?|developer|root|security)\s+(?:override|message|notice|command|instruction)s?\s*[:!-]/i,
  },
  {
    pattern: "instruction_override",
    re: /\b(?:do\s+not|don't|never)\s+(?:follow|obey|apply)\s+(?:your|the|any)\s+(?:\w+\s+){0,2}(?:instructions|rules|polic(?:y|ies)|guidelines)/i,
  },
  // Persona and role switches.
  {
    pattern: "role_switch",
    re: /\byou\s+are\s+(?:now|no\s+longer)\s+(?:an?\s+|the\s+|in\s+)?(?:[\w-]+\s+){0,2}?(?:assistant|agent|ai|bot|model|mode|admin(?:istrator)?|system|developer|persona|unrestricted|jailbroken|dan|root|superuser|bound|restricted|limited)\b/i,
  },
  {
    pattern: "role_switch",
    re: /\bfrom\s+now\s+on,?\s+(?:you|the\s+(?:assistant|agent|ai))\s+(?:are|will|must|shall|should|act|respond|answer|obey)/i,
  },
  {
    pattern: "role_switch",
    re: /\b(?:act|behave|respond|speak)\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?(?:the|an?)?\s*(?:system|admin(?:istrator)?|developer|root|superuser|operator|unrestricted|jailbroken)\b/i,
  },
  {
    pattern: "role_switch",
    re: /\bpretend\s+(?:to\s+be|you\s+are|that\s+you\s+are)\s+(?:the|an?)?\s*(?:system|admin|developer|different|unrestricted|another)/i,
  },
  { pattern: "role_switch", re: /\b(?:developer|god|dan|jailbreak|debug|maintenance|unrestricted|sudo)\s+mode\b/i },
  { pattern: "role_switch", re: /\bi\s+am\s+(?:your|the)\s+(?:developer|creator|administrator|admin|system|operator|owner)\b/i },
  // Fake turns and chat-template tokens.
  {
    pattern: "fake_turn",
    re: /<\|\s*(?:im_start|im_end|system|user|assistant|endoftext|begin_of_text|start_header_id|end_header_id|eot_id)\s*\|>|\[\/?INST\]|<<\/?SYS>>|<\/?\s*(?:system|assistant|tool_call|function_call|instructions?)\s*>/i,
  },
  {
    pattern: "fake_turn",
    re: /(?:^|\n)\s*(?:#{1,6}\s*|\*\*\s*|\[\s*)?(?:system|assistant|developer|tool)\s*(?:prompt|message|turn)?\s*(?:\]|\*\*)?\s*:/i,
  },
  { pattern: "fake_turn", re: /(?:^|\n)\s*#{1,6}\s*(?:system|instructions?|assistant|developer)\b/i },
  { pattern: "fake_turn", re: /"role"\s*:\s*"(?:system|assistant|developer)"/i },
  {
    pattern: "fake_turn",
    re: /\b(?:end\s+of\s+(?:the\s+)?(?:user|customer|tool)\s+(?:input|message|data|output)|begin\s+(?:system|admin)\s+(?:message|instructions?))\b/i,
  },
  // Addressing the model directly from inside data.
  {
    pattern: "addresses_model",
    re: /\b(?:note|message|instructions?|attention|memo|important|reminder)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?(?:ai|a\.i\.|llm|language\s+model|assistant|chatbot|bot|gpt|agents?\s+(?:reading|processing)|model)\b/i,
  },
  { pattern: "addresses_model", re: /(?:^|\n|<!--|[.!]\s)\s*(?:ai|a\.i\.|llm|chatbot|gpt)(?:\s+(?:assistant|agent|model|system))?\s*:/i },
  {
    pattern: "addresses_model",
    re: /\b(?:dear|hey|hi|hello|attention)\s+(?:ai|a\.i\.|llm|chatbot|gpt|language\s+model|ai\s+(?:assistant|agent))\b/i,
  },
  { pattern: "addresses_model", re: /\bif\s+you\s+are\s+an?\s+(?:ai|llm|language\s+model|assistant|bot|automated\s+(?:agent|system))\b/i },
  // Requests to reveal prompts, secrets or data.
  {
    pattern: "secret_request",
    re: /\b(?:reveal|show|print|repeat|output|display|dump|leak|tell\s+me|give\s+me|send\s+me|share|list|write\s+out)\s+(?:me\s+)?(?:all\s+)?(?:of\s+)?(?:your|the)\s+(?:\w+\s+){0,2}?(?:system\s+prompt|prompt|instructions|initial\s+prompt|hidden\s+(?:prompt|instructions)|api[\s_-]?keys?|secrets?|passwords?|credentials|tokens?|private\s+keys?|environment\s+variables|config(?:uration)?)\b/i,
  },
  { pattern: "secret_request", re: /\bwhat\s+(?:is|are|were)\s+your\s+(?:system\s+prompt|instructions|initial\s+instructions|rules)\b/i },
  {
    pattern: "data_exfiltration",
    re: /\b(?:send|email|e-mail|forward|export|upload|post|copy|transmit|mail)\s+(?:me\s+)?(?:a\s+(?:copy|list)\s+of\s+)?(?:all|every|the\s+(?:full|entire|complete|whole)|the\s+list\s+of\s+all)\s+(?:\w+\s+){0,2}?(?:customers?|users?|records|accounts|payments|invoices|orders|tickets|data|database|emails|addresses|card\s+numbers|details)\b/i,
  },
  { pattern: "data_exfiltration", re: /!\[[^\]]*\]\(https?:\/\/[^)]*(?:\?|&)[\w-]+=(?:\{|\[|%7B)/i },
  // Directives to move money or call tools.
  {
    pattern: "money_directive",
    re: /\b(?:refund|transfer|wire|send|pay|credit|remit|deposit|move|issue\s+(?:a\s+)?(?:full\s+)?(?:refund|credit|payment)(?:\s+of)?)\s+(?:(?:an?|the)\s+)?(?:amount\s+of\s+)?(?:usd|eur|gbp|\$|€|£)?\s?\d[\d,.' ]*(?:k|\s?(?:usd|eur|gbp|dollars|euros?|pounds))?\s+(?:\w+\s+){0,3}?(?:to|into|onto)\s+(?:(?:this|that|the\s+following|the\s+below|another|a\s+new|a\s+different|my\s+new|our|external)\s+)?(?:account|acct|iban|card|wallet|bank|recipient|beneficiary|[A-Z]{2}\d{2}\b|\d{4}\b)/i,
  },
  {
    pattern: "money_directive",
    re: /\b(?:change|update|replace|set|switch)\s+(?:the\s+|my\s+|our\s+|their\s+|this\s+customer'?s?\s+)?(?:bank|payout|payment|iban|account|refund|remittance)\s+(?:\w+\s+)?(?:details|number|account|information|info|destination)\s+(?:to|into|with)\b/i,
  },
  {
    pattern: "tool_directive",
    re: /\b(?:call|invoke|execute|trigger|run|use)\s+(?:the\s+)?(?:[\w.]+\s+)?(?:tool|function|api\s+call)\b(?!\s*(?:kit|box|bar|s\b))/i,
  },
  {
    pattern: "tool_directive",
    re: /\b[a-z]+\.(?:issue|create|send|make|transfer|delete|update|pay|refund|grant|approve|cancel|set|change|reply|add|remove)_[a-z_]+\b/,
  },
  {
    pattern: "tool_directive",
    re: /\b(?:delegate|hand\s*off|handoff|escalate)\s+(?:this\s+)?(?:\w+\s+){0,2}?to\s+(?:the\s+)?(?:refunds?|finance|ledger|invoicing)\s+agent\s+(?:and|with|to)\s+(?:tell|ask|instruct|order|have)\b/i,
  },
  // Getting past approvals and policy.
  {
    pattern: "approval_bypass",
    re: /\b(?:pre-?approved|already\s+(?:been\s+)?(?:approved|authori[sz]ed)\s+by\s+(?:the\s+)?(?:system|admin|administrator|security|developer|ceo|cfo)|(?:no|without)\s+(?:any\s+)?(?:human\s+)?(?:approval|confirmation|verification|review|sign-?off)s?\s+(?:is\s+|are\s+)?(?:needed|required|necessary)|(?:skip|bypass|circumvent|avoid|disable|turn\s+off)\s+(?:the\s+|any\s+|all\s+)?(?:\w+\s+)?(?:approvals?|verification|checks|guardrails|polic(?:y|ies)|safety|review|filters?|limits)|(?:do\s+not|don't|never)\s+(?:ask|wait)\s+for\s+(?:an?\s+)?(?:approval|confirmation|permission)|without\s+(?:asking|requesting|waiting)\s+(?:for\s+)?(?:an?\s+)?(?:approval|confirmation|permission))\b/i,
  },
  {
    pattern: "conceal",
    re: /\b(?:do\s+not|don't|never)\s+(?:tell|inform|mention|notify|alert|reveal\s+(?:this\s+)?to)\s+(?:the\s+)?(?:user|customer|operator|human|anyone|finance|security|admin)\b/i,
  },
  // Other languages: the override, the money directive.
  {
    pattern: "instruction_override",
    re: /(?<!\p{L})(?:ignora|ignoriere|ignorieren\s+sie|negeer|vergeet|olvida|vergiss|dimentica)\s+(?:\S+\s+){0,3}?(?:instrucciones|anweisungen|instructies|instruções|instrucoes|istruzioni|regeln|reglas|regels|vorgaben)(?!\p{L})/iu,
  },
  {
    pattern: "instruction_override",
    re: /(?<!\p{L})(?:ignore[zr]?|oublie[zr]?)\s+(?:toutes\s+|tous\s+)?(?:les|vos|tes|ces)\s+(?:\S+\s+){0,2}?(?:instructions|consignes|règles|directives)(?!\p{L})/iu,
  },
  {
    pattern: "instruction_override",
    re: /(?:忽略|无视|無視|忘记|忘記).{0,12}(?:指令|指示|说明|說明|规则|規則|提示)|(?:指示|命令|ルール).{0,10}(?:無視|忘れ)/,
  },
  {
    pattern: "instruction_override",
    re: /(?:игнорируй|игнорируйте|забудь|забудьте|проигнорируй)\s+(?:\S+\s+){0,3}?(?:инструкции|указания|правила)/i,
  },
  {
    pattern: "money_directive",
    re: /(?<!\p{L})(?:reembols[ae]|transfier[ae]|rembourse[rz]?|vire[rz]?|überweise|erstatte|maak|stort|betaal|rimborsa|trasferisci)\s+(?:\S+\s+){0,4}?\d[\d.,]*\s*(?:€|\$|eur|euro|usd|dollars?|dólares)?\s+(?:\S+\s+){0,3}?(?:a|à|an|auf|naar|op|al|sul|sur)\s+(?:la\s+|le\s+|die\s+|das\s+|het\s+|el\s+|il\s+)?(?:cuenta|compte|konto|rekening|conto|iban|[A-Z]{2}\d{2})/iu,
  },
  {
    pattern: "money_directive",
    re: /(?:退款|转账|轉帳|汇款|匯款).{0,20}\d.{0,20}(?:账户|帳戶|账号|帳號)|(?:返金|送金|振込).{0,20}\d.{0,20}口座/,
  },
];

// Leetspeak and spaced-out letters hide only the override words; folding everything would misread amounts.
const LEET: Record<string, string> = { "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", $: "s", "!": "i", "|": "l" };
const OVERRIDE_RULES = RULES.filter(
  (r) => r.pattern === "instruction_override" || r.pattern === "role_switch" || r.pattern === "secret_request",
);

// Look-alike letters (Cyrillic, Greek, Latin extensions) mapped to the Latin ones they imitate.
const CONFUSABLES: Record<string, string> = {
  а: "a",
  е: "e",
  о: "o",
  р: "p",
  с: "c",
  у: "y",
  х: "x",
  і: "i",
  ј: "j",
  ѕ: "s",
  ԁ: "d",
  ɡ: "g",
  һ: "h",
  ӏ: "l",
  ԛ: "q",
  ԝ: "w",
  А: "A",
  В: "B",
  Е: "E",
  К: "K",
  М: "M",
  Н: "H",
  О: "O",
  Р: "P",
  С: "C",
  Т: "T",
  Х: "X",
  І: "I",
  Ј: "J",
  Ѕ: "S",
  α: "a",
  ο: "o",
  ρ: "p",
  ι: "i",
  ν: "v",
  κ: "k",
  τ: "t",
  υ: "u",
  ε: "e",
  Α: "A",
  Β: "B",
  Ε: "E",
  Ζ: "Z",
  Η: "H",
  Ι: "I",
  Κ: "K",
  Μ: "M",
  Ν: "N",
  Ο: "O",
  Ρ: "P",
  Τ: "T",
  Υ: "Y",
  Χ: "X",
  ı: "i",
  ȷ: "j",
  ℓ: "l",
};
const CONFUSABLE_CHARS = new Set(Object.keys(CONFUSABLES));

// Invisible characters: zero-width, word joiner, BOM, soft hyphen, bidi controls. Tag characters (U+E0000–E007F)
// are handled separately: they spell ASCII invisibly ("ASCII smuggling").
const INVISIBLE = /\u200d|[\u200b\u200c\u2060\u2061-\u2064\ufeff\u00ad\u180e\u202a-\u202e\u2066-\u2069]/g;
const BIDI = /[\u202a-\u202e\u2066-\u2069]/;
const TAGS = /[\u{e0000}-\u{e007f}]+/gu;

const excerpt = (s: string) => {
  const t = s.replace(/\s+/g, " ").trim();
  return t.length > 120 ? `${t.slice(0, 117)}...` : t;
};

/** Folds look-alike letters into Latin in words that mix scripts (or are made only of look-alikes); pure Cyrillic or Greek words stay. */
function foldConfusables(text: string): string {
  return text.replace(/[\p{L}\p{M}]+/gu, (word) => {
    let confusable = 0;
    let latin = 0;
    for (const ch of word) {
      if (CONFUSABLE_CHARS.has(ch)) confusable++;
      else if (/[a-zA-Z]/.test(ch)) latin++;
    }
    if (confusable === 0 || (latin === 0 && confusable < [...word].length)) return word;
    return [...word].map((ch) => CONFUSABLES[ch] ?? ch).join("");
  });
}

/** "i g n o r e" / "i.g.n.o.r.e" → "ignore": single letters joined by one separator, 4 or more. */
const unspace = (text: string) => text.replace(/\b(?:\p{L}[ ._\-*]){3,}\p{L}\b/gu, (m) => m.replace(/[ ._\-*]/g, ""));

const leet = (text: string) =>
  text.replace(/[a-z0-9@$!|]+/gi, (w) => (/[a-z]/i.test(w) && /[0-9@$!|]/.test(w) ? w.replace(/[0-9@$!|]/g, (c) => LEET[c] ?? c) : w));

/** Decodes base64 / base64url / hex blobs that turn out to be readable text. */
function decodedBlobs(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?<![A-Za-z0-9+/=_-])(?:[A-Za-z0-9+/]{24,}={0,2}|[A-Za-z0-9_-]{24,})(?![A-Za-z0-9+/=_-])/g)) {
    const blob = m[0];
    if (!/[A-Z]/.test(blob) || !/[a-z]/.test(blob)) continue; // ids and hashes are one case
    const decoded = Buffer.from(blob.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8");
    if (readable(decoded)) out.push(decoded);
  }
  for (const m of text.matchAll(/\b(?:[0-9a-fA-F]{2}){16,}\b/g)) {
    const decoded = Buffer.from(m[0], "hex").toString("utf8");
    if (readable(decoded)) out.push(decoded);
  }
  return out;
}

function readable(s: string): boolean {
  if (s.length < 12 || s.includes("\ufffd")) return false;
  const printable = s.replace(/[^\p{L}\p{N}\p{P}\p{Zs}\n]/gu, "").length;
  return printable / s.length > 0.95 && /\p{L}{3,}\s+\p{L}{2,}/u.test(s);
}

function runRules(rules: Rule[], view: string, findings: InjectionFinding[], label?: string): void {
  for (const rule of rules) {
    const m = rule.re.exec(view);
    if (!m) continue;
    const pattern = label ? `${rule.pattern} (${label})` : rule.pattern;
    if (!findings.some((f) => f.pattern === pattern || f.pattern === rule.pattern)) findings.push({ pattern, excerpt: excerpt(m[0]) });
  }
}

/** JSON string escapes undone (tool results are often JSON): `\n` starts a line again, `\u202e` is the character. */
function unescapeJson(text: string): string {
  if (!text.includes("\\")) return text;
  return text
    .replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
    .replace(/\\[nr]/g, "\n")
    .replace(/\\t/g, "\t")
    .replace(/\\(["\\/])/g, "$1");
}

function scan(raw: string, depth: number): InjectionFinding[] {
  const findings: InjectionFinding[] = [];
  const text = unescapeJson(raw);

  // Hidden carriers first: what they hide is scanned like any other text.
  const hidden: Array<{ label: string; text: string }> = [];
  const tags = [...text.matchAll(TAGS)].map((m) =>
    [...m[0]].map((c) => String.fromCodePoint((c.codePointAt(0) ?? 0xe0000) - 0xe0000)).join(""),
  );
  if (tags.length > 0) {
    findings.push({ pattern: "hidden_characters", excerpt: excerpt(`invisible tag characters: ${tags.join(" ")}`) });
    hidden.push(...tags.map((t) => ({ label: "tag characters", text: t })));
  }
  const invisible = text.match(INVISIBLE) ?? [];
  // One zero-width joiner inside an emoji is ordinary; invisible characters between letters or in numbers are not.
  const insideWords = /[\p{L}\p{N}](?:\u200d|[\u200b\u200c\u2060\ufeff\u00ad])+[\p{L}\p{N}]/u.test(text);
  if (BIDI.test(text) || (insideWords && invisible.length >= 2)) {
    findings.push({ pattern: "hidden_characters", excerpt: excerpt(`${invisible.length} invisible characters`) });
  }
  for (const m of text.matchAll(/<!--([\s\S]*?)(?:-->|$)/g)) hidden.push({ label: "HTML comment", text: m[1] });
  for (const m of text.matchAll(
    /<(\w+)[^>]*style\s*=\s*["'][^"']*(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|opacity\s*:\s*0)[^"']*["'][^>]*>([\s\S]*?)<\/\1>/gi,
  )) {
    hidden.push({ label: "hidden HTML", text: m[2] });
  }
  if (depth < 2) for (const d of decodedBlobs(text)) hidden.push({ label: "encoded", text: d });

  // The views of the text that the rules read.
  const plain = text.normalize("NFKC").replace(INVISIBLE, "").replace(TAGS, "");
  const folded = foldConfusables(plain);
  const before = findings.length;
  runRules(RULES, folded, findings);
  if (folded !== plain && findings.length > before && !RULES.some((r) => r.re.test(plain))) {
    findings.push({ pattern: "confusable_letters", excerpt: excerpt(folded) });
  }
  const obfuscated = leet(unspace(folded));
  if (obfuscated !== folded) runRules(OVERRIDE_RULES, obfuscated, findings, "obfuscated");

  for (const h of hidden) {
    const inner = scan(h.text, depth + 1);
    if (inner.length > 0) {
      findings.push({ pattern: `hidden_instructions (${h.label})`, excerpt: excerpt(h.text) });
      for (const f of inner) if (!findings.some((x) => x.pattern === f.pattern)) findings.push(f);
    }
  }
  return findings;
}

/** Scans text from outside for injected instructions. `suspicious` when any rule matched. */
export function scanForInjection(text: string): InjectionScan {
  const findings = scan(text, 0);
  return { suspicious: findings.length > 0, findings };
}
