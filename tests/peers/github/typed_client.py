"""A typed GitHub client (githubkit: pydantic models generated from GitHub's OpenAPI
description) against the simulated GitHub: every call the demo's client makes, each answer
parsed into its model (a missing or mistyped field fails), pagination followed by `Link`.

Usage: typed_client.py <base_url> <token> <owner/repo>; prints one JSON line of what it read.
"""

import json
import sys

from githubkit import GitHub

base_url, token, slug = sys.argv[1:4]
owner, repo = slug.split("/")
gh = GitHub(token, base_url=base_url)
calls = 0


def parsed(response):
    global calls
    calls += 1
    return response.parsed_data


repository = parsed(gh.rest.repos.get(owner, repo))
commits = parsed(gh.rest.repos.list_commits(owner, repo, per_page=5))
commit = parsed(gh.rest.repos.get_commit(owner, repo, commits[0].sha))
head = parsed(gh.rest.repos.get_commit(owner, repo, repository.default_branch))
pulls = parsed(gh.rest.pulls.list(owner, repo, state="all", per_page=5))
pull = parsed(gh.rest.pulls.get(owner, repo, pulls[0].number))
runs = parsed(gh.rest.actions.list_workflow_runs_for_repo(owner, repo, per_page=3))
run = parsed(gh.rest.actions.get_workflow_run(owner, repo, runs.workflow_runs[0].id))
rate = parsed(gh.rest.rate_limit.get())
# Every page, following `Link: rel="next"`.
every_commit = list(gh.paginate(gh.rest.repos.list_commits, owner=owner, repo=repo, per_page=2))
every_pull = list(gh.paginate(gh.rest.pulls.list, owner=owner, repo=repo, state="all", per_page=5))

print(json.dumps({
    "calls": calls,
    "full_name": repository.full_name,
    "default_branch": repository.default_branch,
    "head": head.sha,
    "commit_parents": [p.sha for p in commit.parents],
    "pull": {"number": pull.number, "merged": pull.merged, "head_ref": pull.head.ref},
    "run": {"id": run.id, "status": run.status, "head_sha": run.head_sha},
    "core_remaining": rate.resources.core.remaining,
    "paged_commits": len(every_commit),
    "paged_pulls": len(every_pull),
}))
