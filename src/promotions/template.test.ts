import { describe, expect, it } from 'vitest';
import { parsePath, renderConfig, renderTemplate, TemplateFailure, type TemplateScope } from './template.ts';

const scope: TemplateScope = {
  config: {
    bucket: 'shop-artifacts',
    prefix: { path: 'releases/1.4.2' },
    hosts: ['a.example', 'b.example'],
    n: 3,
    on: true,
    obj: { a: 1 },
    'odd key': 'x',
    nil: null,
  },
  vars: { version: '1.4.2', channel: 'stable' },
  ctx: { project: 'shop', stage: 'prod', promotion: 'prod-8f2kq', step: 'list s3', stepIndex: 1 },
};

describe('renderTemplate', () => {
  it.each([
    ['${{ config.bucket }}', 'shop-artifacts'],
    ['{{ config.bucket }}', 'shop-artifacts'],
    ['${{config.bucket}}', 'shop-artifacts'],
    ['s3://{{ config.bucket }}/${{ config.prefix.path }}', 's3://shop-artifacts/releases/1.4.2'],
    ['${{ config.hosts.0 }},${{ config.hosts.1 }}', 'a.example,b.example'],
    ['${{ config["odd key"] }}', 'x'],
    ['${{ config.prefix["path"] }}', 'releases/1.4.2'],
    ['${{ vars.version }}-${{ vars.channel }}', '1.4.2-stable'],
    [
      '${{ ctx.stage }}/${{ ctx.project }}/${{ ctx.promotion }}/${{ ctx.step }}/${{ ctx.stepIndex }}',
      'prod/shop/prod-8f2kq/list s3/1',
    ],
    ['${{ config.n }} ${{ config.on }}', '3 true'],
    ['${{ config.obj }} ${{ config.hosts }}', '{"a":1} ["a.example","b.example"]'],
    ['{{.metadata.name}}', '{{.metadata.name}}'],
    ['{{ .Values.x }} and {{ configuration }}', '{{ .Values.x }} and {{ configuration }}'],
    ['\\${{ literal }}', '${{ literal }}'],
    ['\\{{ config.bucket }}', '{{ config.bucket }}'],
    ['no templates', 'no templates'],
    ['{{ unterminated go', '{{ unterminated go'],
  ])('%s -> %s', (text, want) => {
    expect(renderTemplate(text, scope)).toBe(want);
  });

  it.each([
    [
      '${{ config.bukket }}',
      'config has no key "bukket" (known keys: bucket, hosts, n, nil, obj, odd key, on, prefix)',
    ],
    ['${{ config.prefix.nope }}', 'config.prefix has no key "nope" (known keys: path)'],
    ['${{ secrets.token }}', '"secrets.token" does not start with config, vars or ctx'],
    ['x ${{ config.bucket', '"${{ config.bucket" has no closing "}}"'],
    ['{{ config.bucket', '"{{ config.bucket" has no closing "}}"'],
    ['${{ config.hosts.5 }}', 'config.hosts has no index 5 (it has 2 items)'],
    ['${{ config.hosts.x }}', 'config.hosts is an array; index it with a number, not "x"'],
    ['${{ config.bucket.x }}', 'config.bucket is a string, so it has no key "x"'],
    ['${{ config.nil }}', 'config.nil is null'],
    ['${{ config.a b }}', '"config.a b" is not a valid path (use segments like .name, ["any text"] or .0)'],
    ['${{ vars.color }}', 'vars has no key "color" (known keys: channel, version)'],
    [
      '${{ config.a | upper }}',
      '"config.a | upper" is not a valid path (use segments like .name, ["any text"] or .0)',
    ],
  ])('%s fails: %s', (text, detail) => {
    expect(() => renderTemplate(text, scope)).toThrow(new TemplateFailure(detail));
  });
});

describe('renderConfig', () => {
  it('renders strings deep inside objects and arrays with vars and ctx', () => {
    expect(
      renderConfig(
        { a: { b: ['${{ vars.version }}', 1] }, c: '{{ ctx.stage }}' },
        { vars: scope.vars, ctx: scope.ctx },
      ),
    ).toEqual({
      a: { b: ['1.4.2', 1] },
      c: 'prod',
    });
  });
  it('refuses config self-references, naming the value', () => {
    expect(() => renderConfig({ target: '${{ config.bucket }}' }, { vars: {}, ctx: {} })).toThrow(
      'config.target refers to config; config values may use vars and ctx only',
    );
  });
  it('names the value on other errors', () => {
    expect(() => renderConfig({ p: { x: ['${{ vars.nope }}'] } }, { vars: {}, ctx: {} })).toThrow(
      'config.p.x.0: vars has no key "nope" (it has no keys)',
    );
  });
});

describe('parsePath', () => {
  it('parses segments', () => {
    expect(parsePath('config.a["b c"].0')).toEqual({ root: 'config', segments: ['a', 'b c', '0'] });
    expect(parsePath('other.a')).toBeUndefined();
  });
});
