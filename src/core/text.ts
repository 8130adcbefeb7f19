// Bounding text that came from users before it reaches a log line or an error message: a hostile 100 KB value must
// not become a 100 KB log line or API response. Pure.

export const ECHO_LIMIT = 256;

/** The value itself when short, else its first `max` characters and how many were left out. */
export function truncate(value: string, max = ECHO_LIMIT): string {
  return value.length <= max ? value : `${value.slice(0, max)}…[${value.length - max} more characters]`;
}

/** JSON-quoted for a message (strings) or JSON text (anything else), bounded either way. */
export function quoteBounded(value: unknown, max = ECHO_LIMIT): string {
  if (typeof value === 'string') return JSON.stringify(truncate(value, max));
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return truncate(text, max);
}
