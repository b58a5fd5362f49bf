/**
 * The stop signal of a long-running command (`worker`, `scheduler`, `server`, `dev`):
 * resolves with the name of the first SIGTERM or SIGINT. Call it before the command says it
 * is up: a supervisor that stops it on reading that line must find the signal handled, not
 * the default that kills at once.
 */
export function stopSignal(): Promise<'SIGTERM' | 'SIGINT'> {
  return new Promise((resolve) => {
    const on = (signal: 'SIGTERM' | 'SIGINT') => () => {
      process.removeListener('SIGTERM', onTerm);
      process.removeListener('SIGINT', onInt);
      resolve(signal);
    };
    const onTerm = on('SIGTERM');
    const onInt = on('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
}
