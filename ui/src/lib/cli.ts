/** The `baton` CLI command equivalent to an action taken in the UI, so that the UI teaches the CLI. */

/** Quotes a word for a POSIX shell when it needs it. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** An action on a run, with what it needs. */
export type RunAction =
  | { kind: 'cancel'; run: string; reason?: string }
  | { kind: 'retry-failed'; run: string }
  | { kind: 'retry-from'; run: string; task: string }
  | { kind: 'resume'; run: string }
  | { kind: 'approve' | 'reject'; run: string; task: string; by?: string; comment?: string }
  | { kind: 'signal'; run: string; event: string; payload?: string; task?: string }
  | { kind: 'start'; flow: string; params: Record<string, unknown> };

/** The CLI command line that does what `action` does. */
export function cliCommand(action: RunAction): string {
  const words = (...parts: (string | false | undefined)[]) =>
    parts.filter((p): p is string => typeof p === 'string' && p !== '').join(' ');
  switch (action.kind) {
    case 'cancel':
      return words('baton cancel', shellQuote(action.run));
    case 'retry-failed':
      return words('baton retry', shellQuote(action.run), '--from-failed');
    case 'retry-from':
      return words('baton retry', shellQuote(action.run), '--task', shellQuote(action.task), '--downstream');
    case 'resume':
      return words('baton resume', shellQuote(action.run));
    case 'approve':
    case 'reject':
      return words(
        `baton ${action.kind}`,
        shellQuote(action.run),
        shellQuote(action.task),
        action.by && `--by ${shellQuote(action.by)}`,
        action.comment && `--comment ${shellQuote(action.comment)}`,
      );
    case 'signal':
      return words(
        'baton signal',
        shellQuote(action.run),
        shellQuote(action.event),
        action.payload && `--data ${shellQuote(action.payload)}`,
      );
    case 'start':
      return words(
        'baton run',
        shellQuote(action.flow),
        ...Object.entries(action.params).map(
          ([k, v]) => `-p ${shellQuote(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)}`,
        ),
      );
  }
}
