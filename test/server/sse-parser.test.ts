import { describe, expect, it } from "vitest";
import { parseSse, type SseMessage } from "../../src/client/sse.js";

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(encoder.encode(c));
      controller.close();
    },
  });
}

async function collect(chunks: string[]): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  for await (const m of parseSse(streamOf(chunks))) out.push(m);
  return out;
}

describe("parseSse", () => {
  it("parses id, event and data, skipping comments and retry", async () => {
    const messages = await collect([
      "retry: 1000\n\n: heartbeat\n\n",
      'id: 1\nevent: run.started\ndata: {"seq":1}\n\n',
      "event: end\ndata: {}\n\n",
    ]);
    expect(messages).toEqual([
      { event: "run.started", data: '{"seq":1}', id: "1" },
      { event: "end", data: "{}" },
    ]);
  });

  it("reassembles messages split across chunks anywhere, including inside CRLF", async () => {
    const text = 'id: 7\r\nevent: x\r\ndata: {"a":"é"}\r\n\r\nid: 8\rdata: b\r\r';
    const bytes = new TextEncoder().encode(text);
    // Split into single bytes: also splits the multi-byte "é" and every CRLF.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const b of bytes) controller.enqueue(new Uint8Array([b]));
        controller.close();
      },
    });
    const out: SseMessage[] = [];
    for await (const m of parseSse(stream)) out.push(m);
    expect(out).toEqual([
      { event: "x", data: '{"a":"é"}', id: "7" },
      { event: "message", data: "b", id: "8" },
    ]);
  });

  it("joins multi-line data and drops an unterminated final message", async () => {
    expect(await collect(["data: a\ndata: b\n\n", "data: cut off"])).toEqual([{ event: "message", data: "a\nb" }]);
  });
});
