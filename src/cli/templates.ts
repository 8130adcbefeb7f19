// `-o jsonpath=TEMPLATE` and `-o custom-columns=SPEC` with kubectl's syntax (docs/cli.md): a template is text with
// `{expression}` parts, `{range expression}...{end}` loops and `{"literal"}` strings; expressions are JSONPath
// relative to the printed object (`{.items[*].metadata.name}`), evaluated by jsonpath-plus. Loaded only when one of
// these formats is asked for.
import { JSONPath } from 'jsonpath-plus';
import { renderTable } from './output.ts';

type Part = { text: string } | { expr: string } | { range: string; body: Part[] };

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

/** `.a.b`, `$.a`, `['a']` → a jsonpath-plus path rooted at `$`. */
function toPath(expr: string, template: string): string {
  const e = expr.trim();
  if (e === '' || e === '@' || e === '$') return '$';
  if (e.startsWith('$')) return e;
  if (e.startsWith('.') || e.startsWith('[')) return `$${e}`;
  throw new TemplateError(
    `invalid JSONPath "${e}" in template "${template}": expressions start with "." (e.g. {.metadata.name})`,
  );
}

function unquote(lit: string): string {
  const body = lit.slice(1, -1);
  return body.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t', r: '\r' })[c] ?? c);
}

/** Parses a kubectl JSONPath template. */
export function parseTemplate(template: string): Part[] {
  const stack: Part[][] = [[]];
  const ranges: { range: string; body: Part[] }[] = [];
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf('{', i);
    if (open < 0) {
      stack[stack.length - 1]!.push({ text: template.slice(i) });
      break;
    }
    if (open > i) stack[stack.length - 1]!.push({ text: template.slice(i, open) });
    // Find the closing brace outside quotes.
    let close = -1;
    let quote = '';
    for (let j = open + 1; j < template.length; j++) {
      const c = template[j]!;
      if (quote) {
        if (c === '\\') j++;
        else if (c === quote) quote = '';
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '}') {
        close = j;
        break;
      }
    }
    if (close < 0) throw new TemplateError(`unclosed "{" in template "${template}"`);
    const inner = template.slice(open + 1, close).trim();
    const top = stack[stack.length - 1]!;
    if (/^(["']).*\1$/s.test(inner)) top.push({ text: unquote(inner) });
    else if (inner.startsWith('range ')) {
      const r = { range: toPath(inner.slice(6), template), body: [] as Part[] };
      top.push(r);
      ranges.push(r);
      stack.push(r.body);
    } else if (inner === 'end') {
      if (!ranges.pop()) throw new TemplateError(`{end} without {range} in template "${template}"`);
      stack.pop();
    } else top.push({ expr: toPath(inner, template) });
    i = close + 1;
  }
  if (ranges.length) throw new TemplateError(`{range} without {end} in template "${template}"`);
  return stack[0]!;
}

/** The values `path` selects in a printed object (any JSON: the template reads what the user asked for). */
function query(path: string, json: unknown): unknown[] {
  if (path === '$') return [json];
  return JSONPath({ path, json: json as object, wrap: true, eval: 'safe' }) as unknown[];
}

const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

function render(parts: Part[], data: unknown): string {
  let out = '';
  for (const p of parts) {
    if ('text' in p) out += p.text;
    else if ('expr' in p) out += query(p.expr, data).map(show).join(' ');
    else for (const item of query(p.range, data)) out += render(p.body, item);
  }
  return out;
}

/** A compiled `-o jsonpath=` template: the text for one object (or List). */
export function jsonpathPrinter(template: string): (obj: unknown) => string {
  const parts = parseTemplate(template);
  return (obj) => render(parts, obj);
}

/** A compiled `-o custom-columns=HEADER:EXPR,...`: a table of the items. */
export function customColumnsPrinter(spec: string): (items: unknown[], noHeaders: boolean) => string {
  const columns = spec.split(',').map((col) => {
    const colon = col.indexOf(':');
    if (colon <= 0 || colon === col.length - 1) {
      throw new TemplateError(
        `invalid custom-columns "${col}": use HEADER:JSONPATH, e.g. NAME:.metadata.name`,
      );
    }
    const expr = col
      .slice(colon + 1)
      .trim()
      .replace(/^\{(.*)\}$/, '$1');
    return { header: col.slice(0, colon), path: toPath(expr, col) };
  });
  return (items, noHeaders) =>
    renderTable(
      columns.map((c) => c.header),
      items.map((it) =>
        columns.map((c) => {
          const values = query(c.path, it).filter((v) => v !== undefined && v !== null);
          return values.length ? values.map(show).join(',') : '<none>';
        }),
      ),
      noHeaders,
    );
}
