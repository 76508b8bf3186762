/**
 * Webhooks over real HTTP: a signed delivery starts one run and is answered with its id at once; a redelivery with
 * the same delivery id starts nothing new; a bad signature, a stale one (replay), a payload the schema refuses, a
 * missing delivery id, an unknown webhook each get a precise 4xx and start nothing; an API key with the run role
 * may deliver unsigned, a viewer's may not; another workspace has no webhooks here.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProject } from "../../src/definitions/index.js";
import { sign } from "../../src/triggers/index.js";
import { type Stack, startStack } from "./helpers.js";

const SHOP = path.resolve(import.meta.dirname, "../fixtures/shop");
const SECRET = "whsec_test_9f8e7d6c5b4a";
let stack: Stack;
let operator: string;
let viewer: string;

beforeAll(async () => {
  const project = await loadProject(SHOP);
  const support = project.agents.get("support");
  if (!support) throw new Error("no support agent");
  support.webhooks = [
    {
      name: "helpdesk-ticket",
      secret: "helpdesk_webhook",
      schema: {
        type: "object",
        required: ["ticket_id", "subject"],
        properties: { ticket_id: { type: "string" }, subject: { type: "string" } },
      },
      input: "A new helpdesk ticket arrived:\n{{payload}}",
      deliveryHeader: "x-outpost-delivery",
    },
  ];
  stack = await startStack({ project });
  const post = (p: string, body: unknown) =>
    fetch(`${stack.url}${p}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then(
      (r) => r.json() as Promise<{ key: string }>,
    );
  await fetch(`${stack.url}/v1/secrets/helpdesk_webhook`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ value: SECRET }),
  });
  operator = (await post("/v1/keys", { name: "op", roles: ["operator"] })).key;
  viewer = (await post("/v1/keys", { name: "viewer", roles: ["viewer"] })).key;
});
afterAll(async () => {
  await stack?.close();
});

/** A delivery as a sender makes it: no Outpost credentials, only the signature (unless `headers` says otherwise). */
async function deliver(body: string, headers: Record<string, string>, name = "helpdesk-ticket") {
  const res = await fetch(`${stack.url}/v1/hooks/${name}`, {
    method: "POST",
    // fetch to the stack carries the test's admin key; a sender has none, so it is replaced.
    headers: { "content-type": "application/json", authorization: "", ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
const signed = (body: string, at = Date.now(), secret = SECRET) => ({ "x-outpost-signature": sign(secret, body, at) });

describe("POST /v1/hooks/{name}", () => {
  const ticket = JSON.stringify({ ticket_id: "T-5001", subject: "Parcel arrived damaged" });

  it("starts one run per signed delivery, answers its id at once, and starts nothing for a redelivery", async () => {
    const first = await deliver(ticket, { ...signed(ticket), "x-outpost-delivery": "d-1" });
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    expect(first.body).toMatchObject({ delivery_id: "d-1", duplicate: false });
    const run = await stack.outpost.getRun(first.body.run_id);
    expect(run.agent).toBe("support");
    expect(run.input).toContain("A new helpdesk ticket arrived:");
    expect(run.input).toContain('"ticket_id": "T-5001"');
    expect((await stack.outpost.getEvents(run.id))[0].data.by).toBe("webhook:helpdesk-ticket");

    // The sender retries (its timeout, our answer lost): same delivery id, same run.
    const again = await deliver(ticket, { ...signed(ticket), "x-outpost-delivery": "d-1" });
    expect(again.status).toBe(202);
    expect(again.body).toEqual({ run_id: first.body.run_id, delivery_id: "d-1", duplicate: true });
    const firings = await stack.outpost.triggers.firings("webhook:helpdesk-ticket");
    expect(firings.map((f) => [f.key, f.status, f.run_id])).toEqual([["d-1", "started", first.body.run_id]]);
  });

  it("refuses a wrong signature, a replayed one, a payload the schema refuses and a delivery without an id, starting nothing", async () => {
    const runsBefore = (await stack.outpost.listRuns({ agent: "support", limit: 200 })).items.length;
    const wrong = await deliver(ticket, { ...signed(ticket, Date.now(), "whsec_guess"), "x-outpost-delivery": "d-2" });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.message).toBe(
      "webhook helpdesk-ticket: the signature does not match the body (wrong secret, or the body was changed on the way)",
    );
    const tampered = await deliver(ticket.replace("T-5001", "T-9999"), { ...signed(ticket), "x-outpost-delivery": "d-2" });
    expect(tampered.status).toBe(401);
    const replay = await deliver(ticket, { ...signed(ticket, Date.now() - 10 * 60_000), "x-outpost-delivery": "d-3" });
    expect(replay.status).toBe(401);
    expect(replay.body.error.message).toMatch(/more than 5 minutes from now \(a replay, or the sender's clock is off\)/);
    const bad = JSON.stringify({ ticket_id: 5001 });
    const invalid = await deliver(bad, { ...signed(bad), "x-outpost-delivery": "d-4" });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.message).toMatch(/^payload(\.ticket_id)?: /);
    const noId = await deliver(ticket, signed(ticket));
    expect(noId.status).toBe(400);
    expect(noId.body.error.message).toBe("the delivery has no x-outpost-delivery header (1–200 characters)");
    const notJson = await deliver("ticket=1", { ...signed("ticket=1"), "x-outpost-delivery": "d-5" });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.message).toMatch(/^the payload is not JSON/);
    const unknown = await deliver(ticket, { ...signed(ticket), "x-outpost-delivery": "d-6" }, "nope");
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.hint).toBe("webhooks of this project: helpdesk-ticket");
    const unsigned = await deliver(ticket, { "x-outpost-delivery": "d-7" });
    expect(unsigned.status).toBe(401);
    expect((await stack.outpost.listRuns({ agent: "support", limit: 200 })).items.length).toBe(runsBefore);
  });

  it("takes an unsigned delivery from an API key that may start runs, not from a viewer's or another workspace's", async () => {
    const byKey = await deliver(ticket, { authorization: `Bearer ${operator}`, "x-outpost-delivery": "k-1" });
    expect(byKey.status, JSON.stringify(byKey.body)).toBe(202);
    expect((await deliver(ticket, { authorization: `Bearer ${viewer}`, "x-outpost-delivery": "k-2" })).status).toBe(403);
    await fetch(`${stack.url}/v1/workspaces`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"id":"globex"}' });
    const key = await fetch(`${stack.url}/v1/keys`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "globex-op", roles: ["operator"], workspace: "globex" }),
    }).then((r) => r.json() as Promise<{ key: string }>);
    expect((await deliver(ticket, { authorization: `Bearer ${key.key}`, "x-outpost-delivery": "k-3" })).status).toBe(404);
  });

  it("is listed with the triggers", async () => {
    const { triggers } = await stack.outpost.triggers.list().then((t) => ({ triggers: t }));
    expect(triggers.find((t) => t.id === "webhook:helpdesk-ticket")).toMatchObject({
      kind: "webhook",
      agent: "support",
      path: "/v1/hooks/helpdesk-ticket",
      signed: true,
      last_firing: { status: "started" },
    });
  });
  it("records each delivery in the audit log — by the webhook's signature or the key that sent it — and each refused signature", async () => {
    const body = JSON.stringify({ ticket_id: "T-5002", subject: "Where is my parcel?" });
    const signedOne = await deliver(body, { ...signed(body), "x-outpost-delivery": "a-1" });
    const byKey = await deliver(body, { authorization: `Bearer ${operator}`, "x-outpost-delivery": "a-2" });
    await deliver(body, { ...signed(body, Date.now(), "whsec_forged"), "x-outpost-delivery": "a-3" });
    await stack.outpost.audit.flush();
    const delivered = await stack.outpost.audit.list("acme", { kind: "webhook.delivered" });
    const of = (runId: string) => delivered.find((e) => e.data.run_id === runId);
    expect(of(signedOne.body.run_id)).toMatchObject({
      actor: "webhook:helpdesk-ticket",
      runId: signedOne.body.run_id,
      data: { webhook: "helpdesk-ticket", delivery_id: "a-1", agent: "support", signed: true, duplicate: false },
    });
    expect(of(byKey.body.run_id)).toMatchObject({ actor: expect.stringMatching(/^key:/), data: { delivery_id: "a-2", signed: false } });
    expect(String(of(byKey.body.run_id)?.data.payload_sha256)).toMatch(/^[0-9a-f]{64}$/);
    const refused = await stack.outpost.audit.list("acme", { kind: "webhook.refused" });
    expect(refused.map((e) => e.data.reason)).toContain(
      "the signature does not match the body (wrong secret, or the body was changed on the way)",
    );
  });
});
