/**
 * A trigger's history keeps each reason within limits.error_bytes: a source that fails to
 * start with a message of megabytes is recorded with the head of it and a marker. The cut
 * happens before the store, so one store shows it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TriggerProject } from './trigger-harness.js';
import { BACKENDS, flowYaml, openTriggerProject } from './trigger-harness.js';

describe('trigger history', () => {
  let project: TriggerProject | undefined;
  afterEach(async () => {
    await project?.close();
    project = undefined;
  });

  it('records a reason of megabytes cut, with a marker giving its size', async () => {
    const sqlite = BACKENDS.find((b) => b.name === 'sqlite');
    if (!sqlite) throw new Error('no sqlite backend');
    project = await openTriggerProject(sqlite, {
      ingest: flowYaml('ingest', ['triggers:', '  drop: { kind: file, path: ../inbox, poll: 1h }']),
    });
    const huge = 'e'.repeat(5 * 1024 * 1024);
    const service = project.rt.createTriggerService({
      tickMs: 3_600_000,
      errorLimitBytes: 4096,
      sources: new Map([
        [
          'file',
          () => {
            throw new Error(huge);
          },
        ],
      ]),
    });
    await service.start();
    await service.stop();
    const [firing] = await project.firings('ingest/drop');
    expect(firing?.outcome).toBe('error');
    expect(Buffer.byteLength(firing?.reason ?? '')).toBeLessThanOrEqual(4096);
    const whole = Buffer.byteLength(`could not start: ${huge}`);
    expect(firing?.reason).toMatch(
      new RegExp(
        `^could not start: e+ … \\[reason truncated: ${whole} bytes, at most the first 4096 kept \\(limits\\.error_bytes\\)\\]$`,
      ),
    );
  });
});
