import { describe, expect, it } from 'vitest';
import { parseRule, parseRules } from './rules.ts';

describe('parseRule', () => {
  it.each([
    ['stages:get,list', [{ apiGroups: ['lanyard.dev'], resources: ['stages'], verbs: ['get', 'list'] }]],
    [
      'stages,promotions:get,list,watch',
      [{ apiGroups: ['lanyard.dev'], resources: ['stages', 'promotions'], verbs: ['get', 'list', 'watch'] }],
    ],
    [
      'stages:get:prod,staging',
      [
        {
          apiGroups: ['lanyard.dev'],
          resources: ['stages'],
          verbs: ['get'],
          resourceNames: ['prod', 'staging'],
        },
      ],
    ],
    [
      'stages,secrets,roles:get',
      [
        { apiGroups: ['lanyard.dev'], resources: ['stages'], verbs: ['get'] },
        { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['get'] },
      ],
    ],
    [
      'events:*',
      [
        {
          apiGroups: [''],
          resources: ['events'],
          verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'],
        },
      ],
    ],
    ['stages:get,get', [{ apiGroups: ['lanyard.dev'], resources: ['stages'], verbs: ['get'] }]],
  ])('%s', (text, rules) => {
    expect(parseRule(text)).toEqual({ ok: true, rules });
  });

  it.each([
    ['stage:get', 'unknown resource "stage" in --rule "stage:get": did you mean "stages"?'],
    [
      'promotoins:get',
      'unknown resource "promotoins" in --rule "promotoins:get": did you mean "promotions"?',
    ],
    [
      'pods:get',
      'unknown resource "pods" in --rule "pods:get"; allowed: stages, promotions, promotionsteps, podidentityassociations, serviceaccounts, secrets, configmaps, events, roles, rolebindings',
    ],
    [
      'stages:read',
      'unknown verb "read" in --rule "stages:read"; allowed: get, list, watch, create, update, patch, delete, deletecollection, *',
    ],
    ['stages', 'invalid --rule "stages": use RESOURCES:VERBS[:NAMES], e.g. stages,promotions:get,list'],
    [
      'stages:get:a:b',
      'invalid --rule "stages:get:a:b": use RESOURCES:VERBS[:NAMES], e.g. stages,promotions:get,list',
    ],
    [':get', 'missing resource in --rule ":get"'],
    ['stages:', 'missing verb in --rule "stages:"'],
    ['stages:get,', 'missing verb in --rule "stages:get,"'],
    ['stages:get:', 'missing name in --rule "stages:get:"'],
  ])('refuses %s', (text, error) => {
    expect(parseRule(text)).toEqual({ ok: false, error });
  });

  it('concatenates several rules and stops at the first error', () => {
    expect(parseRules(['stages:get', 'promotions:create'])).toEqual({
      ok: true,
      rules: [
        { apiGroups: ['lanyard.dev'], resources: ['stages'], verbs: ['get'] },
        { apiGroups: ['lanyard.dev'], resources: ['promotions'], verbs: ['create'] },
      ],
    });
    expect(parseRules(['stages:get', 'x:get', 'y:get']).ok).toBe(false);
    expect(parseRules([])).toEqual({ ok: true, rules: [] });
  });
});
