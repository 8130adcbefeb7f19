// A progress spinner on stderr, used only when stderr is a terminal (never in pipes, logs or CI output).
import type { CliIO } from './framework.ts';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function startSpinner(io: Pick<CliIO, 'stderr'>, text: string, intervalMs = 100): { stop(): void } {
  let i = 0;
  const draw = () => io.stderr(`\r${FRAMES[i++ % FRAMES.length]} ${text}`);
  draw();
  const timer = setInterval(draw, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      // Erase the spinner line so the following output starts clean.
      io.stderr(`\r\x1b[2K`);
    },
  };
}
