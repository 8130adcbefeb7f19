import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { renderObjects, renderRows, renderTable, cleanForOutput, parseOutput } from './output.ts';

describe('renderTable', () => {
  it('pads each column to its longest cell plus three spaces', () => {
    expect(
      renderTable(
        ['name', 'managed', 'age'],
        [
          ['ci-bot', 'true', '12d'],
          ['gitops-bot', 'false', '40d'],
        ],
      ),
    ).toBe('NAME         MANAGED   AGE\nci-bot       true      12d\ngitops-bot   false     40d\n');
  });
  it('drops the header with --no-headers and prints nothing for no rows', () => {
    expect(renderTable(['NAME', 'AGE'], [['a', '1s']], true)).toBe('a   1s\n');
    expect(renderTable(['NAME'], [], true)).toBe('');
  });
  it('shows wide columns only when asked', () => {
    const cols = [
      { header: 'NAME', value: (x: string) => x },
      { header: 'LEN', wide: true, value: (x: string) => String(x.length) },
    ];
    expect(renderRows(cols, ['ab'], false, false)).toBe('NAME\nab\n');
    expect(renderRows(cols, ['ab'], true, false)).toBe('NAME   LEN\nab     2\n');
  });
});

describe('renderObjects', () => {
  const a = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'a', managedFields: [{ manager: 'x' }] },
  };
  it('prints one object as itself and drops managedFields', () => {
    const out = renderObjects([a], 'json', false);
    expect(JSON.parse(out)).toEqual({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'a' } });
    expect(out).toMatch(/^\{\n {2}"apiVersion": "v1",/);
    expect(a.metadata.managedFields).toHaveLength(1);
  });
  it('wraps several objects, or a list query, in a v1 List', () => {
    expect(parseYaml(renderObjects([a, a], 'yaml', false))).toMatchObject({
      apiVersion: 'v1',
      kind: 'List',
      items: [{}, {}],
    });
    expect(parseYaml(renderObjects([a], 'yaml', true)).kind).toBe('List');
    expect(cleanForOutput('x')).toBe('x');
  });
});

describe('parseOutput', () => {
  it('accepts the plain formats and jsonpath=/custom-columns= with their argument', () => {
    expect(parseOutput('wide')).toEqual({ output: 'wide' });
    expect(parseOutput('jsonpath={.items[*].metadata.name}')).toEqual({
      output: 'jsonpath',
      template: '{.items[*].metadata.name}',
    });
    expect(parseOutput('custom-columns=NAME:.metadata.name')).toEqual({
      output: 'custom-columns',
      template: 'NAME:.metadata.name',
    });
  });
  it('refuses unknown formats and template formats without a template', () => {
    for (const v of ['xml', 'jsonpath', 'jsonpath=', 'go-template={{.x}}', '=x'])
      expect(parseOutput(v)).toBeUndefined();
  });
});
