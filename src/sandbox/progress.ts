// Step-by-step progress for long CLI operations: one line per step with its duration, and a live
// elapsed-time line while a step runs on a terminal. Notes and warnings printed during a step go above
// that live line.
import { errorMessage } from '../core/errors.ts';

export interface Progress {
  step<T>(title: string, fn: () => Promise<T>): Promise<T>;
  note(line: string): void;
  /** Something the user must know that is not a failure (e.g. the sandbox runs without its node). */
  warn(line: string): void;
}

export function createProgress(out: NodeJS.WriteStream = process.stderr): Progress {
  const tty = out.isTTY === true;
  // On a terminal, the live line of the running step is redrawn after each note.
  const clear = () => (tty ? '\r\x1b[K' : '');
  return {
    async step(title, fn) {
      const t0 = Date.now();
      let timer: NodeJS.Timeout | undefined;
      if (tty) {
        const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        let i = 0;
        timer = setInterval(() => {
          out.write(`\r${frames[i++ % frames.length]} ${title} (${((Date.now() - t0) / 1000).toFixed(0)}s)`);
        }, 120);
      } else {
        out.write(`… ${title}\n`);
      }
      try {
        const r = await fn();
        if (timer) clearInterval(timer);
        out.write(`${clear()}✔ ${title} (${((Date.now() - t0) / 1000).toFixed(1)}s)\n`);
        return r;
      } catch (e) {
        if (timer) clearInterval(timer);
        out.write(`${clear()}✘ ${title}: ${errorMessage(e)}\n`);
        throw e;
      }
    },
    note(line) {
      out.write(`${clear()}  ${line}\n`);
    },
    warn(line) {
      out.write(`${clear()}! ${line}\n`);
    },
  };
}
