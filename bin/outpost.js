#!/usr/bin/env node
// The `outpost` command. Runs the TypeScript sources directly through tsx, so
// there is no build step; the CLI itself loads heavy modules only when needed.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
