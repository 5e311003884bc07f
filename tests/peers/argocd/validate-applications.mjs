// Checks every Application and AppProject the simulated ArgoCD serves against Argo CD's own
// CRD schemas, as @kubernetes-models/argo-cd generates validators from them.
//
// Usage: node validate-applications.mjs <argocd base URL> <token>
// Output (stdout, JSON): {applications, projects, violations: [{name, error}]}.
import { Application } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application";
import { AppProject } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/AppProject";

const [base, token] = process.argv.slice(2);
const headers = { Authorization: `Bearer ${token}` };

async function get(path) {
  const r = await fetch(`${base}${path}`, { headers });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

const violations = [];
function check(Model, kind, item) {
  // The REST API leaves out the type meta the CRD object carries.
  const object = { apiVersion: "argoproj.io/v1alpha1", kind, ...item };
  try {
    new Model(object).validate();
  } catch (e) {
    violations.push({ kind, name: item?.metadata?.name, error: String(e.message || e).slice(0, 2000) });
  }
}

const apps = (await get("/api/v1/applications")).items || [];
for (const a of apps) {
  check(Application, "Application", a);
  // And each one as GET /api/v1/applications/{name} answers it.
  check(Application, "Application", await get(`/api/v1/applications/${a.metadata.name}`));
}
const projects = (await get("/api/v1/projects")).items || [];
for (const p of projects) check(AppProject, "AppProject", p);

console.log(JSON.stringify({ applications: apps.length, projects: projects.length, violations }, null, 1));
