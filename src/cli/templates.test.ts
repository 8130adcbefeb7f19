import { describe, expect, it } from 'vitest';
import { customColumnsPrinter, jsonpathPrinter, parseTemplate, TemplateError } from './templates.ts';

const sa = (name: string, labels?: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'ServiceAccount',
  metadata: { name, namespace: 'shop', labels },
});
const list = { apiVersion: 'v1', kind: 'List', items: [sa('ci-bot', { team: 'a' }), sa('deployer')] };

describe('-o jsonpath templates (kubectl syntax)', () => {
  it.each([
    ['{.items[*].metadata.name}', 'ci-bot deployer'],
    ['{range .items[*]}{.metadata.name}{"\\n"}{end}', 'ci-bot\ndeployer\n'],
    [
      '{range .items[*]}{.metadata.name}{"\\t"}{.metadata.labels.team}{"\\n"}{end}',
      'ci-bot\ta\ndeployer\t\n',
    ],
    ['names: {.items[0].metadata.name}, kind {.kind}', 'names: ci-bot, kind List'],
    ['{.items[?(@.metadata.name=="deployer")].metadata.namespace}', 'shop'],
    ['{.items[0].metadata.labels}', '{"team":"a"}'],
    ['{$.kind}', 'List'],
  ])('renders %s', (template, expected) => {
    expect(jsonpathPrinter(template)(list)).toBe(expected);
  });

  it.each([
    ['{.items', 'unclosed "{"'],
    ['{range .items[*]}{.metadata.name}', '{range} without {end}'],
    ['{.a}{end}', '{end} without {range}'],
    ['{items}', 'expressions start with "."'],
  ])('refuses %s naming the problem', (template, message) => {
    expect(() => parseTemplate(template)).toThrow(TemplateError);
    expect(() => parseTemplate(template)).toThrow(message);
  });
});

describe('-o custom-columns', () => {
  it('prints a column per HEADER:JSONPATH, <none> for missing values, with or without headers', () => {
    const print = customColumnsPrinter('NAME:.metadata.name,TEAM:{.metadata.labels.team}');
    expect(print(list.items, false)).toBe('NAME       TEAM\nci-bot     a\ndeployer   <none>\n');
    expect(print(list.items, true)).toBe('ci-bot     a\ndeployer   <none>\n');
  });

  it('refuses a column without a header or an expression', () => {
    expect(() => customColumnsPrinter('NAME')).toThrow('invalid custom-columns "NAME": use HEADER:JSONPATH');
    expect(() => customColumnsPrinter('NAME:')).toThrow(TemplateError);
  });
});
