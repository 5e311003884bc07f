//! GitHub objects as the graph sees them.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Repository {
    pub slug: String,
    pub url: String,
    pub description: Option<String>,
    pub default_branch: String,
    pub visibility: String,
    pub archived: bool,
    pub stars: u64,
    pub forks: u64,
    pub open_issues: u64,
    pub topics: Vec<String>,
    pub language: Option<String>,
    pub pushed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub author_login: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    pub state: String,
    pub draft: bool,
    pub author_login: Option<String>,
    pub url: String,
    pub head_ref: String,
    pub base_ref: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub merged_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkflowRun {
    pub id: u64,
    pub name: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    pub branch: Option<String>,
    pub head_sha: String,
    pub event: String,
    pub url: String,
    pub created_at: Option<DateTime<Utc>>,
}
