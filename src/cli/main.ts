#!/usr/bin/env node
/** Entry point of the `ensync-engine` binary. */
import { runCli } from './run-cli.js';

const exitCode = await runCli({
  argv: process.argv.slice(2),
  env: process.env,
  cwd: process.cwd(),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
// Exit explicitly: once the engine has stopped, nothing left running may keep the process alive.
process.exit(exitCode);
