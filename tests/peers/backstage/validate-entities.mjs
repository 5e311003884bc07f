// Every entity a catalog serves, checked with @backstage/catalog-model's own validators (this
// folder's node_modules): the envelope and entity JSON schemas, and the kind's schema for the
// kinds catalog-model defines (Template is the scaffolder's: envelope and entity only).
// Prints one JSON line {entities, byKind, violations: [...]}; exits 1 if any violation.
//
// usage: node validate-entities.mjs <catalog base URL> <token>
import {
  entityEnvelopeSchemaValidator,
  entitySchemaValidator,
  apiEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  domainEntityV1alpha1Validator,
  groupEntityV1alpha1Validator,
  locationEntityV1alpha1Validator,
  resourceEntityV1alpha1Validator,
  systemEntityV1alpha1Validator,
  userEntityV1alpha1Validator,
} from '@backstage/catalog-model';

const [base, token] = process.argv.slice(2);
const res = await fetch(`${base}/api/catalog/entities`, { headers: { authorization: `Bearer ${token}` } });
if (!res.ok) {
  console.error(`GET /api/catalog/entities: ${res.status}`);
  process.exit(1);
}
const entities = await res.json();
const envelope = entityEnvelopeSchemaValidator();
const entity = entitySchemaValidator();
const kinds = [apiEntityV1alpha1Validator, componentEntityV1alpha1Validator, domainEntityV1alpha1Validator,
  groupEntityV1alpha1Validator, locationEntityV1alpha1Validator, resourceEntityV1alpha1Validator,
  systemEntityV1alpha1Validator, userEntityV1alpha1Validator];
const violations = [];
const byKind = {};
for (const e of entities) {
  const ref = `${e.kind}:${e.metadata?.namespace ?? 'default'}/${e.metadata?.name}`;
  byKind[e.kind] = (byKind[e.kind] ?? 0) + 1;
  try {
    envelope(e);
    entity(e);
    let claimed = false;
    for (const v of kinds) {
      if (await v.check(e)) claimed = true;
    }
    if (!claimed && e.kind !== 'Template') violations.push(`${ref}: no kind validator accepts it`);
  } catch (err) {
    violations.push(`${ref}: ${err.message}`);
  }
}
console.log(JSON.stringify({ entities: entities.length, byKind, violations }));
process.exit(violations.length ? 1 : 0);
