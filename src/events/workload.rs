//! Workload trouble, derived once per Kubernetes change (like an application's transitions):
//! what a pod or a Warning event says went wrong, in the words people page on — a crash loop,
//! an OOM kill, an image that cannot be pulled, a pod that cannot be scheduled, any other
//! Warning event. A trouble is reported when it starts (or, for crash loops and OOM kills,
//! each time the restart count rises), not again on every status write while it lasts.

use crate::domain::kubernetes::{ContainerState, EventInfo, PodInfo};

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TroubleKind {
    /// `CrashLoopBackOff`, or a container restarting again.
    CrashLoop,
    /// A container was killed for memory (`OOMKilled`).
    OomKilled,
    /// `ErrImagePull` / `ImagePullBackOff` / `InvalidImageName`.
    ImagePull,
    /// `PodScheduled=False` with reason `Unschedulable`.
    Unschedulable,
    /// A Kubernetes Warning event (`FailedScheduling`, `BackOff`, `Unhealthy`, ...).
    Warning,
}

/// One trouble of one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trouble {
    pub kind: TroubleKind,
    /// The container it concerns (pods).
    pub container: Option<String>,
    /// Kubernetes' reason (`CrashLoopBackOff`, `OOMKilled`, `FailedScheduling`...).
    pub reason: String,
    pub message: Option<String>,
    /// The container's restart count (pods), or the event's count.
    pub count: Option<i32>,
}

const IMAGE_PULL_REASONS: [&str; 3] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

/// A pod's new troubles between two states (`prev: None`: it appeared).
pub fn pod_troubles(prev: Option<&PodInfo>, cur: &PodInfo) -> Vec<Trouble> {
    let mut out = Vec::new();
    for c in &cur.containers {
        let before = prev.and_then(|p| p.containers.iter().find(|b| b.name == c.name));
        let waiting = |reason: &str| {
            c.state == ContainerState::Waiting && c.reason.as_deref() == Some(reason)
        };
        let was_waiting = |reason: &str| {
            before.is_some_and(|b| {
                b.state == ContainerState::Waiting && b.reason.as_deref() == Some(reason)
            })
        };
        let restarted = before.is_some_and(|b| c.restart_count > b.restart_count);
        let trouble = |kind, reason: &str, message: Option<String>| Trouble {
            kind,
            container: Some(c.name.clone()),
            reason: reason.to_string(),
            message,
            count: Some(c.restart_count),
        };
        let oom_now = c.reason.as_deref() == Some("OOMKilled")
            || c.last_reason.as_deref() == Some("OOMKilled");
        let oom_before = before.is_some_and(|b| {
            b.reason.as_deref() == Some("OOMKilled")
                || b.last_reason.as_deref() == Some("OOMKilled")
        });
        if oom_now && (restarted || !oom_before) {
            out.push(trouble(
                TroubleKind::OomKilled,
                "OOMKilled",
                c.message.clone(),
            ));
        } else if waiting("CrashLoopBackOff") && (restarted || !was_waiting("CrashLoopBackOff")) {
            out.push(trouble(
                TroubleKind::CrashLoop,
                "CrashLoopBackOff",
                c.message.clone(),
            ));
        } else if restarted && c.last_exit_code.is_some_and(|code| code != 0) {
            out.push(trouble(
                TroubleKind::CrashLoop,
                c.last_reason.as_deref().unwrap_or("Error"),
                c.message.clone(),
            ));
        }
        if let Some(reason) = IMAGE_PULL_REASONS.into_iter().find(|r| waiting(r)) {
            if !IMAGE_PULL_REASONS.iter().any(|r| was_waiting(r)) {
                out.push(trouble(TroubleKind::ImagePull, reason, c.message.clone()));
            }
        }
    }
    if let Some(c) = unschedulable(cur) {
        if prev.and_then(unschedulable).is_none() {
            out.push(Trouble {
                kind: TroubleKind::Unschedulable,
                container: None,
                reason: "Unschedulable".into(),
                message: c.message.clone(),
                count: None,
            });
        }
    }
    out
}

/// The pod's `PodScheduled=False, reason=Unschedulable` condition, if any.
fn unschedulable(p: &PodInfo) -> Option<&crate::domain::kubernetes::ConditionInfo> {
    p.conditions.iter().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    })
}

