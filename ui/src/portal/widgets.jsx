/** @jsxImportSource preact */
// Small shared pieces: status badges, cards, the confirmation dialog, links inside the portal.
import { useState } from 'preact/hooks';

const TONES = {
  SYNCED: 'ok', HEALTHY: 'ok', SUCCEEDED: 'ok', COMPLETE: 'ok', Running: 'ok', success: 'ok',
  OUT_OF_SYNC: 'warn', PROGRESSING: 'info', RUNNING: 'info', SUSPENDED: 'warn', Pending: 'warn',
  in_progress: 'info', queued: 'info', TERMINATING: 'warn',
  DEGRADED: 'bad', MISSING: 'bad', FAILED: 'bad', ERROR: 'bad', failure: 'bad', Failed: 'bad',
};

export function Badge({ value, label }) {
  if (!value) return null;
  return (
    <span class={`badge ${TONES[value] ?? 'neutral'}`} data-badge={label ?? ''} data-value={value}>
      {label ? `${label}: ` : ''}
      {String(value).replace(/_/g, ' ').toLowerCase()}
    </span>
  );
}

export function Card({ title, id, children, actions }) {
  return (
    <section class="card" id={id} data-card={id}>
      <header>
        <h2>{title}</h2>
        <div class="actions">{actions}</div>
      </header>
      <div class="body">{children}</div>
    </section>
  );
}

/** Navigates inside the portal without a reload. */
export function navigate(path) {
  history.pushState(null, '', path);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function Link({ href, children, ...rest }) {
  return (
    <a
      href={href}
      {...rest}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.button !== 0) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      {children}
    </a>
  );
}

export function entityPath(ref) {
  const m = /^([^:]+):([^/]+)\/(.+)$/.exec(ref);
  return m ? `/ui/entity/${m[1]}/${m[2]}/${m[3]}` : '/ui';
}

/**
 * A button that asks before it acts: `run()` is the mutation; its result or error is shown
 * beside the button.
 */
export function ActionButton({ label, confirm, run, name }) {
  const [asking, setAsking] = useState(false);
  const [state, setState] = useState(null);
  const go = async () => {
    setAsking(false);
    setState({ busy: true });
    try {
      const message = await run();
      setState({ ok: message ?? 'done' });
    } catch (e) {
      setState({ error: e.message });
    }
  };
  return (
    <span class="action">
      <button data-action={name} disabled={state?.busy} onClick={() => setAsking(true)}>
        {label}
      </button>
      {state?.ok && <span class="result ok" data-result={name}>{state.ok}</span>}
      {state?.error && <span class="result bad" data-result={name}>{state.error}</span>}
      {asking && (
        <div class="modal" role="dialog" aria-modal="true" data-confirm={name}>
          <div class="dialog">
            <p>{confirm}</p>
            <button class="primary" data-confirm-yes onClick={go}>
              {label}
            </button>
            <button onClick={() => setAsking(false)}>Cancel</button>
          </div>
        </div>
      )}
    </span>
  );
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return <p class="error">{error.message ?? String(error)}</p>;
}

export function ago(iso) {
  if (!iso) return '';
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.round(s)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}
