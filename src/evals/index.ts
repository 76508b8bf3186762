/**
 * Evaluations: suites of cases (evals/*.yaml) run against an agent or a team on throwaway copies of the business
 * systems, scored from what the runs did, stored, and compared with an accepted baseline (a CI gate) or across
 * models. The pure part (suite schema, record, scorers, comparisons) needs no Outpost; runSuite is the I/O.
 */
export { type BaselineComparison, compareModels, compareWithBaseline, type ModelRow } from "./compare.js";
export { type CustomScorer, loadCustomScorers, runCustomScorer } from "./custom.js";
export { judgeCase } from "./judge.js";
export { type CaseRecord, type PolicyDenial, recordCase, type ToolCallRecord } from "./record.js";
export {
  acceptResult,
  type CaseResult,
  latestResult,
  listResults,
  readBaseline,
  readResult,
  type SuiteResult,
  saveResult,
} from "./results.js";
export { type RunSuiteOptions, runSuite } from "./runner.js";
export * from "./scorers.js";
export { type EvalCase, type Expectations, loadSuite, type Suite, SuiteError } from "./suite.js";
