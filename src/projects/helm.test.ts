// The chart's lanyard-project-creator must hold every lanyard-admin rule, or its holders cannot create projects.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BUILTIN_ROLES, ADMIN_ROLE } from './builtin-roles.ts';

const file = path.resolve(
  import.meta.dirname,
  '../../deploy/helm/lanyard/templates/projects-project-creator.yaml',
);

describe('ClusterRole lanyard-project-creator', () => {
  it('has namespaces get/list/watch/create/delete and exactly the lanyard-admin rules', () => {
    // Template lines (labels) are not YAML; the rules are plain YAML.
    const doc = parse(
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => !l.includes('{{'))
        .join('\n'),
    );
    expect(doc.metadata.name).toBe('lanyard-project-creator');
    const [ns, ...rest] = doc.rules;
    expect(ns).toEqual({
      apiGroups: [''],
      resources: ['namespaces'],
      verbs: ['get', 'list', 'watch', 'create', 'delete'],
    });
    expect(rest).toEqual(BUILTIN_ROLES.find((r) => r.name === ADMIN_ROLE)!.rules);
  });
});
