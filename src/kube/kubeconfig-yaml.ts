// The YAML that kubectl, kind, kOps and Lanyard's sandbox write into kubeconfig files, read without the `yaml`
// package: loading it and parsing a first document costs 30–40 ms of CPU at every CLI start, more than anything else
// before the first request (docs/adr/0704-cli-kubeconfig-fast-path.md). The subset: block mappings and block
// sequences (also at their key's indentation, as kubectl writes them), plain, single- and double-quoted scalars on
// one line, one-line flow mappings and sequences of plain scalars, comments. Anything else — anchors, aliases, tags,
// block scalars, multi-line scalars, numbers, several documents, duplicate keys, tabs — returns undefined and the
// caller parses the file with the `yaml` package, so the result is always the one `yaml.parse` gives.

type Value = null | boolean | string | Value[] | { [k: string]: Value };

/** Thrown inside the parser when the text leaves the subset; never escapes parseKubeconfigYaml. */
class OutsideSubset extends Error {}
const outside = (): never => {
  throw new OutsideSubset();
};

interface Line {
  indent: number;
  text: string;
}

const KEY = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
const NULLS = new Set(['~', 'null', 'Null', 'NULL']);
const BOOLS: Record<string, boolean> = {
  true: true,
  True: true,
  TRUE: true,
  false: false,
  False: false,
  FALSE: false,
};
/** Plain scalars the core schema might read as something other than a string (numbers, .inf, .nan, 0x…, 0o…). */
const MAYBE_NOT_STRING = /^[-+.]?[0-9.]|^[-+]?\.(inf|Inf|INF|nan|NaN|NAN)$/;
/** First characters that make a plain scalar something else (YAML 1.2 indicators), or that we leave to `yaml`. */
const INDICATOR = /^(?:[,[\]{}#&*!|>'"%@`]|[-?:](?:\s|$))/;

/** The parsed document, or undefined when `text` is outside the subset (then use the `yaml` package). */
export function parseKubeconfigYaml(text: string): unknown {
  try {
    const lines = toLines(text);
    if (lines.length === 0) return undefined; // an empty document: `yaml` decides (null)
    const at = { i: 0 };
    const v = block(lines, at, lines[0]!.indent);
    if (at.i !== lines.length || lines[0]!.indent !== 0) return undefined;
    return v;
  } catch (e) {
    if (e instanceof OutsideSubset) return undefined;
    throw e;
  }
}

function toLines(text: string): Line[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const out: Line[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.includes('\t')) outside();
    const content = line.trimStart();
    if (content === '' || content.startsWith('#')) continue;
    if (content.startsWith('---') || content.startsWith('...') || content.startsWith('%')) outside();
    out.push({ indent: line.length - content.length, text: content.trimEnd() });
  }
  return out;
}

/** The block (mapping or sequence) whose lines start at `indent`. */
function block(lines: Line[], at: { i: number }, indent: number): Value {
  const first = lines[at.i]!;
  return first.text === '-' || first.text.startsWith('- ')
    ? sequence(lines, at, indent)
    : mapping(lines, at, indent);
}

function sequence(lines: Line[], at: { i: number }, indent: number): Value[] {
  const items: Value[] = [];
  while (at.i < lines.length) {
    const line = lines[at.i]!;
    if (line.indent < indent) break;
    if (line.indent > indent) outside();
    if (!(line.text === '-' || line.text.startsWith('- '))) break;
    const rest = line.text.slice(1).trimStart();
    if (rest === '') {
      at.i++;
      const next = lines[at.i];
      items.push(next && next.indent > indent ? block(lines, at, next.indent) : null);
    } else if (isMappingEntry(rest)) {
      // `- key: value` opens a mapping whose keys sit at the column of `key`.
      lines[at.i] = { indent: line.indent + (line.text.length - rest.length), text: rest };
      items.push(mapping(lines, at, lines[at.i]!.indent));
    } else {
      items.push(inlineValue(rest));
      at.i++;
    }
  }
  return items;
}

function isMappingEntry(text: string): boolean {
  const colon = text.indexOf(':');
  return (
    colon > 0 && (colon === text.length - 1 || text[colon + 1] === ' ') && KEY.test(text.slice(0, colon))
  );
}

function mapping(lines: Line[], at: { i: number }, indent: number): { [k: string]: Value } {
  const obj: { [k: string]: Value } = {};
  while (at.i < lines.length) {
    const line = lines[at.i]!;
    if (line.indent < indent) break;
    if (line.indent > indent) outside();
    const colon = line.text.indexOf(':');
    if (colon <= 0) outside();
    const key = line.text.slice(0, colon);
    if (
      !KEY.test(key) ||
      Object.hasOwn(BOOLS, key) ||
      NULLS.has(key) ||
      key === '__proto__' ||
      Object.hasOwn(obj, key)
    )
      outside();
    const rest = line.text.slice(colon + 1);
    if (rest !== '' && !rest.startsWith(' ')) outside();
    const value = rest.trim();
    at.i++;
    if (value !== '' && !value.startsWith('#')) {
      obj[key] = inlineValue(value);
      continue;
    }
    const next = lines[at.i];
    if (next && next.indent > indent) obj[key] = block(lines, at, next.indent);
    // A sequence may sit at its key's own indentation (kubectl writes `clusters:\n- cluster: ...`).
    else if (next && next.indent === indent && (next.text === '-' || next.text.startsWith('- ')))
      obj[key] = sequence(lines, at, indent);
    else obj[key] = null;
  }
  return obj;
}

/** A value written after `key: ` or `- ` on the same line. */
function inlineValue(text: string): Value {
  const c = text[0];
  if (c === '"') return withoutComment(text, doubleQuoted);
  if (c === "'") return withoutComment(text, singleQuoted);
  if (c === '{' || c === '[') return flow(text);
  return plain(text);
}

/** A quoted scalar, then nothing or a comment. */
function withoutComment(text: string, parse: (t: string) => [string, number]): string {
  const [value, end] = parse(text);
  const after = text.slice(end);
  if (after !== '' && !/^\s+#/.test(after)) outside();
  return value;
}

function doubleQuoted(text: string): [string, number] {
  let end = 1;
  while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
  if (end >= text.length) outside(); // continues on the next line
  const body = text.slice(1, end);
  // JSON's escapes are a subset of YAML's; YAML-only ones (\x, \e, \0, \N, …) go to `yaml`.
  if (/\\[^"\\/bfnrtu]/.test(body)) outside();
  try {
    return [JSON.parse(`"${body}"`) as string, end + 1];
  } catch {
    return outside();
  }
}

function singleQuoted(text: string): [string, number] {
  let end = 1;
  for (;;) {
    end = text.indexOf("'", end);
    if (end < 0) outside();
    if (text[end + 1] === "'") end += 2;
    else break;
  }
  return [text.slice(1, end).replaceAll("''", "'"), end + 1];
}

function plain(text: string): Value {
  const hash = text.indexOf(' #');
  const value = hash < 0 ? text : text.slice(0, hash).trimEnd();
  if (
    value === '' ||
    INDICATOR.test(value) ||
    value.includes(': ') ||
    value.endsWith(':') ||
    MAYBE_NOT_STRING.test(value)
  )
    outside();
  if (NULLS.has(value)) return null;
  if (Object.hasOwn(BOOLS, value)) return BOOLS[value]!;
  return value;
}

/** `{a: b, c: d}` or `[a, b]` on one line, of plain scalars only. */
function flow(text: string): Value {
  const close = text[0] === '{' ? '}' : ']';
  const end = text.indexOf(close);
  if (end < 0) outside();
  const after = text.slice(end + 1);
  if (after !== '' && !/^\s+#/.test(after)) outside();
  const inner = text.slice(1, end).trim();
  if (/["'[\]{}#]/.test(inner)) outside();
  const parts = inner === '' ? [] : inner.split(',').map((p) => p.trim());
  if (parts.some((p) => p === '')) outside();
  if (close === ']') return parts.map(plain);
  const obj: { [k: string]: Value } = {};
  for (const p of parts) {
    const colon = p.indexOf(':');
    if (colon <= 0 || p[colon + 1] !== ' ') outside();
    const key = p.slice(0, colon);
    if (
      !KEY.test(key) ||
      Object.hasOwn(BOOLS, key) ||
      NULLS.has(key) ||
      key === '__proto__' ||
      Object.hasOwn(obj, key)
    )
      outside();
    obj[key] = plain(p.slice(colon + 1).trim());
  }
  return obj;
}
