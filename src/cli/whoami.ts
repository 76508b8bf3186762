import os from "node:os";

/** Who is deciding, as recorded with approvals made from this terminal. */
export function whoAmI(): string | undefined {
  try {
    return os.userInfo().username || process.env.USER || undefined;
  } catch {
    return process.env.USER || undefined;
  }
}
