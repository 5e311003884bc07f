#!/usr/bin/env python3
"""Runs a Dockerfile's build stages without a container runtime (CI has none, and base images
cannot be pulled): scripts/check-image.sh calls it, then checks the binary the last stage got.

What it does, in the Dockerfile's order:
- builds the context: an empty directory holding exactly the paths the COPY lines name (minus
  what .dockerignore excludes), so a path the Dockerfile forgets to COPY is missing here too;
- gives each stage an empty root directory; WORKDIR, ARG, ENV and COPY (from the context or,
  with --from, from an earlier stage's root) work on it as Docker's would;
- runs each RUN (shell form) with `sh -c` in the stage's WORKDIR, with the stage's ARGs and ENVs
  set, on this machine's tools instead of the base image's;
- records LABEL, USER, EXPOSE, ENTRYPOINT and CMD and writes everything to <work>/image.json.

What it does not: pull or check the base images (FROM only names a stage), run anything as
another user, or support what this repository's Dockerfile does not use: any instruction it does
not know, JSON-form RUN, wildcards in COPY, `!` in .dockerignore, heredocs. Each of those stops
it with an error instead of being skipped, so the check never passes on something it ignored.
Paths inside RUN and ENV must be relative to WORKDIR (they run in a directory that is not `/`).

usage: dockerfile_stages.py --work DIR [--build-arg K=V]... [--persist STAGE:PATH=DIR]...
"""

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

# Variables of the calling shell that would change what a RUN builds; a Docker build never sees
# them (a developer's CARGO_TARGET_DIR, say, would send the build elsewhere).
STEERING = re.compile(r"^(CARGO_TARGET_DIR|CARGO_BUILD_.*|CARGO_PROFILE_.*|RUSTFLAGS|"
                      r"CARGO_ENCODED_RUSTFLAGS|RUSTC_WRAPPER|IDP_GRAPH_.*|npm_config_.*)$")


def fail(message):
    sys.exit(f"dockerfile_stages: {message}")


def instructions(text):
    """(instruction, arguments) pairs: comments and blank lines dropped, continuations joined."""
    out, buf = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        full = buf + stripped
        buf = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    if buf:
        fail("the Dockerfile ends inside a continued line")
    return out


def expand(value, variables):
    """$NAME and ${NAME}, as Docker substitutes them in ENV, LABEL, WORKDIR and COPY."""
    def sub(m):
        name = m.group(1) or m.group(2)
        return variables.get(name, "")
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, value)


def pairs(rest, variables, what):
    """`K=V K2="v 2"` (ENV, LABEL) into a dict."""
    result = {}
    for token in shlex.split(rest):
        key, eq, value = token.partition("=")
        if not eq:
            fail(f"{what} {rest!r}: only the KEY=VALUE form is supported")
        result[key] = expand(value, variables)
    return result


def ignore_patterns(context):
    path = context / ".dockerignore"
    if not path.exists():
        return []
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            fail(f".dockerignore: exceptions ({line}) are not supported here")
        patterns.append(os.path.normpath(line.lstrip("/")))
    return patterns


