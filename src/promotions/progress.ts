// `lanyard promote --wait` output (docs/promotions.md#cli): one line per change, the same on a terminal or in CI. Pure:
// the previous and the new Promotion snapshot in, the lines to print out.
import type { StepStatus } from './status.ts';
import type { Promotion, PromotionStatus } from './types.ts';
import { formatDuration } from '../core/duration.ts';
import { firstLine, isTerminal } from './status.ts';

export const EXIT_BY_PHASE: Record<string, number> = { Succeeded: 0, Failed: 10, Errored: 11, Aborted: 12 };

function seconds(from?: string, to?: string): string {
  const a = Date.parse(from ?? '');
  const b = Date.parse(to ?? '');
  return Number.isFinite(a) && Number.isFinite(b) ? formatDuration(Math.max(0, b - a)) : '?';
}

function stepLine(step: StepStatus, index: number, total: number, width: number): string | undefined {
  const head = `[${index + 1}/${total}] ${String(step.name).padEnd(width)}    `;
  switch (step.phase) {
    case 'Running':
      return `${head}running`;
    case 'Succeeded':
      return `${head}succeeded in ${seconds(step.startedAt, step.finishedAt)}`;
    case 'Failed': {
      const detail = firstLine(step.message);
      if (step.exitCode === undefined) return `${head}failed${detail ? `: ${detail}` : ''}`;
      return `${head}failed in ${seconds(step.startedAt, step.finishedAt)}, exit code ${step.exitCode}${detail ? `: ${detail}` : ''}`;
    }
    case 'Errored':
      return `${head}errored${step.message ? `: ${firstLine(step.message)}` : ''}`;
    case 'Aborted':
      return `${head}aborted`;
    default:
      return undefined;
  }
}

/** Lines describing what changed between `prev` (undefined at first sight) and `next`. */
export function progressLines(
  prev: Promotion | undefined,
  next: Promotion & { metadata: { name: string } },
): string[] {
  const name = next.metadata.name;
  const s: PromotionStatus = next.status ?? {};
  const p: PromotionStatus = prev?.status ?? {};
  const lines: string[] = [];
  if (!isTerminal(s.phase)) {
    if (s.phase === 'Running' && s.pod && p.phase !== 'Running') {
      lines.push(
        `${name}: running in pod ${s.pod.namespace}/${s.pod.name} as serviceaccount "${s.pod.serviceAccount}"`,
      );
    } else if (s.phase !== 'Running' && s.message && s.message !== p.message && s.message !== 'queued') {
      lines.push(`${name}: ${s.message}`);
    } else if (
      s.phase === 'Running' &&
      s.message !== p.message &&
      /^waiting: pod held by scheduling gate /.test(s.message ?? '')
    ) {
      // Held at the identity gate: the verifier's reason, which only the promotion's status carries to the user.
      lines.push(`${name}: ${s.message}`);
    }
  }
  const steps = s.steps ?? [];
  const before = p.steps ?? [];
  const width = Math.max(0, ...steps.map((st) => String(st.name).length));
  steps.forEach((st, i) => {
    const old = before[i];
    if (old?.phase === st.phase) return;
    // A step that went from Pending straight to an end still gets its "running" line, so logs read the same.
    if (
      st.phase !== 'Running' &&
      st.phase !== 'Pending' &&
      st.phase !== 'Skipped' &&
      old?.phase !== 'Running' &&
      st.startedAt
    ) {
      lines.push(stepLine({ ...st, phase: 'Running' }, i, steps.length, width)!);
    }
    const line = stepLine(st, i, steps.length, width);
    if (line) lines.push(line);
  });
  if (isTerminal(s.phase) && !isTerminal(p.phase))
    lines.push(`promotion/${name} ${s.phase}: ${s.message ?? ''}`.trimEnd());
  return lines;
}
