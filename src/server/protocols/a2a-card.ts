/**
 * The A2A agent card of an exposed Outpost agent, served at
 * `/a2a/<agent>/.well-known/agent-card.json`.
 *
 * One card, two wire shapes, as the SDK's own card handler does: a client that
 * asks for A2A 1.0 (`A2A-Version: 1.0`, the SDK client does) gets the 1.0 card;
 * any other gets the 0.3 shape (`url`, `protocolVersion`, `preferredTransport`)
 * with the 1.0 interfaces embedded, so both generations of clients find the
 * same JSON-RPC endpoint.
 */
import { A2A_PROTOCOL_VERSION, type AgentCard } from "@a2a-js/sdk";
import { A2A_LEGACY_PROTOCOL_VERSION } from "@a2a-js/sdk/compat/v0_3";
import type { AgentView } from "../../core/api.js";

/** Outpost agents take text and answer text. */
const TEXT = ["text/plain"];

export function agentCard(agent: AgentView, endpoint: string, version: string): AgentCard {
  const description = agent.description.trim() || `The Outpost agent "${agent.name}".`;
  const approvals = agent.tools.filter((t) => t.approval === "required").map((t) => t.name);
  const skill = approvals.length > 0 ? `${description} Some actions wait for a person's approval before they run.` : description;
  return {
    name: agent.name,
    description,
    supportedInterfaces: [
      { url: endpoint, protocolBinding: "JSONRPC", tenant: "", protocolVersion: A2A_PROTOCOL_VERSION },
      { url: endpoint, protocolBinding: "JSONRPC", tenant: "", protocolVersion: A2A_LEGACY_PROTOCOL_VERSION },
    ],
    provider: undefined,
    version,
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: {},
    securityRequirements: [],
    defaultInputModes: TEXT,
    defaultOutputModes: TEXT,
    skills: [
      {
        id: agent.name,
        name: agent.name,
        description: skill,
        tags: ["outpost", ...(agent.team ? [agent.team] : [])],
        examples: [],
        inputModes: TEXT,
        outputModes: TEXT,
        securityRequirements: [],
      },
    ],
    signatures: [],
  };
}

/** Whether an `A2A-Version` header asks for 1.x (absent or 0.x: the 0.3 shapes). */
export const wantsV1 = (version: string | undefined) => version !== undefined && /^1(\.\d+)?$/.test(version.trim());
export const wantsLegacy = (version: string | undefined) => version !== undefined && /^0\.3(\.\d+)?$/.test(version.trim());

/** The card as A2A 0.3 lays it out, with the 1.0 interfaces alongside (as the SDK's compat card handler does). */
export function legacyCardJson(card: AgentCard): Record<string, unknown> {
  const primary = card.supportedInterfaces.find((i) => wantsLegacy(i.protocolVersion)) ?? card.supportedInterfaces[0];
  return {
    name: card.name,
    description: card.description,
    version: card.version,
    url: primary.url,
    preferredTransport: primary.protocolBinding,
    protocolVersion: primary.protocolVersion,
    capabilities: { streaming: card.capabilities?.streaming ?? false, pushNotifications: card.capabilities?.pushNotifications ?? false },
    defaultInputModes: card.defaultInputModes,
    defaultOutputModes: card.defaultOutputModes,
    skills: card.skills.map((s) => ({
      id: s.id,
      name: s.name,
      description: s.description,
      tags: s.tags,
      ...(s.inputModes.length > 0 ? { inputModes: s.inputModes } : {}),
      ...(s.outputModes.length > 0 ? { outputModes: s.outputModes } : {}),
    })),
    supportedInterfaces: card.supportedInterfaces.map((i) => ({
      url: i.url,
      protocolBinding: i.protocolBinding,
      protocolVersion: i.protocolVersion,
    })),
  };
}
