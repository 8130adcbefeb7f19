// Printers shared by every resource verb (docs/cli.md#conventions): tables, -o wide|yaml|json|name, List wrapping.
import { createRequire } from 'node:module';
import type { KubeObject } from '../core/kube-object.ts';

export type OutputFormat = 'table' | 'wide' | 'yaml' | 'json' | 'name' | 'jsonpath' | 'custom-columns';
/** The formats without an argument; `jsonpath=TEMPLATE` and `custom-columns=SPEC` carry theirs (templates.ts). */
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'wide', 'yaml', 'json', 'name'];
const TEMPLATE_FORMATS = ['jsonpath', 'custom-columns'] as const;

/** Parses `-o`: a plain format, or a template format with its argument; undefined when invalid. */
export function parseOutput(value: string): { output: OutputFormat; template?: string } | undefined {
  if ((OUTPUT_FORMATS as string[]).includes(value)) return { output: value as OutputFormat };
  const eq = value.indexOf('=');
  const name = value.slice(0, eq);
  if (eq > 0 && (TEMPLATE_FORMATS as readonly string[]).includes(name) && value.length > eq + 1) {
    return { output: name as OutputFormat, template: value.slice(eq + 1) };
  }
  return undefined;
}

export interface Column<T> {
  header: string;
  /** Shown only with -o wide. */
  wide?: boolean;
  value(row: T): string;
}

/** Each column as wide as its longest cell plus three spaces; the last column is not padded. */
export function renderTable(headers: string[], rows: string[][], noHeaders = false): string {
  const all = noHeaders ? rows : [headers.map((h) => h.toUpperCase()), ...rows];
  if (all.length === 0) return '';
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 3)))
        .join('')
        .trimEnd(),
    )
    .map((l) => l + '\n')
    .join('');
}

export function renderRows<T>(columns: Column<T>[], items: T[], wide: boolean, noHeaders: boolean): string {
  const cols = columns.filter((c) => wide || !c.wide);
  return renderTable(
    cols.map((c) => c.header),
    items.map((it) => cols.map((c) => c.value(it))),
    noHeaders,
  );
}

/** Drops fields no reader wants (managedFields) without mutating the input. */
export function cleanForOutput(obj: unknown): unknown {
  const o = obj as KubeObject | null | undefined;
  if (!o || typeof o !== 'object' || !o.metadata?.managedFields) return obj;
  const { managedFields: _dropped, ...metadata } = o.metadata;
  return { ...o, metadata };
}

/** One object as itself, several (or a list query) as a v1 List. */
export function renderObjects(objs: unknown[], format: 'yaml' | 'json', asList: boolean): string {
  const cleaned = objs.map(cleanForOutput);
  const doc =
    !asList && cleaned.length === 1 ? cleaned[0] : { apiVersion: 'v1', kind: 'List', items: cleaned };
  return format === 'json'
    ? JSON.stringify(doc, null, 2) + '\n'
    : (createRequire(import.meta.url)('yaml') as typeof import('yaml')).stringify(doc, { lineWidth: 0 });
}
