// Checks recorded answers of the simulated GitHub against GitHub's own OpenAPI description
// (@octokit/openapi, api.github.com, the REST version the simulation claims: 2022-11-28).
//
// Input (file named by argv[2]): [{method, path, status, headers, body}] as the test recorded
// them. Each is matched to the description's path template and operation; its body is validated
// against that operation's response schema for the status (ajv, every error collected), and the
// headers the description declares for it must be there (`Link` only when the test says the
// answer has more pages). Output (stdout, JSON): {responses, operations, violations: [...]}.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import Ajv from "ajv";
import addFormats from "ajv-formats";

const require = createRequire(import.meta.url);
const spec = require("@octokit/openapi/generated/api.github.com.json");
const records = JSON.parse(readFileSync(process.argv[2], "utf8"));

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
// OpenAPI's numeric formats are ranges ajv does not know by name.
ajv.addFormat("int32", { type: "number", validate: (n) => Number.isInteger(n) && Math.abs(n) < 2 ** 31 });
ajv.addFormat("int64", { type: "number", validate: Number.isInteger });
// OpenAPI 3.0's `nullable` as JSON Schema: a null alternative (ajv takes `nullable` only beside
// `type`, and the description also puts it beside `allOf` / `$ref`).
function nullable(node) {
  if (Array.isArray(node)) return node.map(nullable);
  if (!node || typeof node !== "object") return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) out[k] = nullable(v);
  if (out.nullable === true) {
    delete out.nullable;
    if (typeof out.type === "string") {
      out.type = [out.type, "null"];
      if (out.enum && !out.enum.includes(null)) out.enum = [...out.enum, null];
    } else {
      return { anyOf: [out, { type: "null" }] };
    }
  } else if (out.nullable === false) {
    delete out.nullable;
  }
  return out;
}
ajv.addSchema({ $id: "github", components: nullable(spec.components) });

const templates = Object.keys(spec.paths).map((template) => ({
  template,
  params: (template.match(/\{/g) || []).length,
  re: new RegExp("^" + template.replace(/\{[^}]+\}/g, "[^/]+") + "$"),
}));

function resolve(obj) {
  // Follows local `$ref`s of the components (responses, headers) until a literal object.
  while (obj && obj.$ref) {
    const [, section, name] = obj.$ref.match(/^#\/components\/([^/]+)\/(.+)$/);
    obj = spec.components[section][name];
  }
  return obj;
}

// `$ref`s inside a schema point at `#/components/...` of the description: rewrite them to the
// schema added above.
function rebase(schema) {
  return JSON.parse(JSON.stringify(schema).replace(/"#\/components\//g, '"github#/components/'));
}

const validators = new Map();
const violations = [];
const operations = new Set();
for (const r of records) {
  const where = `${r.method} ${r.path} → ${r.status}`;
  const path = r.path.split("?")[0];
  const matches = templates.filter((t) => t.re.test(path)).sort((a, b) => a.params - b.params);
  if (matches.length === 0) {
    violations.push({ where, error: "no such path in GitHub's description" });
    continue;
  }
  const op = spec.paths[matches[0].template][r.method.toLowerCase()];
  if (!op) {
    violations.push({ where, error: `${matches[0].template} has no ${r.method}` });
    continue;
  }
  operations.add(op.operationId);
  const response = resolve(op.responses[String(r.status)]);
  if (!response) {
    violations.push({ where, error: `${op.operationId} does not answer ${r.status}` });
    continue;
  }
  for (const [name, h] of Object.entries(response.headers || {})) {
    if (name.toLowerCase() === "link" && !r.paginated) continue;
    if (!(name.toLowerCase() in r.headers)) {
      violations.push({ where, error: `header ${name} (declared by ${op.operationId}) missing` });
    }
    void h;
  }
  const media = response.content && (response.content["application/json"] || response.content["application/scim+json"]);
  if (!media) {
    if (r.body !== null && r.body !== undefined && r.status !== 304) {
      violations.push({ where, error: "a body where the description has none" });
    }
    continue;
  }
  const key = `${op.operationId} ${r.status}`;
  if (!validators.has(key)) validators.set(key, ajv.compile(rebase(nullable(media.schema))));
  const validate = validators.get(key);
  if (!validate(r.body)) {
    for (const e of validate.errors) {
      violations.push({ where, operation: op.operationId, at: e.instancePath, error: e.message, params: e.params });
    }
  }
}
console.log(JSON.stringify({ responses: records.length, operations: [...operations].sort(), violations }, null, 1));
