//! Upstream failures as each caller may read them. The graph gives every upstream error a
//! fixed message and puts the upstream's own words (its URL, its raw error text) in
//! `extensions.detail` (`graph::error`); here, on every transport's way out, platform-team
//! gets that text as the message and everyone else gets the fixed message only. Both get
//! `extensions.requestId`, which the server's log carries with the full text.

use async_graphql::Response;

/// Rewrites the upstream errors of one response for its caller.
pub fn redact(response: &mut Response, admin: bool, request_id: &str) {
    for err in &mut response.errors {
        let Some(ext) = err.extensions.as_mut() else {
            continue;
        };
        let Some(detail) = ext.get("detail").cloned() else {
            continue;
        };
        ext.unset("detail");
        ext.set("requestId", request_id);
        if admin {
            if let async_graphql::Value::String(text) = detail {
                err.message = text;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{ErrorExtensionValues, ServerError};

    fn response() -> Response {
        let mut err = ServerError::new("upstream `main` is unavailable or failed", None);
        let mut ext = ErrorExtensionValues::default();
        ext.set("code", "UPSTREAM_UNAVAILABLE");
        ext.set("source", "main");
        ext.set(
            "detail",
            "http://127.0.0.1:1/api/v1/applications/app-3/sync answered HTTP 500: rpc error",
        );
        err.extensions = Some(ext);
        Response::from_errors(vec![err])
    }

    #[test]
    fn only_platform_team_reads_the_upstreams_own_words() {
        let mut member = response();
        redact(&mut member, false, "r-1");
        let e = &member.errors[0];
        assert_eq!(e.message, "upstream `main` is unavailable or failed");
        let ext = e.extensions.as_ref().unwrap();
        assert!(ext.get("detail").is_none());
        assert_eq!(ext.get("requestId"), Some(&"r-1".into()));
        assert_eq!(ext.get("source"), Some(&"main".into()));

        let mut admin = response();
        redact(&mut admin, true, "r-2");
        assert!(admin.errors[0].message.contains("answered HTTP 500"));
        assert!(admin.errors[0]
            .extensions
            .as_ref()
            .unwrap()
            .get("detail")
            .is_none());
    }
}
