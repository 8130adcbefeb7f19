import { errorMessage } from '../core/errors.ts';
// Step-by-step progress for long CLI operations: one line per step with its duration, and a live
// elapsed-time line while a step runs on a terminal.
export interface Progress {
  step<T>(title: string, fn: () => Promise<T>): Promise<T>;
  note(line: string): void;
}

export function createProgress(out: NodeJS.WriteStream = process.stderr): Progress {
  const tty = out.isTTY === true;
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
        out.write(`${tty ? '\r\x1b[K' : ''}✔ ${title} (${((Date.now() - t0) / 1000).toFixed(1)}s)\n`);
        return r;
      } catch (e) {
        if (timer) clearInterval(timer);
        out.write(`${tty ? '\r\x1b[K' : ''}✘ ${title}: ${errorMessage(e)}\n`);
        throw e;
      }
    },
    note(line) {
      out.write(`  ${line}\n`);
    },
  };
}
