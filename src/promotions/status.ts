// Reading a promotion pod (docs/promotions.md#step-outputs, docs/promotions.md#lifecycle): pod + steps -> the Promotion's phase, message and
// per-step status. Pure; the controller decides what to write and when to delete.
import type { ContainerState, ContainerStatus, Pod } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../core/kube-object.ts';
import { ANN_STEP_TIMEOUTS, outputBudget } from './build.ts';
import { formatDuration } from '../core/duration.ts';

export type StepPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Errored' | 'Skipped' | 'Aborted';
const TERMINAL_PHASES: readonly string[] = ['Succeeded', 'Failed', 'Errored', 'Aborted'];

/** RFC 3339 with whole seconds, as Kubernetes writes timestamps. */
export function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function isTerminal(phase: unknown): phase is 'Succeeded' | 'Failed' | 'Errored' | 'Aborted' {
  return typeof phase === 'string' && TERMINAL_PHASES.includes(phase);
}

export interface StepStatus {
  name: string;
  uses: string;
  container: string;
  phase: StepPhase;
  exitCode?: number;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  output?: Record<string, unknown>;
}

export interface PodReading {
  phase: 'Running' | 'Succeeded' | 'Failed' | 'Errored';
  /** Set for terminal readings: `StepFailed`, `StepTimedOut`, `PromotionTimedOut`, `PodEvicted`, `PodFailed`. */
  reason?: string;
  message: string;
  currentStep: number;
  steps: StepStatus[];
  /** The pod must be deleted by the controller (step timeout), after the status is written. */
  deletePod: boolean;
  /** Epoch ms of the next step deadline, for a requeue. */
  nextDeadline?: number;
}

const OUTPUT_KEY_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** docs/promotions.md#step-outputs: a step's termination message -> `output`, or `{}` and a note on why it was ignored. */
export function parseOutput(
  message: string | undefined,
  budget: number,
): { output: Record<string, unknown>; note?: string } {
  const text = message ?? '';
  if (text.trim() === '') return { output: {} };
  const cut =
    Buffer.byteLength(text) >= budget
      ? ` (the message may have been cut at the step's ${budget}-byte budget)`
      : '';
  if (text.trimStart().startsWith('{')) {
    try {
      const v: unknown = JSON.parse(text);
      if (v !== null && typeof v === 'object' && !Array.isArray(v))
        return { output: v as Record<string, unknown> };
      return { output: {}, note: 'output ignored: not a JSON object' };
    } catch (e) {
      return { output: {}, note: `output ignored: not valid JSON: ${(e as Error).message}${cut}` };
    }
  }
  const out: Record<string, unknown> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = eq < 0 ? '' : line.slice(0, eq);
    if (!OUTPUT_KEY_RE.test(key)) {
      return { output: {}, note: `output ignored: line ${i + 1} is not KEY=VALUE${cut}` };
    }
    out[key] = line.slice(eq + 1);
  }
  return { output: out };
}

/** The step timeouts the pod was built with (seconds by container name). */
export function stepTimeouts(pod: KubeObject | undefined): Record<string, number> {
  const raw = pod?.metadata?.annotations?.[ANN_STEP_TIMEOUTS];
  if (typeof raw !== 'string') return {};
  try {
    const v = JSON.parse(raw) as Record<string, number>;
    return v && typeof v === 'object' ? v : {};
  } catch {
    return {};
  }
}

/** The first line of a (possibly multi-line) message, trimmed. */
export function firstLine(s: string | undefined): string {
  return (s ?? '').trim().split(/\r?\n/)[0] ?? '';
}

function readStep(
  base: Pick<StepStatus, 'name' | 'uses' | 'container'>,
  cs: ContainerStatus | undefined,
  budget: number,
): StepStatus {
  const st: StepStatus = { ...base, phase: 'Pending' };
  const state: ContainerState = cs?.state ?? {};
  if (state.terminated) {
    const t = state.terminated;
    st.exitCode = Number(t.exitCode);
    if (t.startedAt) st.startedAt = t.startedAt;
    if (t.finishedAt) st.finishedAt = t.finishedAt;
    if (st.exitCode === 0) {
      st.phase = 'Succeeded';
      const parsed = parseOutput(t.message, budget);
      st.output = parsed.output;
      if (parsed.note) st.message = parsed.note;
    } else {
      st.phase = 'Failed';
      const reason = t.reason && t.reason !== 'Error' ? `${t.reason}: ` : '';
      st.message = `${reason}${(t.message ?? '').trim()}`.replace(/: $/, '');
    }
  } else if (state.running) {
    st.phase = 'Running';
    if (state.running.startedAt) st.startedAt = state.running.startedAt;
  } else if (state.waiting && state.waiting.reason && state.waiting.reason !== 'PodInitializing') {
    st.message = `waiting: ${state.waiting.reason}${state.waiting.message ? `: ${state.waiting.message}` : ''}`;
  }
  return st;
}

