import { describe, expect, it } from "vitest";
import { ModelError } from "../../src/models/index.js";
import { encodeToolName, ToolNameTable } from "../../src/models/sdk/tool-names.js";

const WIRE = /^[a-zA-Z0-9_-]{1,64}$/;

describe("tool names on the wire", () => {
  it("encodes dots and other forbidden characters, and decodes them back", () => {
    const names = [
      "orders.lookup",
      "crm.contacts.find_by_email",
      "plain_name",
      "my-tool",
      "weird name/with:chars",
      "x".repeat(80),
      "a.b".repeat(30),
    ];
    const table = new ToolNameTable(names);
    for (const name of names) {
      const wire = encodeToolName(name);
      expect(wire).toMatch(WIRE);
      expect(table.decode(wire)).toBe(name);
    }
    expect(encodeToolName("orders.lookup")).toBe("orders__lookup");
    expect(encodeToolName("plain_name")).toBe("plain_name");
  });

  it("decodes names the model invented by the rule", () => {
    const table = new ToolNameTable(["orders.lookup"]);
    expect(table.decode("payments__refund")).toBe("payments.refund");
    expect(table.decode("get_weather")).toBe("get_weather");
  });

  it("refuses two tools with the same wire name", () => {
    expect(() => new ToolNameTable(["a.b", "a__b"])).toThrow(ModelError);
  });
});
