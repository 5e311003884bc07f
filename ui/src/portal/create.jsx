/** @jsxImportSource preact */
// "Create a service from a template": pick a template, fill a form generated from its
// parameters (JSON Schema per step), run it, follow the task's log live, and end with links to
// what it made (the component's page, its repository, its ArgoCD application).
import { useEffect, useState } from 'preact/hooks';
import { gql, live } from './api.js';
import { ErrorNote, Link, entityPath } from './widgets.jsx';

const TEMPLATES = `query Templates {
  entities(filter: { kind: "Template" }, first: 100) {
    nodes { ref name title description ... on Template { parameters } }
  }
}`;
const CREATE = `mutation Create($templateRef: String!, $values: JSON!) {
  createFromTemplate(input: { templateRef: $templateRef, values: $values }) { id taskId }
}`;
const TASK = `subscription Task($id: ID!) {
  templateTask(id: $id) { id type message stepId status output failed }
}`;
const CREATED = `query Created($ref: String!) {
  entity(ref: $ref) { ref name ... on Component { githubSlug repository { url } applications { key name } } }
}`;

// ANSI colour codes in scaffolder log lines.
const plain = (s) => (s ?? '').replace(/\u001b\[[0-9;]*m/g, '');

export function Create() {
  const [templates, setTemplates] = useState(null);
  const [error, setError] = useState(null);
  const [chosen, setChosen] = useState(null);
  useEffect(() => {
    gql(TEMPLATES).then((r) => setTemplates(r.data.entities.nodes)).catch(setError);
  }, []);
  if (chosen) return <TemplateForm template={chosen} back={() => setChosen(null)} />;
  return (
    <main class="create">
      <h1>Create something new</h1>
      <ErrorNote error={error} />
      {!templates && !error && <p class="muted">Loading…</p>}
      <div class="tiles">
        {(templates ?? []).map((t) => (
          <button class="tile" data-template={t.ref} onClick={() => setChosen(t)}>
            <strong>{t.title ?? t.name}</strong>
            <span class="muted small">{t.description}</span>
          </button>
        ))}
      </div>
    </main>
  );
}

function fieldsOf(template) {
  const steps = Array.isArray(template.parameters) ? template.parameters : template.parameters ? [template.parameters] : [];
  return steps.flatMap((step) =>
    Object.entries(step.properties ?? {}).map(([key, schema]) => ({
      key,
      schema,
      step: step.title,
      required: (step.required ?? []).includes(key),
    })),
  );
}

function initialValues(fields) {
  return Object.fromEntries(fields.filter((f) => f.schema.default !== undefined).map((f) => [f.key, f.schema.default]));
}

function problems(fields, values) {
  const out = {};
  for (const f of fields) {
    const v = values[f.key];
    if (f.required && (v === undefined || v === '')) out[f.key] = 'required';
    else if (typeof v === 'string' && f.schema.pattern && v !== '' && !new RegExp(f.schema.pattern).test(v)) {
      out[f.key] = `must match ${f.schema.pattern}`;
    }
  }
  return out;
}

function Input({ field, value, onChange }) {
  const s = field.schema;
  const id = `field-${field.key}`;
  if (s.enum) {
    return (
      <select id={id} name={field.key} value={value ?? ''} onChange={(e) => onChange(e.target.value)}>
        <option value="">—</option>
        {s.enum.map((v, i) => <option value={v}>{s.enumNames?.[i] ?? v}</option>)}
      </select>
    );
  }
  if (s.type === 'boolean') {
    return <input id={id} name={field.key} type="checkbox" checked={!!value} onChange={(e) => onChange(e.target.checked)} />;
  }
  if (s.type === 'number' || s.type === 'integer') {
    return <input id={id} name={field.key} type="number" value={value ?? ''} onInput={(e) => onChange(e.target.value === '' ? undefined : Number(e.target.value))} />;
  }
  return <input id={id} name={field.key} type="text" value={value ?? ''} onInput={(e) => onChange(e.target.value)} />;
}

function TemplateForm({ template, back }) {
  const fields = fieldsOf(template);
  const [values, setValues] = useState(() => initialValues(fields));
  const [touched, setTouched] = useState(false);
  const [task, setTask] = useState(null);
  const [error, setError] = useState(null);
  const errors = problems(fields, values);

  const submit = async (e) => {
    e.preventDefault();
    setTouched(true);
    if (Object.keys(errors).length) return;
    setError(null);
    try {
      const r = await gql(CREATE, { templateRef: template.ref, values });
      setTask(r.data.createFromTemplate);
    } catch (err) {
      setError(err);
    }
  };

  if (task) return <TaskLog task={task} template={template} />;
  return (
    <main class="create">
      <p><button class="link" onClick={back}>← templates</button></p>
      <h1>{template.title ?? template.name}</h1>
      <p class="muted">{template.description}</p>
      <form onSubmit={submit} data-form={template.ref}>
        {fields.map((f) => (
          <div class="field">
            <label for={`field-${f.key}`}>
              {f.schema.title ?? f.key}
              {f.required && ' *'}
            </label>
            <Input field={f} value={values[f.key]} onChange={(v) => setValues({ ...values, [f.key]: v })} />
            {f.schema.description && <div class="muted small">{f.schema.description}</div>}
            {touched && errors[f.key] && <div class="error small" data-invalid={f.key}>{errors[f.key]}</div>}
          </div>
        ))}
        <button type="submit" class="primary">Create</button>
      </form>
      <ErrorNote error={error} />
    </main>
  );
}

function TaskLog({ task, template }) {
  const [lines, setLines] = useState([]);
  const [done, setDone] = useState(null);
  const [created, setCreated] = useState(null);

  useEffect(() => {
    // A task's stream replays from its start, so a reconnect loses nothing; skip what we have.
    const seen = new Set();
    return live(TASK, { id: task.id }, (ev) => {
      if (seen.has(ev.id)) return;
      seen.add(ev.id);
      if (ev.message) setLines((l) => [...l, { step: ev.stepId, text: plain(ev.message) }]);
      if (ev.type === 'COMPLETION' || ev.type === 'CANCELLED') setDone(ev);
    });
  }, [task.id]);

  const links = done?.output?.links ?? [];
  const entityRef = links.find((l) => l.entityRef)?.entityRef;
  useEffect(() => {
    if (!entityRef) return undefined;
    // The new component appears in the graph once the catalog has it: ask until it does.
    let stop = false;
    const ask = () =>
      gql(CREATED, { ref: entityRef })
        .then((r) => {
          if (stop) return;
          if (r.data.entity) setCreated(r.data.entity);
          else setTimeout(ask, 500);
        })
        .catch(() => !stop && setTimeout(ask, 1000));
    ask();
    return () => { stop = true; };
  }, [entityRef]);

  return (
    <main class="create">
      <h1>Running {template.title ?? template.name}</h1>
      <p class="muted small">task {task.taskId}</p>
      <pre class="log" data-log>
        {lines.map((l) => `${l.step ? `[${l.step}] ` : ''}${l.text}\n`)}
      </pre>
      {!done && <p class="muted">Running…</p>}
      {done && (
        <div data-done={done.failed ? 'failed' : 'ok'}>
          <p class={done.failed ? 'error' : 'ok'}>{done.failed ? 'The task failed.' : 'Done.'}</p>
          <ul class="links">
            {links.map((l) =>
              l.entityRef ? (
                <li><Link href={entityPath(l.entityRef)} data-link="entity">{l.title ?? l.entityRef}</Link></li>
              ) : l.url ? (
                <li><a href={l.url} rel="noreferrer">{l.title ?? l.url}</a></li>
              ) : null,
            )}
            {created?.repository && <li><a href={created.repository.url} data-link="repository" rel="noreferrer">Repository {created.githubSlug}</a></li>}
            {(created?.applications ?? []).map((a) => (
              <li data-link="application">ArgoCD application {a.key}</li>
            ))}
          </ul>
        </div>
      )}
    </main>
  );
}
