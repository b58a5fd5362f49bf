/**
 * A module resolution hook (Node's `module.register`) for projects that run Baton without
 * having installed it, such as a folder just made by `baton init` or a project run with
 * `npx --package baton-orchestrator baton`: an import of Baton's own package name that the
 * project cannot resolve resolves to the Baton that runs it. A project that has Baton in
 * its node_modules never reaches the fallback.
 */

interface HookData {
  /** Baton's npm name. */
  readonly name: string;
  /** URL of Baton's own package.json: a package resolves its own name from there. */
  readonly packageJsonUrl: string;
}

interface ResolveContext {
  readonly parentURL?: string;
  readonly conditions: readonly string[];
  readonly importAttributes?: Record<string, string>;
}

type NextResolve = (specifier: string, context?: ResolveContext) => Promise<{ url: string }>;

let data: HookData | undefined;

export function initialize(hookData: HookData): void {
  data = hookData;
}

export async function resolve(specifier: string, context: ResolveContext, next: NextResolve): Promise<{ url: string }> {
  try {
    return await next(specifier, context);
  } catch (error) {
    const own = data && (specifier === data.name || specifier.startsWith(`${data.name}/`));
    if (!own || (error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    return next(specifier, { ...context, parentURL: data?.packageJsonUrl });
  }
}
