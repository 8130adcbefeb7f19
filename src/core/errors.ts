// What a caught value says, in one place (docs/adr/1030-errors-backoff-dependencies.md). Logs carry the error itself
// (`log.warn({ err: e }, …)`: pino's `err` serializer keeps message, stack and cause); status conditions, Events and
// CLI output carry the message this module returns. Pure.

/**
 * The message of anything a `catch` can receive: an Error's message, a `{ message }` object's message, else the
 * value's string form. Never throws (a value whose `toString` throws still yields a message).
 */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (e !== null && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') {
    return (e as { message: string }).message;
  }
  try {
    return String(e);
  } catch {
    return Object.prototype.toString.call(e);
  }
}
