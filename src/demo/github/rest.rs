//! The simulated GitHub's REST bodies, shaped as GitHub's OpenAPI description
//! (`@octokit/openapi`, api.github.com) has them: every field the description marks required is
//! here, with its type and nullability — a full repository, simple users, commits with their
//! parents, pull requests (list items and the single-PR form with its counts) and workflow runs
//! with their head commit and repositories. Checked in CI by `tests/api/github_schema.rs`.
//! Numbers and ids are made up but stable (derived from names), so ETags only change when the git
//! world does.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::demo::git::{Commit, Repo};

/// A repository's made-up but stable numbers, the same in REST and GraphQL answers.
pub(super) struct RepoNumbers {
    pub id: u64,
    pub stars: u64,
    pub forks: u64,
    pub open_issues: u64,
    /// Open pull requests (#9..#12 of `pull_requests`).
    pub open_pulls: u64,
}

pub(super) fn repo_numbers(slug: &str) -> RepoNumbers {
    let id = stable_id(slug);
    RepoNumbers {
        id,
        stars: 3 + id % 40,
        forks: id % 5,
        open_issues: id % 7,
        open_pulls: 4,
    }
}

fn stable_id(name: &str) -> u64 {
    u64::from_str_radix(&sha1_smol::Sha1::from(name).digest().to_string()[..8], 16).unwrap_or(1)
}

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A `simple-user`: an organization (repository owners) or a user (commit authors).
pub(super) fn user(login: &str, organization: bool) -> Value {
    let id = stable_id(login) % 100_000_000;
    let api = format!("https://api.github.com/users/{login}");
    json!({
        "login": login, "id": id, "node_id": format!("{}_{id}", if organization { "O" } else { "U" }),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"), "gravatar_id": "",
        "url": api, "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{api}/followers"), "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"), "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"), "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"), "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": if organization { "Organization" } else { "User" }, "user_view_type": "public", "site_admin": false,
    })
}

