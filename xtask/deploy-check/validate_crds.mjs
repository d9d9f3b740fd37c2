// Validates prometheus-operator resources (JSON files on the command line) against the
// schemas @kubernetes-models/prometheus-operator generates from the operator's CRDs.
import fs from 'node:fs';
import {
  PodMonitor,
  PrometheusRule,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';

const models = { PodMonitor, PrometheusRule, ServiceMonitor };
let failed = 0;
for (const file of process.argv.slice(2)) {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  const Model = models[doc.kind];
  if (!Model) {
    console.log(`${file}: no schema for kind ${doc.kind}`);
    failed++;
    continue;
  }
  try {
    new Model(doc).validate();
    console.log(`${file}: ${doc.kind} ${doc.metadata.name} valid`);
  } catch (error) {
    console.log(`${file}: ${doc.kind} INVALID: ${error.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
