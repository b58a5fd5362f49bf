import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FlowSpec } from '../../src/core/model.js';
import { SOURCE_CLIENTS, installLine, missingClientProblems } from '../../src/triggers/source-clients.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

function specWith(kinds: readonly string[]): FlowSpec {
  const triggers = kinds.map((kind, i) => ({ name: `t${i}`, kind, config: {}, params: {} }));
  return { name: 'f', triggers } as unknown as FlowSpec;
}

describe('optional trigger clients', () => {
  it('are optional peers of the package, never plain dependencies', () => {
    for (const client of Object.values(SOURCE_CLIENTS)) {
      expect(pkg.peerDependencies[client], client).toBeDefined();
      expect(pkg.peerDependenciesMeta[client]?.optional, client).toBe(true);
      expect(pkg.dependencies[client], client).toBeUndefined();
    }
  });

  it('refuses each trigger whose client is missing, with the install line of its tested range', () => {
    const problems = missingClientProblems(
      specWith(['cron', 'redis', 'nats', 'redis']),
      'flows/f.yaml',
      (name) => name === 'nats',
    );
    expect(problems.map((p) => [p.code, p.location?.path])).toEqual([
      ['DEP_MISSING', 'triggers.t1'],
      ['DEP_MISSING', 'triggers.t3'],
    ]);
    expect(problems[0]?.hint).toContain(`npm install 'ioredis@${pkg.peerDependencies.ioredis}'`);
    expect(installLine('@aws-sdk/client-s3')).toBe(
      `npm install '@aws-sdk/client-s3@${pkg.peerDependencies['@aws-sdk/client-s3']}'`,
    );
  });

  it('finds the clients this repository installs for its own tests', () => {
    expect(missingClientProblems(specWith(Object.keys(SOURCE_CLIENTS)), 'f.yaml')).toEqual([]);
  });
});
