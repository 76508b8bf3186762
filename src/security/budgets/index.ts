/** Budgets (issue 4 §6): spend caps per workspace, team and agent, held by reservations around each model call. */
export {
  Budgets,
  type BudgetUsage,
  type CounterKey,
  capUsage,
  describe as describeExceededCap,
  type ExceededCap,
  type Reservation,
  type ReserveRequest,
  type ReserveResult,
  teamsOf,
} from "./budgets.js";
export { CHARS_PER_TOKEN, estimate } from "./estimate.js";
export { type BudgetPeriod, nextPeriodStart, periodKey } from "./periods.js";
