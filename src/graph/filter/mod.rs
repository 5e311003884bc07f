//! Every list and subscription filter of the graph, each parsed once per query or subscription
//! into a matcher: entities, applications, Kubernetes objects.

pub mod application;
pub mod entity;
pub mod kubernetes;

pub use application::{ApplicationFilter, ApplicationMatcher};
pub use entity::{AnnotationFilter, EntityFilter, EntityMatcher};
