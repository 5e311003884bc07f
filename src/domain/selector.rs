//! Kubernetes label selectors (`app=web,tier!=db,env in (prod,staging),!legacy,canary`), as used
//! by `argocd/app-selector`, `backstage.io/kubernetes-label-selector` and the graph's filters.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed selector; all requirements must hold. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("label selector `{selector}` is malformed: {reason}")]
pub struct SelectorError {
    pub selector: String,
    pub reason: String,
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

impl LabelSelector {
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let err = |reason: &str| SelectorError {
            selector: input.to_string(),
            reason: reason.to_string(),
        };
        let mut requirements = Vec::new();
        if input.trim().is_empty() {
            return Ok(Self { requirements });
        }
        for raw in split_top_level(input) {
            let part = raw.trim();
            if part.is_empty() {
                return Err(err("empty requirement"));
            }
            let set_op = [" notin ", " in "]
                .iter()
                .find_map(|op| part.find(op).map(|i| (i, *op)));
            let req = if let Some((i, op)) = set_op {
                let key = part[..i].trim();
                let rest = part[i + op.len()..].trim();
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| err("set values must be in parentheses"))?;
                let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
                if !valid_key(key) || values.iter().any(|v| v.is_empty() || !valid_value(v)) {
                    return Err(err("invalid key or value"));
                }
                if op.trim() == "in" {
                    Requirement::In(key.into(), values)
                } else {
                    Requirement::NotIn(key.into(), values)
                }
            } else if let Some((k, v)) = part.split_once("!=") {
                let (k, v) = (k.trim(), v.trim());
                if !valid_key(k) || !valid_value(v) {
                    return Err(err("invalid key or value"));
                }
                Requirement::NotEquals(k.into(), v.into())
            } else if let Some((k, v)) = part.split_once('=') {
                let (k, v) = (k.trim(), v.trim().trim_start_matches('='));
                if !valid_key(k) || !valid_value(v.trim()) {
                    return Err(err("invalid key or value"));
                }
                Requirement::Equals(k.into(), v.trim().into())
            } else if let Some(k) = part.strip_prefix('!') {
                let k = k.trim();
                if !valid_key(k) {
                    return Err(err("invalid key"));
                }
                Requirement::NotExists(k.into())
            } else {
                if !valid_key(part) {
                    return Err(err("invalid key"));
                }
                Requirement::Exists(part.into())
            };
            requirements.push(req);
        }
        Ok(Self { requirements })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_matches_like_kubernetes() {
        let l = labels(&[("app", "web"), ("env", "prod"), ("team", "a")]);
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("env in (prod, staging)", true),
            ("env notin (prod)", false),
            ("team", true),
            ("!legacy", true),
            ("!team", false),
            ("app=web,env in (prod),!legacy", true),
            ("missing notin (x)", true),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&l),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in ["a=b,", "env in prod", "a b=c", "=x", "x in ()"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
