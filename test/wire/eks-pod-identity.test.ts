// EKS pod identity associations on the wire (docs/aws-simulator.md, "How faithful is it?"). moto (5.x) has no pod
// identity association operations and no eks-auth, so there is nothing to compare call by call; this file says so by
// calling moto, and fails the day moto answers, so the comparison gets written. Until then the simulator's answers are
// held to the EKS API model that ships with botocore (moto's own dependency): every member it sends, `policy`
// included, is one the model defines for that shape, and its error for a refused session policy is one the model
// lists for the operation.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/runtime/log.ts';
import { AwsError, createAwsClients } from '../../src/aws/index.ts';
import { startAwsSimulator, type AwsSimulator } from '../../src/sandbox/aws-sim/index.ts';
import { motoMissing, recordingProxy, startMoto } from './peers.ts';

interface EksModel {
  association: string[];
  summary: string[];
  createInput: string[];
  updateInput: string[];
  createErrors: string[];
  updateErrors: string[];
}

/** Members and errors of the EKS service model (botocore's service-2.json) for the pod identity operations. */
function eksModel(): EksModel {
  const script = `
import json, botocore.session
m = botocore.session.get_session().get_service_model('eks')
op = lambda n: m.operation_model(n)
print(json.dumps({
  'association': list(m.shape_for('PodIdentityAssociation').members),
  'summary': list(m.shape_for('PodIdentityAssociationSummary').members),
  'createInput': list(op('CreatePodIdentityAssociation').input_shape.members),
  'updateInput': list(op('UpdatePodIdentityAssociation').input_shape.members),
  'createErrors': [e.name for e in op('CreatePodIdentityAssociation').error_shapes],
  'updateErrors': [e.name for e in op('UpdatePodIdentityAssociation').error_shapes],
}))`;
  const r = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot read the EKS model from botocore: ${r.stderr}`);
  return JSON.parse(r.stdout) as EksModel;
}

const CLUSTER = 'wire';
const POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::reports/team-a/*' }],
});
const TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: 'sts:AssumeRole' },
  ],
});

describe.skipIf(Boolean(motoMissing))(
  `EKS pod identity associations on the wire${motoMissing ? ` (skipped: ${motoMissing})` : ''}`,
  () => {
    let moto: { url: string; stop(): void } | undefined;
    let sim: AwsSimulator;
    let model: EksModel;

    beforeAll(async () => {
      moto = await startMoto();
      sim = await startAwsSimulator({ port: 0, seed: 13 });
      sim.control.registerCluster({ name: CLUSTER, issuer: 'https://issuer.invalid' });
      model = eksModel();
    });
    afterAll(async () => {
      moto?.stop();
      await sim?.close();
    });

    it('moto does not implement CreatePodIdentityAssociation (404), so it cannot be compared yet', async () => {
      const aws = createAwsClients({
        region: 'us-east-1',
        endpointUrl: moto!.url,
        credentials: {
          accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
          secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
        },
        log: silentLogger(),
        maxAttempts: 1,
      });
      try {
        const e = await aws.eks
          .createPodIdentityAssociation({
            clusterName: CLUSTER,
            namespace: 'team-a',
            serviceAccount: 'reader',
            roleArn: 'arn:aws:iam::123456789012:role/reader',
            disableSessionTags: true,
            policy: POLICY,
            tags: {},
            clientRequestToken: 'wire-1',
          })
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(e).toBeInstanceOf(AwsError);
        expect((e as AwsError).httpStatus).toBe(404);
      } finally {
        aws.destroy();
      }
    });

    it('the simulator sends only members of the EKS model, policy included, and refuses a bad policy with a modelled error', async () => {
      expect(model.association).toContain('policy');
      expect(model.createInput).toContain('policy');
      expect(model.updateInput).toContain('policy');
      const proxy = await recordingProxy(sim.url);
      const aws = createAwsClients({
        region: sim.control.region,
        endpointUrl: proxy.url,
        credentials: sim.control.adminCredentials,
        log: silentLogger(),
        maxAttempts: 1,
      });
      const associationOf = () => Object.keys(JSON.parse(proxy.last().body).association as object);
      try {
        const role = await aws.iam.createRole({ roleName: 'wire-reader', assumeRolePolicyDocument: TRUST });
        const a = await aws.eks.createPodIdentityAssociation({
          clusterName: CLUSTER,
          namespace: 'team-a',
          serviceAccount: 'reader',
          roleArn: role.arn,
          disableSessionTags: true,
          policy: POLICY,
          tags: { team: 'a' },
          clientRequestToken: 'wire-create',
        });
        const created = associationOf();
        expect(created).toContain('policy');
        for (const k of created) expect(model.association, `Create association.${k}`).toContain(k);

        await aws.eks.describe(CLUSTER, a.associationId);
        const described = associationOf();
        expect(described).toContain('policy');
        for (const k of described) expect(model.association, `Describe association.${k}`).toContain(k);

        await aws.eks.update({
          clusterName: CLUSTER,
          associationId: a.associationId,
          roleArn: role.arn,
          targetRoleArn: '',
          disableSessionTags: true,
          policy: POLICY.replace('GetObject', 'ListBucket'),
          clientRequestToken: 'wire-update',
        });
        for (const k of associationOf()) expect(model.association, `Update association.${k}`).toContain(k);

        await aws.eks.list(CLUSTER, { namespace: 'team-a' });
        const summaries = JSON.parse(proxy.last().body).associations as object[];
        expect(summaries).toHaveLength(1);
        // The model's summary has no policy; neither does the simulator's List.
        expect(model.summary).not.toContain('policy');
        for (const k of Object.keys(summaries[0]!)) expect(model.summary, `List summary.${k}`).toContain(k);

        const refused = await aws.eks
          .createPodIdentityAssociation({
            clusterName: CLUSTER,
            namespace: 'team-a',
            serviceAccount: 'writer',
            roleArn: role.arn,
            disableSessionTags: true,
            policy: '{"Statement": [',
            tags: {},
            clientRequestToken: 'wire-refused',
          })
          .then(
            () => undefined,
            (err: unknown) => err as AwsError,
          );
        const raw = proxy.last();
        expect(raw.status).toBe(400);
        expect(raw.headers['x-amzn-errortype']).toMatch(/^InvalidParameterException/);
        expect(model.createErrors).toContain('InvalidParameterException');
        expect(model.updateErrors).toContain('InvalidParameterException');
        expect(Object.keys(JSON.parse(raw.body))).toEqual(['message']);
        expect(refused?.code).toBe('InvalidParameterException');
      } finally {
        aws.destroy();
        await proxy.close();
      }
    });
  },
);
