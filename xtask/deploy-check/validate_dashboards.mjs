// Validates Grafana dashboards (files on the command line) against the JSON schema of
// the Dashboard type of @grafana/schema (made by ts-json-schema-generator, argv[2]),
// and checks the import inputs Grafana asks for.
import fs from 'node:fs';
import Ajv from 'ajv';

const [schemaFile, ...files] = process.argv.slice(2);
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(JSON.parse(fs.readFileSync(schemaFile, 'utf8')));
let failed = 0;
for (const file of files) {
  const dashboard = JSON.parse(fs.readFileSync(file, 'utf8'));
  const inputs = dashboard.__inputs ?? [];
  const problems = [];
  if (!inputs.some((input) => input.name === 'DS_PROMETHEUS' && input.type === 'datasource' && input.pluginId === 'prometheus')) {
    problems.push('no __inputs entry DS_PROMETHEUS (type datasource, pluginId prometheus)');
  }
  // __inputs and __requires belong to the export format, not to the dashboard model.
  delete dashboard.__inputs;
  delete dashboard.__requires;
  if (!validate(dashboard)) {
    problems.push(...validate.errors.map((error) => `${error.instancePath} ${error.message}`));
  }
  if (problems.length) {
    failed++;
    console.log(`${file}: INVALID\n  ${problems.join('\n  ')}`);
  } else {
    console.log(`${file}: valid (${dashboard.panels.length} panels)`);
  }
}
process.exit(failed ? 1 : 0);
