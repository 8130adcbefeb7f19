// Step templating (docs/promotions.md#templates-and-vars): `${{ PATH }}` always, `{{ PATH }}` only for config/vars/ctx paths (so Go
// templates such as `{{.metadata.name}}` pass through), `\${{` and `\{{` escape. No operators, functions or
// defaults: a template either names a value or is an error.
export type TemplateRoot = 'config' | 'vars' | 'ctx';

export interface TemplateScope {
  /** Absent while rendering config itself: config values may use vars and ctx only. */
  config?: unknown;
  vars: Record<string, string>;
  ctx: Record<string, string | number>;
}

/** A template that cannot be rendered; `detail` is the text after the caller's location prefix. */
export class TemplateFailure extends Error {
  constructor(
    readonly detail: string,
    /** Set when a config value refers to config (reported with its own wording). */
    readonly configReference = false,
  ) {
    super(detail);
    this.name = 'TemplateFailure';
  }
}

const ROOT_RE = /^(config|vars|ctx)(?![A-Za-z0-9_-])/;
const NAME_SEG_RE = /^\.([A-Za-z0-9_-]+)/;
const QUOTED_SEG_RE = /^\[\s*("(?:[^"\\]|\\.)*")\s*\]/;

/** Splits `config.prefix["a b"].0` into its root and segments; undefined when it is not a path. */
export function parsePath(expr: string): { root: TemplateRoot; segments: string[] } | undefined {
  const m = ROOT_RE.exec(expr);
  if (!m) return undefined;
  const segments: string[] = [];
  let rest = expr.slice(m[0].length);
  while (rest.length > 0) {
    const name = NAME_SEG_RE.exec(rest);
    if (name) {
      segments.push(name[1]!);
      rest = rest.slice(name[0].length);
      continue;
    }
    const quoted = QUOTED_SEG_RE.exec(rest);
    if (!quoted) return undefined;
    try {
      segments.push(JSON.parse(quoted[1]!) as string);
    } catch {
      return undefined;
    }
    rest = rest.slice(quoted[0].length);
  }
  return { root: m[1] as TemplateRoot, segments };
}

function segmentText(seg: string): string {
  return /^[A-Za-z0-9_-]+$/.test(seg) ? `.${seg}` : `[${JSON.stringify(seg)}]`;
}

function kindOf(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v;
}

function lookup(root: TemplateRoot, segments: string[], scope: TemplateScope): unknown {
  let cur: unknown = scope[root];
  let where: string = root;
  for (const seg of segments) {
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg))
        throw new TemplateFailure(`${where} is an array; index it with a number, not "${seg}"`);
      const i = Number(seg);
      if (i >= cur.length)
        throw new TemplateFailure(`${where} has no index ${i} (it has ${cur.length} items)`);
      cur = cur[i];
    } else if (cur !== null && typeof cur === 'object') {
      if (!Object.prototype.hasOwnProperty.call(cur, seg)) {
        const keys = Object.keys(cur).sort();
        const known = keys.length ? `known keys: ${keys.join(', ')}` : 'it has no keys';
        throw new TemplateFailure(`${where} has no key "${seg}" (${known})`);
      }
      cur = (cur as Record<string, unknown>)[seg];
    } else {
      throw new TemplateFailure(
        `${where} is ${kindOf(cur) === 'null' ? 'null' : `a ${kindOf(cur)}`}, so it has no key "${seg}"`,
      );
    }
    where += segmentText(seg);
  }
  if (cur === null || cur === undefined) throw new TemplateFailure(`${where} is null`);
  return cur;
}

function valueText(v: unknown): string {
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function evaluate(expr: string, scope: TemplateScope): string {
  if (!ROOT_RE.test(expr)) throw new TemplateFailure(`"${expr}" does not start with config, vars or ctx`);
  const path = parsePath(expr);
  if (!path) {
    throw new TemplateFailure(`"${expr}" is not a valid path (use segments like .name, ["any text"] or .0)`);
  }
  if (path.root === 'config' && scope.config === undefined) {
    throw new TemplateFailure('refers to config; config values may use vars and ctx only', true);
  }
  return valueText(lookup(path.root, path.segments, scope));
}

/** Renders one string. Throws TemplateFailure with a detail that names the template. */
export function renderTemplate(text: string, scope: TemplateScope): string {
  if (!text.includes('{{')) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text[i] === '\\' && text.startsWith('${{', i + 1)) {
      out += '${{';
      i += 4;
    } else if (text[i] === '\\' && text.startsWith('{{', i + 1)) {
      out += '{{';
      i += 3;
    } else if (text.startsWith('${{', i)) {
      const end = text.indexOf('}}', i + 3);
      if (end < 0) throw new TemplateFailure(`"${text.slice(i)}" has no closing "}}"`);
      out += evaluate(text.slice(i + 3, end).trim(), scope);
      i = end + 2;
    } else if (text.startsWith('{{', i)) {
      const end = text.indexOf('}}', i + 2);
      const inner = (end < 0 ? text.slice(i + 2) : text.slice(i + 2, end)).trim();
      if (ROOT_RE.test(inner)) {
        if (end < 0) throw new TemplateFailure(`"${text.slice(i)}" has no closing "}}"`);
        out += evaluate(inner, scope);
        i = end + 2;
      } else {
        // Not ours (a Go template, say): keep it literally.
        out += '{{';
        i += 2;
      }
    } else {
      out += text[i];
      i += 1;
    }
  }
  return out;
}

/**
 * Renders every string inside a Stage step's config (vars and ctx only). Failures carry the config path of the
 * offending value, e.g. `config.prefix.path`.
 */
export function renderConfig(config: unknown, scope: Omit<TemplateScope, 'config'>): unknown {
  const walk = (v: unknown, where: string): unknown => {
    if (typeof v === 'string') {
      try {
        return renderTemplate(v, { vars: scope.vars, ctx: scope.ctx });
      } catch (e) {
        if (e instanceof TemplateFailure) {
          throw new TemplateFailure(
            e.configReference ? `${where} ${e.detail}` : `${where}: ${e.detail}`,
            e.configReference,
          );
        }
        throw e;
      }
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, `${where}.${i}`));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, `${where}${segmentText(k)}`);
      return out;
    }
    return v;
  };
  return walk(config ?? {}, 'config');
}
