/**
 * The secret vault (AES-256-GCM in the store), `secret://` resolution for connections, and the Redactor that keeps
 * secret values out of tool outputs, events, logs and API responses.
 */
export { keyId, loadVaultKey, VAULT_KEY_FILE, type VaultKey } from "./key.js";
export { MIN_SECRET_LENGTH, Redactor, secretForms } from "./redactor.js";
export { type SecretResolverOptions, VaultSecrets } from "./resolver.js";
export { checkSecretName, SECRET_NAME, type SecretChange, type SecretInfo, Vault, type VaultOptions } from "./vault.js";
