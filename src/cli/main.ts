/**
 * The `baton` command line. Parsing lives here; handlers live in ./commands and are
 * imported when their command runs, so `baton --version` loads almost nothing.
 *
 * Exit codes: 0 success; 1 a run failed or was cancelled; 2 usage or params; 3 invalid
 * flow definition; 4 not found; 5 wrong state (e.g. run owned elsewhere); 6 store error.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { redactUrl } from '../core/redact-url.js';
import type { CliContext } from './context.js';
import { cliOption } from './options.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function buildProgram(ctx: CliContext, setExit: (code: number) => void): Command {
  const program = new Command('baton')
    .description('Baton: a durable data orchestrator. Flows in TypeScript or YAML; runs that survive any crash.')
    .version(version(), '-V, --version')
    .option(
      '--db <path or URL>',
      'SQLite database file, or a postgres:// URL (default: .baton/baton.db in the project)',
    )
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout(s.replace(/\n$/, '')),
      writeErr: (s) => ctx.stderr(s.replace(/\n$/, '')),
    });

  // The configuration parses --db with the other database settings; a relative path is
  // relative to the working directory.
  const withDb = (): CliContext => {
    const db = program.opts<{ db?: string }>().db;
    return db === undefined
      ? ctx
      : {
          ...ctx,
          runtime: {
            ...ctx.runtime,
            flags: { ...ctx.runtime.flags, database: db, databaseBase: ctx.runtime.cwd },
          },
        };
  };
  const run = (fn: () => Promise<number>) => async () => setExit(await fn());

  program
    .command('init [dir]')
    .description('create a project: package.json, tsconfig.json, baton.yaml, a TypeScript flow and a YAML flow')
    .option('--force', 'overwrite existing files')
    .option(
      '--from <spec>',
      'how the project installs Baton: a tarball, a folder or a version (default: where this baton came from)',
    )
    .action((dir: string | undefined, o: { force?: boolean; from?: string }) =>
      run(async () => (await import('./commands/init.js')).initCommand(withDb(), dir, o))(),
    );

  program
    .command('validate [path]')
    .description('check flow files (a file, a folder, or the project) and report every problem')
    .option('--types', "also type-check TypeScript flows and task modules with the project's tsconfig.json")
    .option('--json', 'print JSON')
    .action((path: string | undefined, o: { json?: boolean; types?: boolean }) =>
      run(async () => (await import('./commands/inspect.js')).validateCommand(withDb(), path, o))(),
    );

  program
    .command('flows')
    .description("list the project's flows")
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) =>
      run(async () => (await import('./commands/inspect.js')).flowsCommand(withDb(), o))(),
    );

  program
    .command('run <flow>')
    .description('start a run of a flow (a name in the project, or a path to a flow file)')
    .option('-p, --param <name=value>', 'a param value (repeatable)', collect)
    .option('--params-file <file>', 'params from a JSON or YAML file')
    .option('--enqueue', 'only queue the run for worker processes (the default on PostgreSQL)')
    .option('--wait', 'with --enqueue: wait until the run ends, printing its log lines and progress')
    .option('--dedupe-key <key>', 'create the run only once for this key')
    .option(
      '--label <key=value>',
      'a label kept on the run, to find it with `baton runs --label` (repeatable)',
      collect,
    )
    .option('-q, --quiet', 'no task log lines and no progress, only the result')
    .option('--json', 'print the finished run as JSON')
    .action((flow: string, o: Record<string, unknown>) =>
      run(async () => (await import('./commands/execute.js')).runCommand(withDb(), flow, o))(),
    );

  program
    .command('runs')
    .description('list runs, newest first')
    .option('--flow <name>', 'only runs of this flow')
    .option('--state <state>', 'only runs in this state')
    .option('--parent <run>', 'only the child runs (subflows) of this run')
    .option('--label <key=value>', 'only runs with this label (repeatable: runs with every one)', collect)
    .addOption(cliOption('--limit <n>', 'at most n runs (default 50)'))
    .option('--json', 'print JSON')
    .action((o: { flow?: string; state?: string; parent?: string; label?: string[]; limit?: number; json?: boolean }) =>
      run(async () => (await import('./commands/inspect.js')).runsCommand(withDb(), o))(),
    );

  program
    .command('show <run>')
    .description(
      'a run with its tasks, attempts, durations, outputs, skip reasons, what waiting tasks wait for, child runs, and why it failed',
    )
    .option('--task <id>', 'one task run in full: its attempts, error with stack trace, output and logs command')
    .option('--full', 'print task outputs whole (they are cut to 40 characters by default)')
    .option('--events', 'also print the event history')
    .option('--expand', 'list every map item and every task of a group (they are summarized by default)')
    .option('--flow <name>', 'with `last`: the newest run of this flow')
    .option('--json', 'print JSON')
    .action((id: string, o: Record<string, unknown>) =>
      run(async () => (await import('./commands/inspect.js')).showCommand(withDb(), id, o))(),
    );

  program
    .command('graph <flow>')
    .description("print a flow's task graph: layers of tasks with their upstreams, or Mermaid or Graphviz DOT")
    .addOption(
      new Option('--format <format>', 'text, mermaid or dot').choices(['text', 'mermaid', 'dot']).default('text'),
    )
    .option('--json', 'print the graph as JSON (tasks with kind, layer and upstreams)')
    .action((flow: string, o: { format: 'text' | 'mermaid' | 'dot'; json?: boolean }) =>
      run(async () => (await import('./commands/graph.js')).graphCommand(withDb(), flow, o))(),
    );

  program
    .command('logs <run> [task]')
    .description('task logs of a run (stdout, stderr and logger lines)')
    .option('-f, --follow', 'keep printing until the run ends')
    .option('--flow <name>', 'with `last`: the newest run of this flow')
    .option('--json', 'one JSON object per line')
    .action((id: string, task: string | undefined, o: { follow?: boolean; json?: boolean; flow?: string }) =>
      run(async () => (await import('./commands/inspect.js')).logsCommand(withDb(), id, task, o))(),
    );

  program
    .command('retry <run>')
    .description('rerun a finished run: failed tasks, or chosen tasks; successful outputs are reused')
    .option('--from-failed', 'rerun every task that did not succeed')
    .option('--task <id>', 'rerun this task (repeatable)', collect)
    .option('--downstream', 'with --task: also rerun everything downstream')
    .option('--enqueue', 'only reopen the run for `baton worker` processes')
    .option('--flow <name>', 'with `last`: the newest run of this flow')
    .option('-q, --quiet', 'no task log lines and no progress, only the result')
    .option('--json', 'print the finished run as JSON')
    .action((id: string, o: Record<string, unknown>) =>
      run(async () => (await import('./commands/execute.js')).retryCommand(withDb(), id, o))(),
    );

  program
    .command('cancel <run>')
    .description('cancel a run (or one task with --task); running commands are killed')
    .option('--task <id>', 'cancel only this task')
    .option('--flow <name>', 'with `last`: the newest run of this flow')
    .option('--json', 'print JSON')
    .action((id: string, o: { task?: string; json?: boolean; flow?: string }) =>
      run(async () => (await import('./commands/execute.js')).cancelCommand(withDb(), id, o))(),
    );

  program
    .command('signal <run> <event>')
    .description('send an event to a run: it wakes the tasks waiting for it, or is kept until one waits')
    .option('--data <json>', 'the payload, as JSON; it becomes the output of the tasks it wakes (default null)')
    .option('--key <key>', 'match key: wakes only waits whose match equals it (and waits without a match)')
    .option('--by <name>', 'who sends it, recorded in the history (default: the OS user)')
    .option('--id <id>', 'signal id; a second signal with the same id does nothing (default: a new uuid)')
    .option('--json', 'print JSON')
    .action((id: string, event: string, o: { data?: string; key?: string; by?: string; id?: string; json?: boolean }) =>
      run(async () => (await import('./commands/requests.js')).signalCommand(withDb(), id, event, o))(),
    );

  for (const [verb, approved, what] of [
    ['approve', true, 'approve a task waiting for an approval; the run goes on'],
    [
      'reject',
      false,
      'reject a task waiting for an approval; it fails with APPROVAL_REJECTED (say why with --comment)',
    ],
  ] as const) {
    program
      .command(`${verb} <run> <task>`)
      .description(what)
      .option('--comment <text>', approved ? 'a note recorded with the decision' : 'why, recorded with the decision')
      .option('--by <name>', 'who decides; must be one of the approvers if the task names any (default: the OS user)')
      .option('--json', 'print JSON')
      .action((id: string, task: string, o: { comment?: string; by?: string; json?: boolean }) =>
        run(async () => (await import('./commands/requests.js')).decisionCommand(withDb(), id, task, approved, o))(),
      );
  }

  program
    .command('resume <run>')
    .description('continue an unfinished run in this process (after a crash, for example)')
    .option('--flow <name>', 'with `last`: the newest run of this flow')
    .option('-q, --quiet', 'no task log lines and no progress, only the result')
    .option('--json', 'print the finished run as JSON')
    .action((id: string, o: { json?: boolean; quiet?: boolean; flow?: string }) =>
      run(async () => (await import('./commands/execute.js')).resumeCommand(withDb(), id, o))(),
    );

  program
    .command('worker')
    .description(
      'execute work until stopped (SIGTERM drains): whole runs on the embedded store, queued tasks on PostgreSQL',
    )
    .addOption(cliOption('-c, --concurrency <n>', 'attempts running at once'))
    .option(
      '-l, --labels <a,b>',
      'labels this worker has; tasks that require labels go only to workers with all of them',
    )
    .action((o: { concurrency?: number; labels?: string }) =>
      run(async () => (await import('./commands/execute.js')).workerCommand(withDb(), o))(),
    );

  program
    .command('scheduler')
    .description('drive runs and triggers on PostgreSQL: several may run, one leads, the others stand by')
    .addOption(cliOption('--webhook-port <n>', 'also serve webhooks on this port'))
    .option('--webhook-host <host>', 'webhook address (default 127.0.0.1)')
    .action((o: { webhookPort?: number; webhookHost?: string }) =>
      run(async () => (await import('./commands/execute.js')).schedulerCommand(withDb(), o))(),
    );

  program
    .command('server')
    .description('serve the web UI, the HTTP API and the webhooks on one port, over either store')
    .addOption(cliOption('--port <n>', 'port (default 8420)'))
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .action((o: { port?: number; host?: string }) =>
      run(async () => (await import('./commands/server.js')).serverCommand(withDb(), o))(),
    );

  program
    .command('dev')
    .description('one process for development: executes runs, evaluates triggers, serves the UI, API and webhooks')
    .addOption(cliOption('--port <n>', 'port of the UI, API and webhooks (default 8420)'))
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--no-webhooks', 'do not take webhooks under /hooks')
    .action((o: { port?: number; host?: string; webhooks?: boolean }) =>
      run(async () => (await import('./commands/triggers.js')).devCommand(withDb(), o))(),
    );

  const triggers = program.command('triggers').description('triggers: list, pause, resume, history');
  triggers
    .command('list', { isDefault: true })
    .description('list triggers with their next fire time and last firing')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) =>
      run(async () => (await import('./commands/triggers.js')).triggersListCommand(withDb(), o))(),
    );
  triggers
    .command('pause <trigger>')
    .description('stop a trigger from creating runs (events arriving meanwhile are recorded as skipped)')
    .action((id: string) =>
      run(async () => (await import('./commands/triggers.js')).triggersPauseCommand(withDb(), id, true))(),
    );
  triggers
    .command('resume <trigger>')
    .description('let a paused trigger create runs again')
    .action((id: string) =>
      run(async () => (await import('./commands/triggers.js')).triggersPauseCommand(withDb(), id, false))(),
    );
  triggers
    .command('history <trigger>')
    .description('what a trigger did: each firing, the run it created or why none')
    .addOption(cliOption('--limit <n>', 'at most n entries (default 50)'))
    .option('--json', 'print JSON')
    .action((id: string, o: { limit?: number; json?: boolean }) =>
      run(async () => (await import('./commands/triggers.js')).triggersHistoryCommand(withDb(), id, o))(),
    );

  const backfill = program
    .command('backfill')
    .description("create one run per interval of a flow's cron or interval trigger between two dates (durable)")
    .argument('<flow>', 'a flow name in the project, or a path to a flow file')
    .option('--from <date>', 'fire times after this date or instant (ISO 8601; UTC unless an offset is given)')
    .option('--to <date>', 'fire times up to and including this date or instant')
    .option('--trigger <name>', 'which cron or interval trigger, when the flow has several')
    .addOption(cliOption('--max-parallel <n>', 'most runs of the backfill active at a time (default 4)'))
    .option('--rerun', 'also give a new run to intervals whose run did not succeed')
    .option('--plan', 'print the intervals and what would happen to each; change nothing')
    .option('--wait', 'create the runs from this process too, and print progress until every interval has finished')
    .option('-q, --quiet', 'with --wait: no log lines and no progress, only the result')
    .option('--json', 'print JSON')
    .action((flow: string, o: Record<string, unknown>) =>
      run(async () => (await import('./commands/backfill.js')).backfillCommand(withDb(), flow, o))(),
    );
  // The parent command takes --json too; commander gives it to whichever sees it first.
  const backfillJson = (o: { json?: boolean }) => ({ json: o.json ?? backfill.opts<{ json?: boolean }>().json });
  backfill
    .command('list')
    .description('backfills, newest first, with their progress (done, running, pending, failed)')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) =>
      run(async () => (await import('./commands/backfill.js')).backfillListCommand(withDb(), backfillJson(o)))(),
    );
  for (const [verb, to, what] of [
    ['pause', 'paused', 'stop creating runs (active runs continue)'],
    ['resume', 'running', 'continue a paused backfill'],
    ['cancel', 'cancelled', 'stop for good and cancel its active runs'],
  ] as const) {
    backfill
      .command(`${verb} <id>`)
      .description(`${what}`)
      .option('--json', 'print JSON')
      .action((id: string, o: { json?: boolean }) =>
        run(async () =>
          (await import('./commands/backfill.js')).backfillMoveCommand(withDb(), id, to, backfillJson(o)),
        )(),
      );
  }

  const data = program
    .command('data')
    .description('the data namespace: list, read, copy, inspect and remove data:// paths; the cache of remote reads');
  const dataCommand = async () => import('./commands/data.js');
  data
    .command('mounts')
    .description('list the mounts of baton.yaml and where each points')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => run(async () => (await dataCommand()).mountsCommand(withDb(), o))());
  data
    .command('ls <path>')
    .description('list the objects and folders under a data:// folder')
    .option('-r, --recursive', 'every object below the folder, not only its direct children')
    .addOption(cliOption('--limit <n>', 'most entries (default 1000)'))
    .option('--json', 'print JSON')
    .action((path: string, o: { json?: boolean; recursive?: boolean; limit?: number }) =>
      run(async () => (await dataCommand()).lsCommand(withDb(), path, o))(),
    );
  data
    .command('cat <path>')
    .description('print an object (remote objects are read through the cache)')
    .action((path: string) => run(async () => (await dataCommand()).catCommand(withDb(), path))());
  data
    .command('cp <from> <to>')
    .description('copy an object: between data:// paths, or between a file of this machine and a data:// path')
    .option('--json', 'print JSON')
    .action((from: string, to: string, o: { json?: boolean }) =>
      run(async () => (await dataCommand()).cpCommand(withDb(), from, to, o))(),
    );
  data
    .command('stat <path>')
    .description("an object's size, ETag and time, with the run and task that wrote it")
    .option('--json', 'print JSON')
    .action((path: string, o: { json?: boolean }) =>
      run(async () => (await dataCommand()).statCommand(withDb(), path, o))(),
    );
  data
    .command('rm <path>')
    .description('remove an object')
    .option('--json', 'print JSON')
    .action((path: string, o: { json?: boolean }) =>
      run(async () => (await dataCommand()).rmCommand(withDb(), path, o))(),
    );
  const cache = data.command('cache').description('the local cache of remote reads (s3 and http mounts)');
  cache
    .command('stats')
    .description('entries, size, limit and pinned entries of the cache')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => run(async () => (await dataCommand()).cacheStatsCommand(withDb(), o))());
  for (const [verb, what] of [
    ['pin', 'fetch a remote object into the cache and keep it there: eviction passes it by'],
    ['unpin', 'let eviction drop a pinned object again'],
    ['evict', 'drop the cached copies of an object, of the objects under a folder, or of a whole mount'],
  ] as const) {
    cache
      .command(`${verb} <path>`)
      .description(what)
      .option('--json', 'print JSON')
      .action((path: string, o: { json?: boolean }) =>
        run(async () => {
          const commands = await dataCommand();
          const handler = { pin: commands.pinCommand, unpin: commands.unpinCommand, evict: commands.evictCommand }[
            verb
          ];
          return handler(withDb(), path, o);
        })(),
      );
  }
  cache
    .command('clear')
    .description('drop every cached object, pinned ones included')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => run(async () => (await dataCommand()).clearCommand(withDb(), o))());

  const assetsCommands = async () => import('./commands/assets.js');
  program
    .command('assets')
    .description('list the assets tasks produced: latest version, time, producer, and whether each is stale')
    .addOption(cliOption('--limit <n>', 'most assets (default 1000)'))
    .option('--json', 'print JSON')
    .action((o: { json?: boolean; limit?: number }) =>
      run(async () => (await assetsCommands()).assetsCommand(withDb(), o))(),
    );
  const asset = program.command('asset').description('one asset: its versions, producing runs, lineage and checks');
  asset
    .command('show <key>')
    .description('show an asset: versions (newest first), upstream and downstream assets, checks of the latest version')
    .addOption(cliOption('--limit <n>', 'most versions, newest first (default 20)'))
    .option('--json', 'print JSON')
    .action((key: string, o: { json?: boolean; limit?: number }) =>
      run(async () => (await assetsCommands()).assetShowCommand(withDb(), key, o))(),
    );
  asset
    .command('materialize <key>')
    .description('run the task that produces an asset and the tasks it depends on (the rest of its flow is skipped)')
    .option('--wait', 'wait until the run ends (on SQLite, execute it in this process), printing its progress')
    .option('-q, --quiet', 'with --wait: no log lines and no progress, only the result')
    .option('--json', 'print the run as JSON')
    .action((key: string, o: { json?: boolean; wait?: boolean; quiet?: boolean }) =>
      run(async () => (await assetsCommands()).assetMaterializeCommand(withDb(), key, o))(),
    );

  const db = program.command('db').description('database maintenance');
  db.command('migrate')
    .description('apply pending migrations (also done on every start)')
    .action(() =>
      run(async () => {
        const { openRuntime } = await import('../app/runtime.js');
        const rt = await openRuntime(withDb().runtime);
        await rt.store.migrate();
        ctx.stdout(
          `database ${rt.config.databaseUrl ? redactUrl(rt.config.databaseUrl) : rt.config.databasePath} is up to date`,
        );
        await rt.close();
        return 0;
      })(),
    );

  db.command('prune')
    .description('delete finished runs (with their history and logs) that ended longer ago than a duration')
    .addOption(cliOption('--older-than <duration>', 'e.g. 30d').makeOptionMandatory())
    .option('--json', 'print JSON')
    .action((o: { olderThan: number; json?: boolean }) =>
      run(async () => (await import('./commands/execute.js')).pruneCommand(withDb(), o))(),
    );

  return program;
}

/** True for `1` or `true`: how boolean environment variables are switched on. */
function isOn(value: string | undefined): boolean {
  return value === '1' || value?.toLowerCase() === 'true';
}

