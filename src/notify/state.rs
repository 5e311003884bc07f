//! The bot's durable state in `state_dir/state.json`: each stream's cursor, the keys of the
//! notifications already handled (sent, suppressed or given up), the ones being sent right now
//! (`pending`: written *before* the post, so a crash between Slack's answer and the next write
//! is found again at start — `mod.rs` asks Slack whether the message is there), the dedupe
//! memory and the channel ids Slack answered with. Every change is written at once, atomically
//! (a temporary file, fsync, rename, fsync of the directory): a `kill -9` leaves the old state
//! or the new one, never half of one.
//!
//! Only `notify/mod.rs` uses it. The lock is a `parking_lot::Mutex`, held for the short
//! in-memory change and the small file write, never across an `.await`.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// How many handled keys are remembered (the replay window of the server is shorter).
const KEEP_KEYS: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot write the state in {dir}: {source}")]
    Write {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("the state file {path} is unreadable ({message}); move it away to start afresh")]
    Corrupt { path: PathBuf, message: String },
}

/// A notification being sent: where, so that a restart can look for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    pub key: String,
    /// The channel as routed (`#app-team`) — and its id when Slack told it before.
    pub channel: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    /// Stream name → the cursor of the last event fully handled.
    cursors: BTreeMap<String, String>,
    /// Handled notification keys, oldest first, with how they ended (`sent`, `suppressed`,
    /// `failed`, `unrouted`).
    handled: VecDeque<(String, String)>,
    pending: Vec<Pending>,
    /// Dedupe memory: `app|trigger|detail` → unix seconds of the last one sent.
    recent: BTreeMap<String, i64>,
    /// Channel name → the id Slack answered with.
    channel_ids: BTreeMap<String, String>,
}

pub struct NotifyState {
    path: PathBuf,
    dir: PathBuf,
    inner: Mutex<Persisted>,
    /// When the state was last written, and whether a cursor moved since (`set_cursor`).
    written: Mutex<(Instant, bool)>,
}

/// A cursor that moved without a notification is written at most this often: the events in
/// between are replayed after a crash, and their notices are found handled.
const CURSOR_WRITE_EVERY: Duration = Duration::from_secs(1);

