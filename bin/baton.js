#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

// A reader that goes away (`baton logs ... | head`) must not take the command down mid-run.
process.stdout.on('error', (error) => {
  if (error.code !== 'EPIPE') throw error;
});

const code = await main(process.argv.slice(2), {
  runtime: {
    cwd: process.cwd(),
    env: process.env,
    notice: (text) => process.stderr.write(`${text}\n`),
  },
  stdout: (text) => process.stdout.write(`${text}\n`),
  stdoutStream: process.stdout,
  stderr: (text) => process.stderr.write(`${text}\n`),
  exit: (c) => process.exit(c),
});
process.exitCode = code;
