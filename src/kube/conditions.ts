// metav1.Condition-shaped conditions (type, status, reason, message, observedGeneration, lastTransitionTime).
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/**
 * Returns a new conditions array with `next` set. lastTransitionTime changes only when the status changes,
 * as Kubernetes' meta.SetStatusCondition does.
 */
export function setCondition(
  conditions: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: Date = new Date(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const prev = i >= 0 ? list[i] : undefined;
  const lastTransitionTime =
    prev && prev.status === next.status
      ? prev.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const merged: Condition = { ...next, lastTransitionTime };
  if (i >= 0) list[i] = merged;
  else list.push(merged);
  return list;
}

export function getCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** True when setting `next` would change nothing but lastTransitionTime (avoids no-op status writes). */
export function conditionUnchanged(
  conditions: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
) {
  const c = getCondition(conditions, next.type);
  return (
    !!c &&
    c.status === next.status &&
    c.reason === next.reason &&
    c.message === next.message &&
    c.observedGeneration === next.observedGeneration
  );
}