/** Every command of the program, itself included (their output settings are copied at creation). */
function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap((c) => allCommands(c))];
}

/**
 * Runs the CLI; resolves with the exit code. A failing command prints its error on stderr:
 * text (message and hint, or every problem), or `{"error": …}` with `--json` or
 * `BATON_JSON_ERRORS=1`; an error Baton did not expect is a bug (INTERNAL, exit 70), and
 * its stack is printed only with `BATON_DEBUG=1`.
 */
export async function main(argv: readonly string[], ctx: CliContext): Promise<number> {
  const env = ctx.runtime.env;
  const jsonErrors = isOn(env.BATON_JSON_ERRORS);
  const debug = isOn(env.BATON_DEBUG);
  let code = 0;
  const program = buildProgram(ctx, (c) => {
    code = c;
  });
  // The usage error is printed below as JSON instead; help and version still print.
  if (jsonErrors) for (const c of allCommands(program)) c.configureOutput({ outputError: () => undefined });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
      )
        return 0;
      if (jsonErrors) {
        const { BatonError } = await import('../core/errors.js');
        const message = error.message.replace(/^error: /, '').replace(/\n/g, ' ');
        ctx.stderr(JSON.stringify({ error: new BatonError('USAGE', message).toJSON() }));
      }
      return 2;
    }
    const { asBatonError, errorJson, renderError } = await import('./render.js');
    if (jsonErrors || argv.includes('--json')) ctx.stderr(JSON.stringify({ error: errorJson(error, { debug }) }));
    else ctx.stderr(renderError(error, { debug }));
    return asBatonError(error).exitCode;
  }
}
