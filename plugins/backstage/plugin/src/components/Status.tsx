import React, { useEffect, useState } from 'react';
import {
  StatusAborted,
  StatusError,
  StatusOK,
  StatusPending,
  StatusRunning,
  StatusWarning,
} from '@backstage/core-components';
import { HealthStatus, SyncStatus } from '../api/types';

const SYNC_TEXT: Record<SyncStatus, string> = {
  SYNCED: 'Synced',
  OUT_OF_SYNC: 'OutOfSync',
  UNKNOWN: 'Unknown',
};

const HEALTH_TEXT: Record<HealthStatus, string> = {
  HEALTHY: 'Healthy',
  PROGRESSING: 'Progressing',
  DEGRADED: 'Degraded',
  SUSPENDED: 'Suspended',
  MISSING: 'Missing',
  UNKNOWN: 'Unknown',
};

export function SyncBadge({ status }: { status: SyncStatus }) {
  const Icon =
    status === 'SYNCED' ? StatusOK : status === 'OUT_OF_SYNC' ? StatusWarning : StatusPending;
  return (
    <span data-badge="sync" data-value={status}>
      <Icon>{SYNC_TEXT[status] ?? status}</Icon>
    </span>
  );
}

export function HealthBadge({ status }: { status: HealthStatus }) {
  const Icon = {
    HEALTHY: StatusOK,
    PROGRESSING: StatusRunning,
    DEGRADED: StatusError,
    SUSPENDED: StatusAborted,
    MISSING: StatusWarning,
    UNKNOWN: StatusPending,
  }[status] ?? StatusPending;
  return (
    <span data-badge="health" data-value={status}>
      <Icon>{HEALTH_TEXT[status] ?? status}</Icon>
    </span>
  );
}

/** Re-renders every `ms` so relative ages stay true. */
export function useNow(ms = 5_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function age(iso: string | null | undefined, now: number): string {
  if (!iso) return 'an unknown time ago';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
