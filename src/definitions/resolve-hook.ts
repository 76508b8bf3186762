/**
 * Lets tool files outside this installation `import { defineTool } from "outpost"`
 * and `import { z } from "zod"`: a Node module-resolution hook that, only when
 * normal resolution fails, maps those bare specifiers to this installation's
 * copies. A project that installs its own `outpost` or `zod` keeps using them.
 */
import Module, { createRequire, register } from "node:module";
import { fileURLToPath } from "node:url";

const HOOK_SOURCE = `
let outpostUrl;
let anchorUrl;
export async function initialize(data) {
  outpostUrl = data.outpostUrl;
  anchorUrl = data.anchorUrl;
}
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (specifier === "outpost") return nextResolve(outpostUrl, context);
    if (specifier === "zod" || specifier.startsWith("zod/")) {
      return nextResolve(specifier, { ...context, parentURL: anchorUrl });
    }
    throw error;
  }
}
`;

const OUTPOST_ENTRY = new URL("../index.ts", import.meta.url);

let registered = false;

/** Installs the hooks once per process (idempotent). Must run before tool files are imported. */
export function registerOutpostResolution(): void {
  if (registered) return;
  registered = true;
  register(`data:text/javascript,${encodeURIComponent(HOOK_SOURCE)}`, {
    data: {
      outpostUrl: OUTPOST_ENTRY.href,
      // Any file of this installation: bare specifiers resolved from here find its node_modules.
      anchorUrl: import.meta.url,
    },
  });
  patchRequireResolution();
}

/**
 * The same fallback for require(): a tool file in a folder without
 * `"type": "module"` is compiled to CommonJS by tsx, and Node 20 offers no
 * public hook for require resolution, so the resolver is wrapped (as
 * module-alias and tsconfig-paths do).
 */
function patchRequireResolution(): void {
  type ResolveFilename = (request: string, parent: unknown, isMain: boolean, options?: unknown) => string;
  const loader = Module as unknown as { _resolveFilename?: ResolveFilename };
  const original = loader._resolveFilename;
  if (typeof original !== "function") return;
  const ours = createRequire(import.meta.url);
  loader._resolveFilename = function resolveFilename(request, parent, isMain, options) {
    try {
      return original.call(this, request, parent, isMain, options);
    } catch (error) {
      if (request === "outpost") return fileURLToPath(OUTPOST_ENTRY);
      if (request === "zod" || request.startsWith("zod/")) return ours.resolve(request);
      throw error;
    }
  };
}
