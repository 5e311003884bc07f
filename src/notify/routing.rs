//! Where a notice goes, decided by the catalog: the `idp-graph.io/slack-channel` annotation of
//! the Component it concerns, else of the Component's owner (its Group), else the configured
//! `default_channel`, else nowhere (the caller logs it). Pure: the subscriptions already carry
//! both annotations (`triggers::ENTITY`), so routing needs no extra request.

use super::triggers::Notice;

/// The channel for `notice`, normalised (`app-team` → `#app-team`; ids `C...` kept).
pub fn channel_for(notice: &Notice, default_channel: Option<&str>) -> Option<String> {
    notice
        .component
        .as_ref()
        .and_then(|c| c.channel.as_deref())
        .or_else(|| notice.owner.as_ref().and_then(|o| o.channel.as_deref()))
        .or(default_channel)
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(normalise)
}

fn normalise(channel: &str) -> String {
    let is_id = channel.len() >= 9
        && channel.starts_with(['C', 'G'])
        && channel[1..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if channel.starts_with('#') || is_id {
        channel.to_string()
    } else {
        format!("#{channel}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::triggers::{EntityInfo, Notice, Trigger};

    fn notice(component: Option<&str>, owner: Option<&str>) -> Notice {
        let e = |name: &str, channel: Option<&str>| EntityInfo {
            entity_ref: format!("x:default/{name}"),
            name: name.into(),
            title: None,
            channel: channel.map(str::to_string),
        };
        Notice {
            key: "k".into(),
            trigger: Trigger::Degraded,
            app: "a".into(),
            place: None,
            detail_key: String::new(),
            headline: "h".into(),
            detail: None,
            component: Some(e("c", component)),
            owner: Some(e("g", owner)),
            commit: None,
            facts: vec![],
            links: vec![],
            at: None,
        }
    }

    #[test]
    fn the_component_annotation_wins_over_its_owners_then_the_default() {
        assert_eq!(
            channel_for(&notice(Some("#svc"), Some("#team")), None).as_deref(),
            Some("#svc")
        );
        assert_eq!(
            channel_for(&notice(None, Some("team")), None).as_deref(),
            Some("#team")
        );
        assert_eq!(
            channel_for(&notice(None, None), Some("#ops")).as_deref(),
            Some("#ops")
        );
        assert_eq!(channel_for(&notice(None, None), None), None);
        assert_eq!(
            channel_for(&notice(Some("C0123ABCD"), None), None).as_deref(),
            Some("C0123ABCD")
        );
    }
}