function skipAfter(steps: StepStatus[], index: number): void {
  for (let j = index + 1; j < steps.length; j++) {
    if (steps[j]!.phase === 'Pending' || steps[j]!.phase === 'Running')
      steps[j] = { ...steps[j]!, phase: 'Skipped', message: undefined };
  }
}

/**
 * The message of a promotion whose pod waits at the identity gate: with the verifier's last note when there is one
 * (`gateNote`, from its Warning Events in the agent namespace, which project users cannot read), and whether the
 * verify deadline has passed (docs/verified-start.md).
 */
export function gateMessage(pod: KubeObject | undefined, gateNote: string | undefined): string {
  const base = 'waiting: pod held by scheduling gate lanyard.dev/identity';
  if (!gateNote) return base;
  const failed = pod?.metadata?.annotations?.['lanyard.dev/identity-verification'] === 'failed';
  return `${base} (${failed ? 'identity not verified within the deadline; retrying' : 'identity not verified yet'}): ${gateNote}`;
}

/**
 * Reads the pod. `steps` are the Promotion's steps (names, uses, containers); `now` (epoch ms) decides step
 * timeouts, which are the controller's: a timed-out step is reported as terminal and the pod must then go.
 */
export function readPod(
  pod: Pod | undefined,
  steps: Array<Pick<StepStatus, 'name' | 'uses' | 'container'>>,
  now: number,
  gateNote?: string,
): PodReading {
  const n = steps.length;
  const budget = outputBudget(n);
  const statuses = new Map<string, ContainerStatus>();
  for (const cs of pod?.status?.initContainerStatuses ?? []) statuses.set(cs.name, cs);
  const out = steps.map((s) => readStep(s, statuses.get(s.container), budget));
  const firstOpen = out.findIndex((s) => s.phase !== 'Succeeded');
  const r: StepsRead = { pod, out, n, firstOpen, where: (i) => `step "${out[i]!.name}" (${i + 1} of ${n})` };
  const ended = endedReading(r) ?? stepTimedOut(r, now);
  if (ended) return ended;
  const current = firstOpen < 0 ? n : firstOpen + 1;
  return {
    phase: 'Running',
    message: runningMessage(r, gateNote),
    currentStep: current,
    steps: out,
    deletePod: false,
    nextDeadline: runningStepDeadline(r)?.deadline,
  };
}

/** The pod and its steps as read, for the readings below (`firstOpen`: the first step not Succeeded, or -1). */
interface StepsRead {
  pod: Pod | undefined;
  out: StepStatus[];
  n: number;
  firstOpen: number;
  /** `step "<name>" (<i+1> of <n>)`. */
  where: (i: number) => string;
}