/// A Warning event that is new, or seen again (its count rose).
pub fn event_trouble(prev: Option<&EventInfo>, cur: &EventInfo) -> Option<Trouble> {
    if cur.type_.as_deref() != Some("Warning") {
        return None;
    }
    if prev.is_some_and(|p| p.count >= cur.count) {
        return None;
    }
    Some(Trouble {
        kind: TroubleKind::Warning,
        container: None,
        reason: cur.reason.clone().unwrap_or_else(|| "Warning".into()),
        message: cur.message.clone(),
        count: cur.count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::kubernetes::ContainerInfo;

    fn container(
        state: ContainerState,
        reason: Option<&str>,
        restarts: i32,
        last: Option<&str>,
    ) -> ContainerInfo {
        ContainerInfo {
            name: "app".into(),
            image: Some("registry/app:1".into()),
            ready: state == ContainerState::Running,
            restart_count: restarts,
            state,
            reason: reason.map(str::to_string),
            message: None,
            exit_code: None,
            started_at: None,
            last_exit_code: last.map(|_| 137),
            last_reason: last.map(str::to_string),
            init: false,
        }
    }

    fn pod(c: ContainerInfo) -> PodInfo {
        PodInfo {
            metadata: Default::default(),
            phase: Some("Running".into()),
            node_name: None,
            pod_ip: None,
            pod_ips: vec![],
            host_ip: None,
            start_time: None,
            conditions: vec![],
            containers: vec![c],
        }
    }

    #[test]
    fn a_crash_loop_is_told_when_it_starts_and_when_it_restarts_again() {
        let running = pod(container(ContainerState::Running, None, 0, None));
        let looping = pod(container(
            ContainerState::Waiting,
            Some("CrashLoopBackOff"),
            1,
            Some("Error"),
        ));
        let t = pod_troubles(Some(&running), &looping);
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].kind, t[0].reason.as_str(), t[0].count),
            (TroubleKind::CrashLoop, "CrashLoopBackOff", Some(1))
        );
        // The same state written again: nothing new.
        assert!(pod_troubles(Some(&looping), &looping).is_empty());
        // It restarted once more: told again.
        let again = pod(container(
            ContainerState::Waiting,
            Some("CrashLoopBackOff"),
            2,
            Some("Error"),
        ));
        assert_eq!(pod_troubles(Some(&looping), &again).len(), 1);
        // Back to running: nothing.
        let back = pod(container(ContainerState::Running, None, 2, Some("Error")));
        assert!(pod_troubles(Some(&again), &back).is_empty());
    }

    #[test]
    fn oom_kills_image_pulls_and_unschedulable_pods_are_told_once() {
        let running = pod(container(ContainerState::Running, None, 0, None));
        let oom = pod(container(
            ContainerState::Running,
            None,
            1,
            Some("OOMKilled"),
        ));
        assert_eq!(
            pod_troubles(Some(&running), &oom)[0].kind,
            TroubleKind::OomKilled
        );
        assert!(pod_troubles(Some(&oom), &oom).is_empty());
        let pulling = pod(container(
            ContainerState::Waiting,
            Some("ErrImagePull"),
            0,
            None,
        ));
        let backoff = pod(container(
            ContainerState::Waiting,
            Some("ImagePullBackOff"),
            0,
            None,
        ));
        assert_eq!(pod_troubles(None, &pulling)[0].kind, TroubleKind::ImagePull);
        assert!(
            pod_troubles(Some(&pulling), &backoff).is_empty(),
            "still the same trouble"
        );
        let mut pending = pod(container(
            ContainerState::Waiting,
            Some("ContainerCreating"),
            0,
            None,
        ));
        pending
            .conditions
            .push(crate::domain::kubernetes::ConditionInfo {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("Unschedulable".into()),
                message: Some("0/3 nodes are available".into()),
                last_transition_time: None,
            });
        let t = pod_troubles(None, &pending);
        assert_eq!(t[0].kind, TroubleKind::Unschedulable);
        assert!(pod_troubles(Some(&pending), &pending).is_empty());
    }

    #[test]
    fn warning_events_are_told_when_new_or_seen_again() {
        let ev = |type_: &str, count| EventInfo {
            metadata: Default::default(),
            involved: Some(("app-3".into(), "Pod".into(), "app-3-x".into())),
            type_: Some(type_.into()),
            reason: Some("BackOff".into()),
            message: Some("Back-off restarting failed container".into()),
            count: Some(count),
            first_seen: None,
            last_seen: None,
            source: None,
        };
        assert!(event_trouble(None, &ev("Normal", 1)).is_none());
        assert_eq!(
            event_trouble(None, &ev("Warning", 1)).unwrap().reason,
            "BackOff"
        );
        assert!(event_trouble(Some(&ev("Warning", 1)), &ev("Warning", 1)).is_none());
        assert_eq!(
            event_trouble(Some(&ev("Warning", 1)), &ev("Warning", 2))
                .unwrap()
                .count,
            Some(2)
        );
    }
}