impl NotifyState {
    /// Opens (or creates) the state in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Write {
            dir: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("state.json");
        let inner = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Persisted::default(),
            Err(e) => {
                return Err(StateError::Corrupt {
                    path,
                    message: e.to_string(),
                })
            }
        };
        Ok(Self {
            path,
            dir: dir.to_path_buf(),
            inner: Mutex::new(inner),
            written: Mutex::new((Instant::now(), false)),
        })
    }

    pub fn cursor(&self, stream: &str) -> Option<String> {
        self.inner.lock().cursors.get(stream).cloned()
    }

    /// Moves a stream's cursor. Every event moves one, most without a notification: the file
    /// is rewritten (and fsynced) at most every [`CURSOR_WRITE_EVERY`] for them, and with the
    /// next notification's write or [`Self::flush`] otherwise.
    pub fn set_cursor(&self, stream: &str, cursor: &str) -> Result<(), StateError> {
        self.inner
            .lock()
            .cursors
            .insert(stream.to_string(), cursor.to_string());
        let due = {
            let mut w = self.written.lock();
            w.1 = true;
            w.0.elapsed() >= CURSOR_WRITE_EVERY
        };
        if due {
            self.change(|_| {})
        } else {
            Ok(())
        }
    }

    /// Writes a cursor that moved since the last write (at shutdown).
    pub fn flush(&self) -> Result<(), StateError> {
        if self.written.lock().1 {
            self.change(|_| {})
        } else {
            Ok(())
        }
    }

    /// Was this notification handled already (sent, suppressed, failed)?
    pub fn handled(&self, key: &str) -> bool {
        self.inner.lock().handled.iter().any(|(k, _)| k == key)
    }

    /// Records how a notification ended (and drops it from `pending`).
    pub fn finish(&self, key: &str, outcome: &str) -> Result<(), StateError> {
        self.change(|p| {
            p.pending.retain(|x| x.key != key);
            p.handled.push_back((key.to_string(), outcome.to_string()));
            while p.handled.len() > KEEP_KEYS {
                p.handled.pop_front();
            }
        })
    }

    /// Written before a post: a crash after it leaves the key here for the next start.
    pub fn begin(&self, pending: Pending) -> Result<(), StateError> {
        self.change(|p| {
            p.pending.retain(|x| x.key != pending.key);
            p.pending.push(pending);
        })
    }

    pub fn pending(&self) -> Vec<Pending> {
        self.inner.lock().pending.clone()
    }

    /// Forgets a pending post that never reached Slack (it will be sent again).
    pub fn abandon(&self, key: &str) -> Result<(), StateError> {
        self.change(|p| p.pending.retain(|x| x.key != key))
    }

    /// When the notification `dedupe_key` was last sent (unix seconds).
    pub fn last_sent(&self, dedupe_key: &str) -> Option<i64> {
        self.inner.lock().recent.get(dedupe_key).copied()
    }

    pub fn note_sent(&self, dedupe_key: &str, at: i64) -> Result<(), StateError> {
        self.change(|p| {
            p.recent.insert(dedupe_key.to_string(), at);
            // Bounded: entries older than a day cannot suppress anything.
            p.recent.retain(|_, t| *t > at - 86_400);
        })
    }

    pub fn channel_id(&self, channel: &str) -> Option<String> {
        self.inner.lock().channel_ids.get(channel).cloned()
    }

    pub fn set_channel_id(&self, channel: &str, id: &str) -> Result<(), StateError> {
        if self.channel_id(channel).as_deref() == Some(id) {
            return Ok(());
        }
        self.change(|p| {
            p.channel_ids.insert(channel.to_string(), id.to_string());
        })
    }

    /// Applies `f` and writes the whole state atomically.
    fn change(&self, f: impl FnOnce(&mut Persisted)) -> Result<(), StateError> {
        let mut guard = self.inner.lock();
        f(&mut guard);
        let bytes = serde_json::to_vec(&*guard).expect("BUG: the state serializes");
        *self.written.lock() = (Instant::now(), false);
        self.write_atomically(&bytes)
            .map_err(|source| StateError::Write {
                dir: self.dir.clone(),
                source,
            })
    }

    fn write_atomically(&self, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join("state.json.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        // The rename itself is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = NotifyState::open(dir.path()).unwrap();
        s.set_cursor("healthTransitions", "abc").unwrap();
        s.begin(Pending {
            key: "k1".into(),
            channel: "#app-team".into(),
        })
        .unwrap();
        s.begin(Pending {
            key: "k2".into(),
            channel: "#app-team".into(),
        })
        .unwrap();
        s.finish("k1", "sent").unwrap();
        s.set_channel_id("#app-team", "C0123").unwrap();
        drop(s);
        let s = NotifyState::open(dir.path()).unwrap();
        assert_eq!(s.cursor("healthTransitions").as_deref(), Some("abc"));
        assert!(s.handled("k1") && !s.handled("k2"));
        assert_eq!(s.pending().len(), 1);
        assert_eq!(s.channel_id("#app-team").as_deref(), Some("C0123"));
    }

    #[test]
    fn a_cursor_alone_is_written_at_most_every_second_and_at_flush() {
        let dir = tempfile::tempdir().unwrap();
        let s = NotifyState::open(dir.path()).unwrap();
        s.set_cursor("healthTransitions", "c1").unwrap();
        let reopened = || NotifyState::open(dir.path()).unwrap();
        assert_eq!(reopened().cursor("healthTransitions"), None);
        s.flush().unwrap();
        assert_eq!(
            reopened().cursor("healthTransitions").as_deref(),
            Some("c1")
        );
        // A notification's write carries the cursor along.
        s.set_cursor("healthTransitions", "c2").unwrap();
        s.finish("k1", "sent").unwrap();
        assert_eq!(
            reopened().cursor("healthTransitions").as_deref(),
            Some("c2")
        );
    }

    #[test]
    fn a_corrupt_state_file_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("state.json"), b"{not json").unwrap();
        assert!(matches!(
            NotifyState::open(dir.path()),
            Err(StateError::Corrupt { .. })
        ));
    }
}
