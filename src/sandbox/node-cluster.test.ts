// Where `lanyard up` does not even try its node (docs/adr/0714-sandbox-on-the-node.md): the reason it prints.
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { SAMPLES_DIR } from './paths.ts';
import { nodeImages, nodeUnavailable, SAMPLE_WHOAMI_IMAGE } from './node-cluster.ts';

describe('nodeUnavailable', () => {
  it.each([
    [{ platform: 'linux', uid: 0 }, undefined],
    [
      { platform: 'linux', uid: 1000 },
      'the node needs root for its network namespace, containerd and the kubelet (running as uid 1000)',
    ],
    [{ platform: 'darwin', uid: 0 }, 'the node runs on Linux only (this machine is darwin)'],
    [{ platform: 'win32', uid: undefined }, 'the node runs on Linux only (this machine is win32)'],
  ])('%o -> %s', (machine, reason) => {
    expect(nodeUnavailable(machine)).toBe(reason);
  });
});

describe('nodeImages', () => {
  it('gives the aws-whoami image the stable name the samples use, beside its hashed one', () => {
    const img = (name: string) => ({ name, archive: `/cache/${name}.oci.tar` });
    const set = nodeImages({
      pause: img('registry.k8s.io/pause:3.10'),
      lanyard: img('lanyard.local/lanyard:1'),
      awsWhoami: img('lanyard.local/aws-whoami:2'),
    });
    expect(set.map((i) => [i.name, i.tags ?? []])).toEqual([
      ['registry.k8s.io/pause:3.10', []],
      ['lanyard.local/lanyard:1', []],
      ['lanyard.local/aws-whoami:2', [SAMPLE_WHOAMI_IMAGE]],
    ]);
  });
});

describe('deploy/samples', () => {
  it('runs only the image the node has under its stable name, never pulling (no registry is reachable)', () => {
    const images: Array<[string, string, string]> = [];
    for (const f of fs.readdirSync(SAMPLES_DIR).filter((x) => x.endsWith('.yaml'))) {
      for (const doc of parseAllDocuments(fs.readFileSync(path.join(SAMPLES_DIR, f), 'utf8'))) {
        const o = doc.toJSON();
        const specs = o?.kind === 'PromotionStep' ? [o.spec] : (o?.spec?.template?.spec?.containers ?? []);
        for (const c of specs) images.push([`${f} ${o.kind} ${o.metadata.name}`, c.image, c.imagePullPolicy]);
      }
    }
    expect(images.length).toBe(4);
    for (const [where, image, policy] of images)
      expect({ where, image, policy }).toEqual({ where, image: SAMPLE_WHOAMI_IMAGE, policy: 'Never' });
  });
});
