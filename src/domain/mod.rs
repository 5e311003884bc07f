//! Pure domain types and the join rules: what an entity is, how refs parse, which annotations
//! join the catalog to the other upstreams. No I/O, no async, nothing from the rest of the crate,
//! so every other layer can depend on it and it can be tested on its own.

pub mod annotations;
pub mod argocd;
pub mod entity;
pub mod entity_ref;
pub mod github;
pub mod joins;
pub mod kubernetes;
pub mod node_id;
pub mod selector;

pub use entity::{Entity, EntityKind, Relation, RelationType};
pub use entity_ref::{EntityRef, RefError};
