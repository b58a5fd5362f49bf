/**
 * Keeps Baton's own files out of what users read. Node and tsx name the importing module
 * in their messages ("imported from …/dist/define/module-loader.js") and stacks list
 * Baton's frames: neither tells a user anything about their flow, and the paths change
 * with every install. Pure: the caller passes the package root it knows.
 */

/** Baton's code folders under the package root. */
const CODE_DIRS = ['dist', 'src'];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * `text` without paths into `<root>/dist` or `<root>/src`: an "imported from" clause
 * naming one is dropped, a stack frame in one is dropped, any other such path reads
 * `<baton>`. The queries Baton's module loader adds to module URLs (`?rev=…`,
 * `?namespace=…`) are dropped too.
 * Example: `withoutInternalPaths("Cannot find module 'x' imported from /opt/b/dist/a.js", '/opt/b')`
 * → `"Cannot find module 'x'"`.
 */
export function withoutInternalPaths(text: string, root: string): string {
  const base = root.replace(/[\\/]+$/, '');
  if (base === '') return text;
  const prefixes = [base, `file://${encodeURI(base.replace(/\\/g, '/'))}`].map(escapeRegExp).join('|');
  const internal = `(?:${prefixes})[\\\\/](?:${CODE_DIRS.join('|')})[\\\\/][^\\s'"\`)]*`;
  return text
    .replace(new RegExp(`^[ \\t]*at [^\\n]*(?:${internal})[^\\n]*(?:\\n|$)`, 'gm'), '')
    .replace(new RegExp(` imported from ${internal}`, 'g'), '')
    .replace(new RegExp(internal, 'g'), '<baton>')
    .replace(/(\.[cm]?[jt]sx?)(?:[?&](?:rev|namespace)=[\w.-]+)+/g, '$1')
    .replace(/\n+$/, '');
}