def ignored(rel, patterns):
    """Docker's rule: a path is excluded when it, or a directory above it, matches a pattern;
    `**/` also matches no directory at all."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern[3:])
        for p in candidates:
            if any(fnmatch.fnmatchcase(prefix, p) for prefix in prefixes):
                return True
    return False


def build_context(repo, ctx, sources):
    """Copies exactly the named paths (what .dockerignore leaves of them) into `ctx`."""
    patterns = ignore_patterns(repo)
    files = 0
    for src in sources:
        if any(c in src for c in "*?["):
            fail(f"COPY {src}: wildcards are not supported here")
        rel = os.path.normpath(src)
        if rel.startswith(".."):
            fail(f"COPY {src}: outside the context")
        origin = repo / rel
        if not origin.exists():
            fail(f"COPY {src}: no such path in the context")
        walk = [(origin, rel)]
        while walk:
            path, r = walk.pop()
            if ignored(r, patterns):
                continue
            target = ctx / r
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                walk.extend((child, f"{r}/{child.name}") for child in path.iterdir())
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                files += 1
    return files


def copy_into(origin, dest, dest_is_dir):
    """Docker's COPY: a directory's contents go into the destination, a file into it when it
    is a directory, else the file becomes the destination."""
    if origin.is_dir():
        shutil.copytree(origin, dest, symlinks=True, dirs_exist_ok=True)
    elif dest_is_dir:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, dest / origin.name)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, dest)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dockerfile", default="Dockerfile")
    parser.add_argument("--context", default=".")
    parser.add_argument("--work", required=True, help="an empty directory for the context and stages")
    parser.add_argument("--build-arg", action="append", default=[], metavar="K=V")
    parser.add_argument("--persist", action="append", default=[], metavar="STAGE:PATH=DIR",
                        help="link a stage path to a directory kept across runs (a cache mount)")
    args = parser.parse_args()

    repo = Path(args.context).resolve()
    work = Path(args.work).resolve()
    if work.exists() and any(work.iterdir()):
        fail(f"{work} is not empty")
    build_args = dict(a.split("=", 1) for a in args.build_arg)
    persist = {}
    for p in args.persist:
        where, _, host = p.partition("=")
        stage, _, path = where.partition(":")
        persist[(stage, path)] = Path(host).resolve()

    steps = instructions((repo / args.dockerfile).read_text())
    if not steps or steps[0][0] not in ("FROM", "ARG"):
        fail("a Dockerfile starts with FROM (or global ARGs)")

    # The context first: exactly what the COPY lines without --from name.
    ctx = work / "context"
    ctx.mkdir(parents=True)
    sources = []
    for word, rest in steps:
        if word == "COPY":
            tokens = shlex.split(rest)
            if not any(t.startswith("--from=") for t in tokens):
                sources.extend(t for t in tokens[:-1] if not t.startswith("--"))
    files = build_context(repo, ctx, sources)
    print(f"context: {files} files from {len(sources)} COPY sources ({' '.join(sources)})", flush=True)

    global_args, stages, image = {}, {}, {}
    name = root = None
    workdir, variables = "/", {}
    clean_env = {k: v for k, v in os.environ.items() if not STEERING.match(k)}
    for word, rest in steps:
        if word == "FROM":
            tokens = rest.split()
            name = tokens[2] if len(tokens) == 3 and tokens[1].upper() == "AS" else f"stage{len(stages)}"
            root = work / "stages" / name
            root.mkdir(parents=True)
            stages[name] = str(root)
            workdir, variables = "/", {}
            image = {"stage": name, "base": tokens[0], "labels": {}}
            for (stage, path), host in persist.items():
                if stage == name:
                    host.mkdir(parents=True, exist_ok=True)
                    link = root / path.lstrip("/")
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(host, target_is_directory=True)
            print(f"== stage {name} (FROM {tokens[0]}: this machine's tools stand in)", flush=True)
            continue
        if word == "ARG":
            key, eq, default = rest.partition("=")
            if name is None:
                global_args[key] = default
            else:
                value = build_args.get(key, default if eq else global_args.get(key, ""))
                variables[key] = value
            continue
        if name is None:
            fail(f"{word} before the first FROM")
        if word == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, expand(rest, variables)))
            (root / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif word == "ENV":
            variables.update(pairs(rest, variables, "ENV"))
        elif word == "LABEL":
            image["labels"].update(pairs(rest, variables, "LABEL"))
        elif word == "COPY":
            tokens = [expand(t, variables) for t in shlex.split(rest)]
            flags = [t for t in tokens if t.startswith("--")]
            paths = [t for t in tokens if not t.startswith("--")]
            origin_stage = None
            for flag in flags:
                if flag.startswith("--from="):
                    origin_stage = flag.split("=", 1)[1]
                elif not flag.startswith(("--chown=", "--chmod=", "--link")):
                    fail(f"COPY {flag}: not supported here")
            if len(paths) < 2:
                fail(f"COPY {rest!r}: needs a source and a destination")
            *srcs, dest = paths
            dest_path = root / os.path.join(workdir, dest).lstrip("/")
            dest_is_dir = dest.endswith("/") or dest in (".", "..") or len(srcs) > 1
            for src in srcs:
                if origin_stage is None:
                    origin = ctx / os.path.normpath(src)
                else:
                    if origin_stage not in stages:
                        fail(f"COPY --from={origin_stage}: no such earlier stage")
                    origin = Path(stages[origin_stage]) / src.lstrip("/")
                if not origin.exists():
                    fail(f"COPY {src}: not there (stage {origin_stage or 'context'})")
                copy_into(origin, dest_path, dest_is_dir)
        elif word == "RUN":
            if rest.startswith("[") or "<<" in rest:
                fail(f"RUN {rest!r}: only the shell form is supported here")
            env = dict(clean_env, **variables)
            started = time.monotonic()
            print(f"RUN {rest}", flush=True)
            result = subprocess.run(["sh", "-c", rest], cwd=root / workdir.lstrip("/"), env=env)
            if result.returncode != 0:
                fail(f"RUN {rest!r} failed in stage {name} (exit {result.returncode})")
            print(f"    ({time.monotonic() - started:.0f} s)", flush=True)
        elif word in ("USER", "EXPOSE"):
            image[word.lower()] = expand(rest, variables)
        elif word in ("ENTRYPOINT", "CMD"):
            try:
                image[word.lower()] = json.loads(rest)
            except json.JSONDecodeError:
                fail(f"{word} {rest!r}: only the JSON form is supported here")
        else:
            fail(f"{word}: not an instruction this check knows")

    image["root"] = str(root)
    image["stages"] = stages
    (work / "image.json").write_text(json.dumps(image, indent=2))
    print(f"image: stage {image['stage']}, labels {json.dumps(image['labels'])}", flush=True)


if __name__ == "__main__":
    main()
