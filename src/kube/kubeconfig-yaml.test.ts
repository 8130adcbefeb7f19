// The kubeconfig fast path (docs/adr/0704): for every text it either gives exactly what `yaml.parse` gives, or
// declines (undefined) so the caller uses `yaml`.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseKubeconfigYaml } from './kubeconfig-yaml.ts';

const KUBECTL_STYLE = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=
    server: https://127.0.0.1:6443
    tls-server-name: kubernetes
  name: kind-kind
- cluster:
    insecure-skip-tls-verify: true
    server: https://10.0.0.1
    proxy-url: http://proxy.example:3128
  name: other
contexts:
- context:
    cluster: kind-kind
    namespace: shop
    user: kind-kind
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=
    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - eks
      - get-token
      - --cluster-name
      - prod
      command: aws
      env: null
      interactiveMode: IfAvailable
      provideClusterInfo: false
`;

const SANDBOX_STYLE = `apiVersion: v1
kind: Config
clusters:
- name: lanyard-local
  cluster:
    server: https://127.0.0.1:39045
    certificate-authority: "/tmp/lanyard-cp-ytASU8/ca.crt"
users:
- name: admin
  user:
    token: "admin-i0ysv50lgmk"
contexts:
- name: admin@lanyard-local
  context: {cluster: lanyard-local, user: admin}
current-context: admin@lanyard-local
`;

const COMMENTED = `# written by hand
apiVersion: v1   # the version
clusters:
  - name: 'it''s'
    cluster:
      server: "https://h:1/\\u00e9"   # unicode escape
      extensions: []
users: []
contexts:
  - name: c
    context:
      cluster: it's
      user: ~
current-context: c\r
empty:
flags: [a, b,  c]
`;

describe('kubeconfig YAML without the yaml package', () => {
  it.each([
    ['kubectl style (sequences at their key, data fields, exec plugin)', KUBECTL_STYLE],
    ["the sandbox's (quoted scalars, a flow mapping)", SANDBOX_STYLE],
    ['comments, indented sequences, single quotes, escapes, null, CRLF, flow sequences', COMMENTED],
  ])('parses %s exactly as yaml.parse does', (_name, text) => {
    const fast = parseKubeconfigYaml(text);
    expect(fast).not.toBeUndefined();
    expect(fast).toEqual(parse(text));
  });

  it.each([
    ['an anchor and an alias', 'a: &x b\nc: *x\n'],
    ['a tag', 'a: !!str 1\n'],
    ['a block scalar', 'a: |\n  line\n'],
    ['a multi-line plain scalar', 'a: one\n  two\n'],
    ['a number', 'port: 6443\n'],
    ['a float', 'v: 1.5\n'],
    ['.inf', 'v: .inf\n'],
    ['two documents', 'a: b\n---\nc: d\n'],
    ['a duplicate key', 'a: b\na: c\n'],
    ['a tab', 'a:\tb\n'],
    ['a YAML-only escape', 'a: "\\x41"\n'],
    ['a quoted scalar over two lines', 'a: "one\n  two"\n'],
    ['a quoted key', '"a": b\n'],
    ['a flow mapping with quotes', 'a: {b: "c"}\n'],
    ['a flow mapping over two lines', 'a: {b: c,\n  d: e}\n'],
    ['a key named like a boolean', 'true: b\n'],
    ['__proto__', '__proto__: b\n'],
    ['bad indentation', 'a:\n    b: c\n  d: e\n'],
    ['a top-level scalar', 'just text\n'],
    ['an empty document', ''],
  ])('declines %s (the yaml package decides)', (_name, text) => {
    expect(parseKubeconfigYaml(text)).toBeUndefined();
  });

  it('never disagrees with yaml.parse on generated kubeconfig-like documents', () => {
    // Deterministic pseudo-random documents from kubeconfig pieces, valid or not: every accepted one equals yaml's.
    const pieces = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: a',
      '  cluster:',
      '    server: https://x:1',
      '  - name: b',
      'users:',
      '- name: u',
      '  user:',
      '    token: "t"',
      "    token: 't'",
      '    token: t # c',
      'contexts: []',
      'preferences: {}',
      '  context: {cluster: a, user: u}',
      'current-context: a',
      '# comment',
      '',
      '  ',
      'x: true',
      'x: null',
      'x: 1',
      'x: [a, b]',
      'x: {a: b}',
      '- a',
      '  - b',
      'x:',
      '    y: z',
      '  y: z',
      'x: a: b',
      'x: -a',
      '-',
      '- --flag',
      'x: -1',
      'x: ?a',
      'x: :a',
      'x: a:b',
      'x: ::',
    ];
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const text = Array.from({ length: 1 + rand(12) }, () => pieces[rand(pieces.length)]).join('\n') + '\n';
      const fast = parseKubeconfigYaml(text);
      if (fast === undefined) continue;
      accepted++;
      let expected: unknown;
      try {
        expected = parse(text);
      } catch (e) {
        throw new Error(`accepted a text yaml refuses (${String(e)}):\n${text}`);
      }
      expect(fast, text).toEqual(expected);
    }
    expect(accepted).toBeGreaterThan(100);
  });
});
