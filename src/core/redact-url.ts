/**
 * The one way Baton shows a URL that may carry credentials (a database URL, a broker URL):
 * the password is replaced by `***`, whether the URL is well formed or not, so that no
 * message, log line, error or file name ever holds it. Over-redacting a strange URL (the
 * user name hidden with the password) is preferred to showing a part of its password.
 */

/** Query parameters that carry a password (`?password=`, `?sslpassword=`). */
const PASSWORD_PARAM = /([?&;][^=&#;]*pass[^=&#;]*=)[^&#;]*/gi;

/**
 * Where the user info of `url` is, if it has one: it ends at the last `@` (a password may
 * hold `@`, `/` or `?` unescaped) and starts after the first `//`, else after the first
 * `/`, else at the start, so that a URL missing its colon or a slash is redacted too.
 */
function userInfoOf(url: string): { start: number; end: number } | undefined {
  const end = url.lastIndexOf('@');
  if (end < 0) return undefined;
  const slashes = url.indexOf('//');
  const slash = url.indexOf('/');
  const start = slashes >= 0 && slashes < end ? slashes + 2 : slash >= 0 && slash < end ? slash + 1 : 0;
  return { start, end };
}

/**
 * `url` with its password (in the user info, or in a query parameter) replaced by `***`.
 * Example: `redactUrl('postgres://baton:s3cret@db:5432/baton')` → `postgres://baton:***@db:5432/baton`.
 */
export function redactUrl(url: string): string {
  let shown = url;
  const info = userInfoOf(url);
  if (info) {
    const colon = url.indexOf(':', info.start);
    if (colon >= 0 && colon < info.end) shown = `${url.slice(0, colon)}:***${url.slice(info.end)}`;
  }
  return shown.replace(PASSWORD_PARAM, '$1***');
}

/**
 * `text` (a driver's error message, say) with every copy of `url` replaced by its redacted
 * form, and its password, wherever it appears alone, replaced by `***`.
 */
export function redactUrlIn(text: string, url: string): string {
  let out = text.split(url).join(redactUrl(url));
  for (const secret of passwordsOf(url)) out = out.split(secret).join('***');
  return out;
}

/** The password of `url` as written and as decoded, when it has one worth looking for. */
function passwordsOf(url: string): string[] {
  const info = userInfoOf(url);
  const colon = info ? url.indexOf(':', info.start) : -1;
  const raw = info && colon >= 0 && colon < info.end ? url.slice(colon + 1, info.end) : '';
  const found = new Set<string>();
  // A one- or two-character password would turn unrelated text into stars.
  if (raw.length >= 3) {
    found.add(raw);
    try {
      found.add(decodeURIComponent(raw));
    } catch {
      // Not percent-encoded text: the raw form is the one to look for.
    }
  }
  for (const p of url.matchAll(PASSWORD_PARAM)) {
    const value = url.slice((p.index ?? 0) + (p[1]?.length ?? 0)).split(/[&#;]/)[0] ?? '';
    if (value.length >= 3) found.add(value);
  }
  return [...found].sort((a, b) => b.length - a.length);
}

/**
 * A driver error whose text may hold `url` or its password, as a message and a `cause` to
 * keep, both redacted: the error itself when it holds neither, else a copy with the same
 * name and `code` whose message and stack are redacted.
 */
export function redactErrorUrl(error: unknown, url: string): { message: string; cause: unknown } {
  const message = error instanceof Error ? error.message : String(error);
  const redacted = redactUrlIn(message, url);
  const stack = error instanceof Error ? (error.stack ?? '') : '';
  if (redacted === message && redactUrlIn(stack, url) === stack) return { message, cause: error };
  const copy = new Error(redacted);
  copy.name = error instanceof Error ? error.name : 'Error';
  copy.stack = redactUrlIn(stack, url);
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) Object.assign(copy, { code });
  return { message: redacted, cause: copy };
}
