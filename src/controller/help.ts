// `lanyard controller --help`: every flag with its argument type, what it does and its default, rendered from the
// flag table the parser reads (src/config/controller.ts), so the two cannot drift apart.
import { controllerFlagHelp } from '../config/controller.ts';

export function controllerHelp(): string {
  return [
    'Usage: lanyard controller [flags]',
    '',
    'Runs the reconcilers (identity verifier, PodIdentityAssociation controller, promotions) behind a',
    'coordination.k8s.io Lease. Flags use pflag syntax (--flag=value or --flag value) and Go durations.',
    '',
    'Flags:',
    ...controllerFlagHelp(),
    '',
    'See docs/verified-start.md for the verifier and docs/associations.md for associations.',
    '',
  ].join('\n');
}
