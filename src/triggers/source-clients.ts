/**
 * The npm clients that event sources need. They are optional peer dependencies of Baton,
 * so that a project without S3 or stream triggers never downloads them; a flow whose
 * trigger needs one that is not installed is refused when it is loaded, with the exact
 * `npm install` line, instead of failing when the trigger first starts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FlowSpec } from '../core/model.js';
import type { Problem } from '../core/errors.js';

/** Trigger kind → the npm package its source imports. */
export const SOURCE_CLIENTS: Readonly<Record<string, string>> = {
  s3: '@aws-sdk/client-s3',
  redis: 'ioredis',
  nats: 'nats',
  rabbitmq: 'amqplib',
};

/** Whether a package can be imported from Baton's own modules (the project's node_modules included). */
export type PackageProbe = (name: string) => boolean;

/**
 * Looks for `node_modules/<name>` from Baton's own folder upward, as Node's resolution
 * does, without importing anything (and whatever loader runs this module: a test runner
 * may not provide `import.meta.resolve`).
 */
export const canImport: PackageProbe = (name) => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'node_modules', name, 'package.json'))) return true;
    const parent = dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
};

let peerRanges: Readonly<Record<string, string>> | undefined;

/** The version range Baton is tested with, from its package.json, so the install line matches. */
function peerRange(name: string): string | undefined {
  if (!peerRanges) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        peerDependencies?: Record<string, string>;
      };
      peerRanges = pkg.peerDependencies ?? {};
    } catch {
      peerRanges = {};
    }
  }
  return peerRanges[name];
}

/** The `npm install` line that adds a source's client. */
export function installLine(name: string): string {
  const range = peerRange(name);
  return `npm install ${range ? `'${name}@${range}'` : name}`;
}

/** One problem per trigger of `spec` whose source needs a client that is not installed. */
export function missingClientProblems(spec: FlowSpec, file: string, probe: PackageProbe = canImport): Problem[] {
  const problems: Problem[] = [];
  const checked = new Map<string, boolean>();
  for (const trigger of spec.triggers ?? []) {
    const client = SOURCE_CLIENTS[trigger.kind];
    if (!client) continue;
    let present = checked.get(client);
    if (present === undefined) {
      present = probe(client);
      checked.set(client, present);
    }
    if (present) continue;
    problems.push({
      code: 'DEP_MISSING',
      message: `trigger ${trigger.name} (kind ${trigger.kind}) needs the npm package ${client}, which is not installed`,
      hint: `Run \`${installLine(client)}\` in the project, then validate again.`,
      location: { file, path: `triggers.${trigger.name}` },
    });
  }
  return problems;
}
