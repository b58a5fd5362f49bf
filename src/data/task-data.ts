/**
 * `ctx.data`: the data namespace as one attempt sees it. Every operation goes through the
 * namespace with the attempt as its actor, so that each object the task reads or writes is
 * recorded with its run, task and attempt (the lineage assets build on).
 */
import { BatonError } from '../core/errors.js';
import type { DataActorRef, DatabaseConnection, TaskData, TaskDataProvider } from '../core/task-context.js';
import type { DataNamespace } from './namespace.js';

/** The provider the runtime hands its engines and workers. */
export function taskDataProvider(namespace: DataNamespace): TaskDataProvider {
  return (actor) => new AttemptData(namespace, actor);
}

class AttemptData implements TaskData {
  constructor(
    private readonly namespace: DataNamespace,
    private readonly actor: DataActorRef,
  ) {}

  read(path: string): Promise<Uint8Array> {
    return this.namespace.readBytes(path, { actor: this.actor });
  }

  async readText(path: string): Promise<string> {
    return (await this.namespace.readBytes(path, { actor: this.actor })).toString('utf8');
  }

  async readJson<T = unknown>(path: string): Promise<T> {
    const text = await this.readText(path);
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new BatonError('TASK_INPUT', `${path} is not JSON: ${(error as Error).message}`, {
        hint: 'Read it with ctx.data.readText, or write it with ctx.data.writeJson.',
      });
    }
  }

  async stream(path: string): Promise<AsyncIterable<Uint8Array>> {
    return (await this.namespace.read(path, { actor: this.actor })).body;
  }

  write(path: string, body: Uint8Array | string | AsyncIterable<Uint8Array>, options: { contentType?: string } = {}) {
    return this.namespace.write(path, body, { ...options, actor: this.actor });
  }

  writeJson(path: string, value: unknown) {
    const text = JSON.stringify(value);
    if (text === undefined) {
      throw new BatonError('TASK_OUTPUT_INVALID', `${path}: ${typeof value} cannot be written as JSON`);
    }
    return this.namespace.write(path, text, { contentType: 'application/json', actor: this.actor });
  }

  list(path: string, options: { recursive?: boolean; limit?: number } = {}) {
    return this.namespace.list(path, options);
  }

  stat(path: string) {
    return this.namespace.stat(path);
  }

  remove(path: string): Promise<boolean> {
    return this.namespace.remove(path);
  }

  localFile(path: string): Promise<string> {
    return this.namespace.localFile(path, { actor: this.actor });
  }

  connect(mount: string): Promise<DatabaseConnection> {
    return this.namespace.connect(mount);
  }
}