/** The reading of a pod that has ended, or whose first failed step ends it; undefined while it runs. */
function endedReading(r: StepsRead): PodReading | undefined {
  const { pod, out, n, firstOpen, where } = r;
  const podPhase = pod?.status?.phase;
  const podReason = pod?.status?.reason;
  const done = (reading: Omit<PodReading, 'steps' | 'deletePod'>): PodReading => ({
    ...reading,
    steps: out,
    deletePod: false,
  });
  if (podPhase === 'Succeeded') {
    return done({
      phase: 'Succeeded',
      reason: 'Succeeded',
      message: `all ${n} steps succeeded`,
      currentStep: n,
    });
  }
  const i = firstOpen < 0 ? n - 1 : firstOpen;
  if (podPhase === 'Failed' && podReason === 'DeadlineExceeded') {
    const deadline = Number(pod?.spec?.activeDeadlineSeconds ?? 0);
    if (out[i]!.phase !== 'Succeeded')
      out[i] = { ...out[i]!, phase: 'Failed', message: 'stopped at the promotion timeout' };
    skipAfter(out, i);
    return done({
      phase: 'Failed',
      reason: 'PromotionTimedOut',
      message: `promotion timed out after ${formatDuration(deadline * 1000)} during ${where(i)}`,
      currentStep: i + 1,
    });
  }
  if (podPhase === 'Failed' && podReason === 'Evicted') {
    if (out[i]!.phase !== 'Succeeded') out[i] = { ...out[i]!, phase: 'Errored', message: 'pod evicted' };
    skipAfter(out, i);
    const why = firstLine(pod?.status?.message);
    return done({
      phase: 'Errored',
      reason: 'PodEvicted',
      message: `pod evicted during ${where(i)}${why ? `: ${why}` : ''}`,
      currentStep: i + 1,
    });
  }
  // Under restartPolicy Never the first non-zero exit decides, whether or not the kubelet has failed the pod yet.
  const failed = out.findIndex((s) => s.phase === 'Failed');
  if (failed >= 0) {
    skipAfter(out, failed);
    const s = out[failed]!;
    const detail = firstLine(s.message);
    return done({
      phase: 'Failed',
      reason: 'StepFailed',
      message: `${where(failed)} failed with exit code ${s.exitCode}${detail ? `: ${detail}` : ''}`,
      currentStep: failed + 1,
    });
  }
  if (podPhase === 'Failed') {
    skipAfter(out, firstOpen < 0 ? n : firstOpen - 1);
    const why = [podReason, firstLine(pod?.status?.message)].filter(Boolean).join(': ');
    return done({
      phase: 'Failed',
      reason: 'PodFailed',
      message: `the pod failed${firstOpen < 0 ? ' after the last step' : ` during ${where(i)}`}${why ? `: ${why}` : ''}`,
      currentStep: i + 1,
    });
  }
  return undefined;
}

/** The running step's timeout (lanyard.dev/step-timeouts) and when it passes, when the step has one. */
function runningStepDeadline(r: StepsRead): { limit: number; deadline: number } | undefined {
  const s = r.firstOpen >= 0 ? r.out[r.firstOpen]! : undefined;
  if (!s || s.phase !== 'Running') return undefined;
  const limit = stepTimeouts(r.pod)[s.container];
  const started = s.startedAt ? Date.parse(s.startedAt) : NaN;
  if (limit === undefined || !Number.isFinite(started)) return undefined;
  return { limit, deadline: started + limit * 1000 };
}

/** Still running: the step timeout of the running step, enforced (the pod is deleted). */
function stepTimedOut(r: StepsRead, now: number): PodReading | undefined {
  const d = runningStepDeadline(r);
  if (!d || now < d.deadline) return undefined;
  const { out, firstOpen } = r;
  out[firstOpen] = {
    ...out[firstOpen]!,
    phase: 'Failed',
    message: `timed out after ${formatDuration(d.limit * 1000)}`,
    finishedAt: timestamp(now),
  };
  skipAfter(out, firstOpen);
  return {
    phase: 'Failed',
    reason: 'StepTimedOut',
    message: `${r.where(firstOpen)} timed out after ${formatDuration(d.limit * 1000)}`,
    currentStep: firstOpen + 1,
    steps: out,
    deletePod: true,
  };
}

/** What a running promotion is doing: held by the identity gate, finishing, running or waiting for a step. */
function runningMessage(r: StepsRead, gateNote: string | undefined): string {
  const { pod, out, firstOpen, where } = r;
  const gates = pod?.spec?.schedulingGates ?? [];
  if (gates.some((g) => g?.name === 'lanyard.dev/identity')) return gateMessage(pod, gateNote);
  if (firstOpen < 0) return 'all steps succeeded; finishing';
  if (out[firstOpen]!.phase === 'Running') return `running ${where(firstOpen)}`;
  if (out[firstOpen]!.message) return `${where(firstOpen)} ${out[firstOpen]!.message}`;
  return `${where(firstOpen)} pending`;
}

/** Steps of a promotion that ends without reading a pod (abort, lost pod): the running one gets `phase`. */
export function stopSteps(steps: StepStatus[], phase: 'Aborted' | 'Errored', message: string): StepStatus[] {
  const out = steps.map((s) => ({ ...s }));
  const i = out.findIndex((s) => s.phase === 'Running');
  if (i >= 0) out[i] = { ...out[i]!, phase, message };
  for (const s of out) if (s.phase === 'Pending') s.phase = 'Skipped';
  return out;
}
