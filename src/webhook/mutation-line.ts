// The fields of the one `info` line per mutated Pod, serialized by hand (docs/adr/0121-mutation-line-preformatted.md):
// the line's keys are fixed, so the JSON is one template, byte for byte what pino writes for the same object.

export interface MutatedPodLine {
  uid: string;
  namespace: string;
  pod: string;
  serviceAccount: string;
  mode: string;
  source: string;
  roleARN?: string;
  gate?: string;
  ops: number;
  durationMs: number;
}

// Every string may come from the request (a Pod or ServiceAccount name): escaped by JSON.stringify, as pino would.
const str = JSON.stringify;
const optional = (key: string, v: string | undefined) => (v === undefined ? '' : `,"${key}":${str(v)}`);

/** `"uid":…,"namespace":…` in the order pino writes the object's keys, an absent optional key left out as pino does. */
export function mutatedPodFields(l: MutatedPodLine): string {
  return `"uid":${str(l.uid)},"namespace":${str(l.namespace)},"pod":${str(l.pod)},"serviceAccount":${str(l.serviceAccount)},"mode":${str(l.mode)},"source":${str(l.source)}${optional('roleARN', l.roleARN)}${optional('gate', l.gate)},"ops":${l.ops},"durationMs":${l.durationMs}`;
}
