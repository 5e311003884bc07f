//! GraphQL errors with a stable `extensions.code`. Resolvers build errors only through these
//! helpers, so every error a client sees has a code, and upstream failures also name their
//! `extensions.source`.

use async_graphql::{Error, ErrorExtensions};

use crate::sources::SourceError;

pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
pub const NOT_FOUND: &str = "NOT_FOUND";
pub const FORBIDDEN: &str = "FORBIDDEN";
pub const INTERNAL: &str = "INTERNAL_SERVER_ERROR";

/// An error with a code and nothing else.
pub fn coded(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(message.into()).extend_with(|_, e| e.set("code", code))
}

pub fn bad_input(message: impl Into<String>) -> Error {
    coded(BAD_USER_INPUT, message)
}

/// An upstream failure, attributed to the source instance it came from.
pub fn upstream(source: &str, err: &SourceError) -> Error {
    let source = source.to_string();
    let code = err.code();
    Error::new(err.to_string()).extend_with(move |_, e| {
        e.set("code", code);
        e.set("source", source.as_str());
    })
}
