/**
 * `secret://name` for the tool sources of one workspace: read from the vault each time a connection connects or
 * calls (a rotated secret is used from the next connect or call), registered with the Redactor before it is handed
 * out, and reported through `onSecretUsed` (the integrator records `secret.used` {name, connection}).
 */
import { OutpostError } from "../../core/errors.js";
import type { ConnectionSecrets } from "../../tools/index.js";
import type { Redactor } from "./redactor.js";
import { SECRET_NAME, type Vault } from "./vault.js";

export interface SecretResolverOptions {
  redactor: Redactor;
  /** After each resolution. Must not throw. */
  onSecretUsed?: (name: string, connection: string) => void;
}

export class VaultSecrets implements ConnectionSecrets {
  constructor(
    private readonly vault: Vault,
    private readonly workspace: string,
    private readonly options: SecretResolverOptions,
  ) {}

  async resolve(name: string, connection: string): Promise<string> {
    if (!SECRET_NAME.test(name))
      throw new OutpostError("invalid_project", `secret://${name} is not a valid reference`, "names are letters, digits, _ . -");
    const value = await this.vault.get(this.workspace, name);
    if (value === null) {
      throw new OutpostError(
        "not_found",
        `secret://${name} is not in the vault of workspace ${this.workspace}: outpost secrets set ${name}`,
        `store it with: outpost secrets set ${name} (value on stdin)`,
      );
    }
    this.options.redactor.add(name, value);
    this.options.onSecretUsed?.(name, connection);
    return value;
  }

  protect(label: string, value: string): void {
    this.options.redactor.add(label, value);
  }

  redact(text: string): string {
    return this.options.redactor.redact(text);
  }
}
