/** Whether the process should stay alive after its command returns (a server does). */
let serving = false;

export function markServing(): void {
  serving = true;
}

export function isServing(): boolean {
  return serving;
}
