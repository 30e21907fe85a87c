/** A failure of the bench itself (not of what it measures), with a code a caller can test. */
export class BenchError extends Error {
  constructor(
    readonly code: 'NO_RESULT' | 'NO_PORT' | 'NOT_READY' | 'AUTH_FAILED',
    message: string,
  ) {
    super(message);
  }
}
