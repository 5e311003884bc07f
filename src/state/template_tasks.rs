//! Who started each scaffolder task through this server. The scaffolder sees only the
//! server's own service token, so it cannot tell; the policy needs to (a task's step log and
//! output links are its creator's and platform-team's alone). Bounded: the newest 100,000
//! tasks for 30 days. A task this process did not start has no creator here, so only
//! platform-team sees it — the boundary fails closed.

use std::time::Duration;

/// Task id → the creator's subject.
pub struct TaskCreators {
    by_task: moka::sync::Cache<String, String>,
}

impl Default for TaskCreators {
    fn default() -> Self {
        Self {
            by_task: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30 * 24 * 3600))
                .build(),
        }
    }
}

impl TaskCreators {
    pub fn record(&self, task_id: &str, creator: &str) {
        self.by_task
            .insert(task_id.to_string(), creator.to_string());
    }

    /// The subject that started the task, when this server started it.
    pub fn creator(&self, task_id: &str) -> Option<String> {
        self.by_task.get(task_id)
    }
}
