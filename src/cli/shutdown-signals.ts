/**
 * SIGINT/SIGTERM handling: the first signal asks for a graceful stop, a second one means
 * "now" (the operator gave up waiting), so it exits immediately with code 1.
 * The handlers stay installed until the process exits, so a late signal never falls back to
 * Node's default (die by signal) in the middle of closing the log.
 */
const SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

export interface ShutdownSignalHandlers {
  first(signal: NodeJS.Signals): void;
  second(signal: NodeJS.Signals): void;
}

export function watchShutdownSignals(handlers: ShutdownSignalHandlers): void {
  let received = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    received += 1;
    if (received === 1) handlers.first(signal);
    else handlers.second(signal);
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal);
}
