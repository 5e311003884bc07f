//! The demo world's git: repositories and their commits. ArgoCD's revisions and GitHub's
//! commits both come from here, so a revision in the graph resolves to a real commit.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use parking_lot::RwLock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub author_name: String,
    pub author_login: String,
    pub author_email: String,
    pub date: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub slug: String,
    pub description: String,
    pub default_branch: String,
    pub language: Option<String>,
    pub topics: Vec<String>,
    /// GitHub's `visibility`: `public`, `internal` (the organisation's members) or `private`.
    pub visibility: String,
    pub created_at: DateTime<Utc>,
    /// Oldest first; the last is the head of the default branch.
    pub commits: Vec<Commit>,
}

#[derive(Default)]
pub struct GitWorld {
    repos: RwLock<BTreeMap<String, Repo>>,
}

const AUTHORS: [(&str, &str); 4] = [
    ("Alice Adams", "alice"),
    ("Bob Brown", "bob"),
    ("Carol Chen", "carol"),
    ("Dave Diaz", "dave"),
];

fn sha_of(slug: &str, n: usize, message: &str) -> String {
    sha1_smol::Sha1::from(format!("{slug}\n{n}\n{message}"))
        .digest()
        .to_string()
}

impl GitWorld {
    /// Creates a repo with `history` commits, the newest `hours_ago` hours old at most.
    pub fn create(&self, slug: &str, description: &str, language: Option<&str>, history: usize) {
        let created_at = Utc::now() - Duration::days(90);
        let mut repo = Repo {
            slug: slug.to_string(),
            description: description.to_string(),
            default_branch: "main".into(),
            language: language.map(str::to_string),
            topics: vec!["idp".into()],
            visibility: super::seed::visibility_of(slug).into(),
            created_at,
            commits: Vec::new(),
        };
        for i in 0..history.max(1) {
            let message = if i == 0 {
                "Initial commit".to_string()
            } else {
                format!("Change {i} to {}", slug.rsplit('/').next().unwrap_or(slug))
            };
            let (name, login) = AUTHORS[i % AUTHORS.len()];
            repo.commits.push(Commit {
                sha: sha_of(slug, i, &message),
                message,
                author_name: name.into(),
                author_login: login.into(),
                author_email: format!("{login}@yourcompany.example"),
                date: Utc::now() - Duration::hours((history.max(1) - i) as i64 * 6),
            });
        }
        self.repos.write().insert(slug.to_string(), repo);
    }

    /// Pushes a new commit to the default branch; returns it.
    pub fn push(&self, slug: &str, message: &str, author_login: &str) -> Option<Commit> {
        let mut repos = self.repos.write();
        let repo = repos.get_mut(slug)?;
        let n = repo.commits.len();
        let (name, login) = AUTHORS
            .iter()
            .find(|(_, l)| *l == author_login)
            .copied()
            .unwrap_or(AUTHORS[n % AUTHORS.len()]);
        let commit = Commit {
            sha: sha_of(slug, n, message),
            message: message.to_string(),
            author_name: name.into(),
            author_login: login.into(),
            author_email: format!("{login}@yourcompany.example"),
            date: Utc::now(),
        };
        repo.commits.push(commit.clone());
        Some(commit)
    }

    pub fn head(&self, slug: &str) -> Option<Commit> {
        self.repos.read().get(slug)?.commits.last().cloned()
    }

    pub fn repo(&self, slug: &str) -> Option<Repo> {
        self.repos.read().get(slug).cloned()
    }

    pub fn commit(&self, slug: &str, sha: &str) -> Option<Commit> {
        self.repos
            .read()
            .get(slug)?
            .commits
            .iter()
            .find(|c| c.sha == sha || (sha.len() >= 7 && c.sha.starts_with(sha)))
            .cloned()
    }

    pub fn slugs(&self) -> Vec<String> {
        self.repos.read().keys().cloned().collect()
    }
}
