/**
 * Every environment variable Baton reads, in one list. docs/operations.md documents each
 * one, and a test checks both ways that the list, the code that reads `BATON_*` variables
 * and the docs agree. Variables Baton sets for the commands it runs (`BATON_RUN_ID`,
 * `BATON_OUTPUT`, …) are not read and are documented with shell tasks instead.
 */
export const ENV_VARS = {
  BATON_DATABASE_URL: 'a PostgreSQL URL; selects the PostgreSQL store (over BATON_DATABASE and baton.yaml)',
  BATON_DATABASE: 'the store: a SQLite file relative to the project root, or a PostgreSQL URL',
  BATON_POOL_SIZE: 'PostgreSQL connections per process',
  BATON_CONCURRENCY: 'attempt bodies running at once per process',
  BATON_JSON_ERRORS: '`1`: a failing command prints its error as one JSON object on stderr',
  BATON_DEBUG: '`1`: an error also prints its stack (and its causes), paths into Baton included',
  BATON_NATS_URL: 'the NATS server of `nats` triggers without `url`',
  BATON_REDIS_URL: 'the Redis server of `redis` triggers without `url`',
  BATON_RABBITMQ_URL: 'the RabbitMQ broker of `rabbitmq` triggers without `url`',
  BATON_CRASH_AT: 'tests only: kill the process at a named point of the engine',
  BATON_CLOCK_SKEW_MS: "tests only: act as if this machine's clock were off by this many ms",
} as const satisfies Record<`BATON_${string}`, string>;

export type EnvVarName = keyof typeof ENV_VARS;
