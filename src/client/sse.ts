/**
 * A small server-sent events parser (the WHATWG event-stream format): reads a
 * byte stream and yields one message per blank-line-terminated block.
 * Comments (`: heartbeat`) are skipped; `retry:` is ignored.
 */

export interface SseMessage {
  /** `event:` field, "message" when absent. */
  event: string;
  data: string;
  /** `id:` field of this message, if it had one. */
  id?: string;
}

export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let data: string[] = [];
  let id: string | undefined;
  let first = true;

  const line = function* (text: string): Generator<SseMessage> {
    if (text === "") {
      if (data.length > 0) {
        yield { event: event || "message", data: data.join("\n"), ...(id !== undefined ? { id } : {}) };
      }
      event = "";
      data = [];
      id = undefined;
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id" && !value.includes("\0")) id = value;
  };

  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) {
        // A CR held back at the very end still ends its line.
        if (buffer.endsWith("\r")) yield* line(buffer.slice(0, -1));
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      if (first && buffer.length > 0) {
        if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
        first = false;
      }
      // Split on CRLF, CR or LF; keep a trailing CR back in case its LF is in the next chunk.
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const c = buffer[i];
        if (c === "\n" || c === "\r") {
          if (c === "\r" && i === buffer.length - 1) break;
          yield* line(buffer.slice(start, i));
          if (c === "\r" && buffer[i + 1] === "\n") i++;
          start = i + 1;
        }
      }
      buffer = buffer.slice(start);
    }
    // A message not terminated by a blank line when the stream ends is discarded (per the spec).
  } finally {
    reader.cancel().catch(() => {});
  }
}
