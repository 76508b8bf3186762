/**
 * A project's demo (`<project>/demo.ts`, played by `outpost demo`): scenarios to run headless, and
 * how to read and check the state of the project's business systems afterwards.
 */
export interface DemoScenario {
  /** Short id, e.g. "damaged_order" (`outpost demo --scenario damaged_order`). */
  name: string;
  title: string;
  /** The agent the customer's message goes to. */
  agent: string;
  input: string;
}

export interface Demo<State = unknown> {
  scenarios: DemoScenario[];
  /** Reads the business systems' state; `dataDir` is Outpost's data folder. */
  state?(dataDir: string): State | Promise<State>;
  /** What is wrong with the state after `scenario` (empty: as expected). */
  check?(state: State, scenario: string): string[];
  /** A few lines saying what the systems hold for `scenario`. */
  describe?(state: State, scenario: string): string[];
}
