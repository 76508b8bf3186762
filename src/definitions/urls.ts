/**
 * Checks on a model's `base_url`, shared by the project loader (an issue at
 * load time) and the model layer (an error on the first call, for URLs that
 * only become known after `${VAR}` expansion).
 *
 * A user name or password in the URL (http://user:pass@host/v1) is rejected,
 * not turned into basic auth: fetch refuses such URLs, and a credential
 * belongs in an environment variable (`api_key_env`, or `headers:` with
 * `${VAR}`), never in a URL that is printed in banners and errors.
 */

export const BASE_URL_EXAMPLE = "http://localhost:11434/v1";

/** The URL with any user name and password removed, for messages. */
export function displayUrl(url: string): string {
  // Not via `new URL`: it would normalise (or reject) the text a person wrote.
  return url.replace(USERINFO, "$1");
}

/** An optional `scheme://`, then `user:password@` (also when the scheme is missing). */
const USERINFO = /^((?:[A-Za-z][A-Za-z0-9+.-]*:)?\/\/)?([^/?#]*)@/;

/** The password part of a URL's userinfo, if any (to redact it from messages). */
export function urlPassword(url: string): string | undefined {
  const userinfo = USERINFO.exec(url)?.[2];
  const colon = userinfo?.indexOf(":") ?? -1;
  return userinfo !== undefined && colon >= 0 ? userinfo.slice(colon + 1) : undefined;
}

/** What is wrong with `url` as a model's base URL (never quoting a password), or undefined. */
export function baseUrlProblem(url: string): string | undefined {
  const shown = displayUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${shown}" must be an absolute http(s) URL like ${BASE_URL_EXAMPLE}`;
  }
  // `localhost:11434/v1` parses, with "localhost:" as its scheme.
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return `"${shown}" must be an absolute http(s) URL like ${BASE_URL_EXAMPLE}`;
  }
  if (parsed.username || parsed.password) {
    return (
      `"${shown}" is written with a user name or password (user:password@), which cannot be sent that way; ` +
      'put the credential in an environment variable and name it with api_key_env, or send it with headers: (e.g. Authorization: "Basic ${PROXY_AUTH}")'
    );
  }
  return undefined;
}
