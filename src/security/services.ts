/**
 * The security services a running Outpost offers its HTTP API and CLI. Each part adds its member here;
 * the server registers a part's routes only when the part is present.
 */
export type SecurityServices = {};
