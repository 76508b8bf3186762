/** The runtime: durable runs (decide + executor), the scheduler, and a running Outpost. */
export { type Action, type DecideContext, decide } from "./decide.js";
export { type Outpost, type OutpostOptions, startOutpost, VERSION } from "./outpost.js";
export { type ReplayMatch, type ReplayOptions, type ReplayReport, replayRun } from "./replay.js";
export { describeStep, requestDifference, type TraceRow, type TraceStep } from "./replay-trace.js";
export { apply, initialState, type RunState, replay } from "./state.js";
export { runView } from "./views.js";
