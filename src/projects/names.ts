// Client-side name validation (docs/projects-and-tokens.md), run before any request.
export type NameKind = 'project' | 'role' | 'serviceaccount' | 'serviceaccounttoken' | 'stage' | 'promotion';

/** Kinds whose names are DNS labels (a namespace, or a name that becomes a label value); the rest are subdomains. */
const LABEL_KINDS: ReadonlySet<NameKind> = new Set(['project', 'stage', 'promotion']);

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const RESERVED_ROLE_PREFIX = 'lanyard-';

/** Returns the error message for an invalid name, or undefined when the name is valid. */
export function nameError(kind: NameKind, name: string): string | undefined {
  if (LABEL_KINDS.has(kind)) {
    if (name.length > 63 || !LABEL.test(name)) {
      return `invalid ${kind} name "${name}": use at most 63 lowercase letters, digits or "-", starting and ending with a letter or digit`;
    }
    return undefined;
  }
  if (name.length > 253 || !name.split('.').every((part) => LABEL.test(part))) {
    return `invalid ${kind} name "${name}": use at most 253 lowercase letters, digits, "-" or ".", starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Built-in role names are reserved: a user may not create a role in that namespace of names. */
export function reservedRoleError(name: string): string | undefined {
  return name.startsWith(RESERVED_ROLE_PREFIX)
    ? `invalid role name "${name}": names starting with "${RESERVED_ROLE_PREFIX}" are reserved for built-in roles`
    : undefined;
}