/// The URL templates every repository form carries (`minimal-repository` and up).
fn repository_links(slug: &str) -> Map<String, Value> {
    let api = format!("https://api.github.com/repos/{slug}");
    let mut m = Map::new();
    for (key, path) in [
        ("forks_url", "/forks"),
        ("keys_url", "/keys{/key_id}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("teams_url", "/teams"),
        ("hooks_url", "/hooks"),
        ("issue_events_url", "/issues/events{/number}"),
        ("events_url", "/events"),
        ("assignees_url", "/assignees{/user}"),
        ("branches_url", "/branches{/branch}"),
        ("tags_url", "/tags"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("trees_url", "/git/trees{/sha}"),
        ("statuses_url", "/statuses/{sha}"),
        ("languages_url", "/languages"),
        ("stargazers_url", "/stargazers"),
        ("contributors_url", "/contributors"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("commits_url", "/commits{/sha}"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("comments_url", "/comments{/number}"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("contents_url", "/contents/{+path}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("merges_url", "/merges"),
        ("archive_url", "/{archive_format}{/ref}"),
        ("downloads_url", "/downloads"),
        ("issues_url", "/issues{/number}"),
        ("pulls_url", "/pulls{/number}"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("labels_url", "/labels{/name}"),
        ("releases_url", "/releases{/id}"),
        ("deployments_url", "/deployments"),
    ] {
        m.insert(key.into(), json!(format!("{api}{path}")));
    }
    m.insert("url".into(), json!(api));
    m
}

/// A `minimal-repository` (workflow runs' `repository` and `head_repository`).
pub(super) fn minimal_repository(r: &Repo) -> Value {
    let slug = &r.slug;
    let (owner, name) = slug.split_once('/').unwrap_or((slug, slug));
    let id = repo_numbers(slug).id;
    let mut m = repository_links(slug);
    for (k, v) in [
        ("id", json!(id)),
        ("node_id", json!(format!("R_{id}"))),
        ("name", json!(name)),
        ("full_name", json!(slug)),
        ("private", json!(r.visibility != "public")),
        ("owner", user(owner, true)),
        ("html_url", json!(format!("https://github.com/{slug}"))),
        ("description", json!(r.description)),
        ("fork", json!(false)),
    ] {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

/// A `full-repository` (`GET /repos/{owner}/{repo}`), which also satisfies `repository` (pull
/// requests' `head.repo` / `base.repo`). `unix_times`: `created_at` / `pushed_at` as Unix
/// seconds, as push payloads carry them.
pub(super) fn repository(r: &Repo, unix_times: bool) -> Value {
    let slug = &r.slug;
    let pushed = r.commits.last().map(|c| c.date).unwrap_or(r.created_at);
    let n = repo_numbers(slug);
    let time = |t: DateTime<Utc>| {
        if unix_times {
            json!(t.timestamp())
        } else {
            json!(ts(t))
        }
    };
    let Value::Object(mut m) = minimal_repository(r) else {
        unreachable!("a repository is an object")
    };
    // REST counts open pull requests as issues too.
    let open_issues = n.open_issues + n.open_pulls;
    for (k, v) in [
        ("created_at", time(r.created_at)),
        ("updated_at", json!(ts(pushed))),
        ("pushed_at", time(pushed)),
        ("git_url", json!(format!("git://github.com/{slug}.git"))),
        ("ssh_url", json!(format!("git@github.com:{slug}.git"))),
        ("clone_url", json!(format!("https://github.com/{slug}.git"))),
        ("svn_url", json!(format!("https://github.com/{slug}"))),
        ("homepage", Value::Null),
        ("size", json!(64 * r.commits.len())),
        ("stargazers_count", json!(n.stars)),
        ("watchers_count", json!(n.stars)),
        ("watchers", json!(n.stars)),
        ("language", json!(r.language)),
        ("has_issues", json!(true)),
        ("has_projects", json!(false)),
        ("has_downloads", json!(true)),
        ("has_wiki", json!(false)),
        ("has_pages", json!(false)),
        ("has_discussions", json!(false)),
        ("forks_count", json!(n.forks)),
        ("forks", json!(n.forks)),
        ("mirror_url", Value::Null),
        ("archived", json!(false)),
        ("disabled", json!(false)),
        ("open_issues_count", json!(open_issues)),
        ("open_issues", json!(open_issues)),
        ("license", Value::Null),
        ("allow_forking", json!(false)),
        ("is_template", json!(false)),
        ("web_commit_signoff_required", json!(false)),
        ("topics", json!(r.topics)),
        ("visibility", json!(r.visibility)),
        ("default_branch", json!(r.default_branch)),
        ("network_count", json!(n.forks)),
        ("subscribers_count", json!(1 + n.stars / 4)),
    ] {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

/// A `commit` (list items and `GET …/commits/{ref}`), its parent the previous commit of the
/// repository's history.
pub(super) fn commit(r: &Repo, c: &Commit) -> Value {
    let slug = &r.slug;
    let api = format!("https://api.github.com/repos/{slug}");
    let parents: Vec<Value> = r
        .commits
        .iter()
        .position(|x| x.sha == c.sha)
        .and_then(|i| i.checked_sub(1))
        .map(|i| {
            let p = &r.commits[i].sha;
            json!({"sha": p, "url": format!("{api}/commits/{p}"), "html_url": format!("https://github.com/{slug}/commit/{p}")})
        })
        .into_iter()
        .collect();
    let person = json!({"name": c.author_name, "email": c.author_email, "date": ts(c.date)});
    let tree = tree_sha(c);
    json!({
        "sha": c.sha, "node_id": format!("C_{}", &c.sha[..12]),
        "commit": {
            "author": person, "committer": person, "message": c.message,
            "tree": {"sha": tree, "url": format!("{api}/git/trees/{tree}")},
            "url": format!("{api}/git/commits/{}", c.sha), "comment_count": 0,
            "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null},
        },
        "url": format!("{api}/commits/{}", c.sha),
        "html_url": format!("https://github.com/{slug}/commit/{}", c.sha),
        "comments_url": format!("{api}/commits/{}/comments", c.sha),
        "author": user(&c.author_login, false),
        "committer": user(&c.author_login, false),
        "parents": parents,
    })
}

/// The tree a commit points at (made up, stable).
pub(super) fn tree_sha(c: &Commit) -> String {
    sha1_smol::Sha1::from(format!("tree {}", c.sha))
        .digest()
        .to_string()
}

/// The simulated pull requests of a repository, newest first: #9..#12 open (#12 a draft), the
/// rest closed and merged. `full`: the single-PR form (`pull-request`, with its counts and merge
/// state) rather than the list item (`pull-request-simple`).
pub(super) fn pull_requests(r: &Repo, full: bool) -> Vec<Value> {
    let slug = &r.slug;
    let (owner, name) = slug.split_once('/').unwrap_or((slug, slug));
    let api = format!("https://api.github.com/repos/{slug}");
    let repo_id = repo_numbers(slug).id;
    let repository = repository(r, false);
    (1..=12u64)
        .rev()
        .map(|n| {
            let open = n > 8;
            let c = &r.commits[(n as usize) % r.commits.len()];
            let id = repo_id * 100 + n;
            let at = ts(c.date);
            let closed = (!open).then(|| at.clone());
            let side = |reference: String, sha: &str| {
                json!({"label": format!("{owner}:{reference}"), "ref": reference, "sha": sha,
                       "user": user(owner, true), "repo": repository})
            };
            let base_sha = r.commits.last().map(|l| l.sha.as_str()).unwrap_or(&c.sha);
            let link = |href: String| json!({"href": href});
            let links = json!({
                    "self": link(format!("{api}/pulls/{n}")), "html": link(format!("https://github.com/{slug}/pull/{n}")),
                    "issue": link(format!("{api}/issues/{n}")), "comments": link(format!("{api}/issues/{n}/comments")),
                    "review_comments": link(format!("{api}/pulls/{n}/comments")),
                    "review_comment": link(format!("{api}/pulls/comments{{/number}}")),
                    "commits": link(format!("{api}/pulls/{n}/commits")), "statuses": link(format!("{api}/statuses/{}", c.sha)),
                });
            let mut p = json!({
                "url": format!("{api}/pulls/{n}"), "id": id, "node_id": format!("PR_{id}"),
                "html_url": format!("https://github.com/{slug}/pull/{n}"),
                "diff_url": format!("https://github.com/{slug}/pull/{n}.diff"),
                "patch_url": format!("https://github.com/{slug}/pull/{n}.patch"),
                "issue_url": format!("{api}/issues/{n}"),
                "commits_url": format!("{api}/pulls/{n}/commits"),
                "review_comments_url": format!("{api}/pulls/{n}/comments"),
                "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
                "comments_url": format!("{api}/issues/{n}/comments"),
                "statuses_url": format!("{api}/statuses/{}", c.sha),
                "number": n, "state": if open { "open" } else { "closed" }, "locked": false,
                "title": format!("Change #{n} to {name}"), "user": user(&c.author_login, false),
                "body": format!("Part {n} of the work on {name}."), "labels": [], "milestone": null,
                "active_lock_reason": null, "created_at": at, "updated_at": at, "closed_at": closed,
                "merged_at": closed, "merge_commit_sha": (!open).then(|| c.sha.clone()),
                "assignee": null, "assignees": [], "requested_reviewers": [], "requested_teams": [],
                "head": side(format!("feature-{n}"), &c.sha), "base": side(r.default_branch.clone(), base_sha),
                "_links": links,
                "author_association": "MEMBER", "auto_merge": null, "draft": n == 12,
            });
            if full {
                for (k, v) in [
                    ("merged", json!(!open)),
                    ("mergeable", if open { json!(true) } else { Value::Null }),
                    ("rebaseable", if open { json!(true) } else { Value::Null }),
                    ("mergeable_state", json!(if open { "clean" } else { "unknown" })),
                    ("merged_by", if open { Value::Null } else { user(&c.author_login, false) }),
                    ("comments", json!(n % 3)),
                    ("review_comments", json!(n % 2)),
                    ("maintainer_can_modify", json!(false)),
                    ("commits", json!(1)),
                    ("additions", json!(10 * n)),
                    ("deletions", json!(n)),
                    ("changed_files", json!(1 + n % 4)),
                ] {
                    p[k] = v;
                }
            }
            p
        })
        .collect()
}

/// The simulated workflow runs of a repository, one per commit, newest first: the newest in
/// progress, the third newest failed.
pub(super) fn workflow_runs(r: &Repo) -> Vec<Value> {
    let slug = &r.slug;
    let api = format!("https://api.github.com/repos/{slug}");
    let workflow_id = stable_id(&format!("{slug}/ci")) % 100_000_000;
    let repository = minimal_repository(r);
    r.commits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let id = u64::from_str_radix(&c.sha[..8], 16).unwrap_or(i as u64);
            let (status, conclusion) = match i {
                0 => ("in_progress", Value::Null),
                2 => ("completed", json!("failure")),
                _ => ("completed", json!("success")),
            };
            let run = format!("{api}/actions/runs/{id}");
            let person = json!({"name": c.author_name, "email": c.author_email});
            json!({
                "id": id, "name": "CI", "node_id": format!("WFR_{id}"), "head_branch": r.default_branch,
                "head_sha": c.sha, "path": ".github/workflows/ci.yaml", "display_title": c.message,
                "run_number": r.commits.len() - i, "run_attempt": 1, "event": "push",
                "status": status, "conclusion": conclusion, "workflow_id": workflow_id,
                "check_suite_id": id + 1, "check_suite_node_id": format!("CS_{}", id + 1),
                "url": run, "html_url": format!("https://github.com/{slug}/actions/runs/{id}"),
                "pull_requests": [], "created_at": ts(c.date), "updated_at": ts(c.date),
                "run_started_at": ts(c.date), "actor": user(&c.author_login, false),
                "triggering_actor": user(&c.author_login, false),
                "jobs_url": format!("{run}/jobs"), "logs_url": format!("{run}/logs"),
                "check_suite_url": format!("{api}/check-suites/{}", id + 1),
                "artifacts_url": format!("{run}/artifacts"), "cancel_url": format!("{run}/cancel"),
                "rerun_url": format!("{run}/rerun"), "previous_attempt_url": null,
                "workflow_url": format!("{api}/actions/workflows/{workflow_id}"),
                "head_commit": {"id": c.sha, "tree_id": tree_sha(c), "message": c.message, "timestamp": ts(c.date),
                                "author": person, "committer": person},
                "repository": repository, "head_repository": repository,
            })
        })
        .collect()
}
