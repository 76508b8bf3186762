#!/usr/bin/env node
// Runs the benchmark from source (TypeScript through tsx).
import { register } from "tsx/esm/api";

register();
await import("../bench/bench.ts");
