import React, { useState } from 'react';
import Button from '@material-ui/core/Button';
import Dialog from '@material-ui/core/Dialog';
import DialogActions from '@material-ui/core/DialogActions';
import DialogContent from '@material-ui/core/DialogContent';
import DialogContentText from '@material-ui/core/DialogContentText';
import DialogTitle from '@material-ui/core/DialogTitle';
import Typography from '@material-ui/core/Typography';
import { GraphQLResult } from '../api/types';

export interface ConfirmActionProps {
  /** `sync`, `refresh`, `rollback`, `restart`: also the button's `data-action`. */
  action: string;
  label: string;
  /** What will happen, said in the confirmation dialog. */
  question: string;
  /** Runs the mutation; errors on it are shown beside the button. */
  run(): Promise<GraphQLResult<unknown>>;
  onDone?(): void;
  target: string;
}

/**
 * An action button behind a confirmation. Render it only where the server's `viewerCan`
 * allows the action: the server refuses anyway, but a button that cannot work is a lie.
 */
export function ConfirmAction(props: ConfirmActionProps) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string }>();

  const confirm = async () => {
    setBusy(true);
    try {
      const r = await props.run();
      if (r.errors?.length) {
        const e = r.errors[0];
        setOutcome({
          ok: false,
          text: `${e.message}${e.extensions?.code ? ` (${e.extensions.code})` : ''}`,
        });
      } else {
        setOutcome({ ok: true, text: `${props.label}: requested` });
        props.onDone?.();
      }
    } catch (e) {
      setOutcome({ ok: false, text: (e as Error).message });
    } finally {
      setBusy(false);
      setOpen(false);
    }
  };

  return (
    <>
      <Button
        size="small"
        variant="outlined"
        data-action={props.action}
        data-target={props.target}
        disabled={busy}
        onClick={() => setOpen(true)}
      >
        {props.label}
      </Button>
      {outcome && (
        <Typography
          variant="caption"
          color={outcome.ok ? 'textSecondary' : 'error'}
          data-outcome={outcome.ok ? 'ok' : 'error'}
          style={{ marginLeft: 8 }}
        >
          {outcome.text}
        </Typography>
      )}
      <Dialog open={open} onClose={() => setOpen(false)}>
        <DialogTitle>{props.label}?</DialogTitle>
        <DialogContent>
          <DialogContentText>{props.question}</DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setOpen(false)} data-confirm="cancel">
            Cancel
          </Button>
          <Button
            onClick={confirm}
            color="primary"
            variant="contained"
            disabled={busy}
            data-confirm="ok"
          >
            {props.label}
          </Button>
        </DialogActions>
      </Dialog>
    </>
  );
}
