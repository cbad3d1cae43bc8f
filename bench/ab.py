"""Before/after on one machine: two commits served side by side, measured in alternating rounds.

The machines these runs get differ by up to 2.3x and drift by up to 1.8x within minutes
(RESULTS.md), so a table measured at one commit on one day and another measured later tell
little about the change between them. `python -m bench ab --base <commit>` checks `<commit>`
out into a temporary git worktree, serves it and the working tree with gunicorn on two ports
(same database, same Redis, same settings), and runs each workload's `wrk` against one, then
the other, then the other way round, `--rounds` times; only one server is under load at a time.
It prints each run and the mean of each side, and writes nothing.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from bench import http

BASE_PORT = http.PORT + 1


def ab(*, base: str, only: set[str], rounds: int = 3, duration: int = 6) -> dict:
    """{(workload, "base" | "new"): [wrk results]} for `base` and the working tree."""
    root = http.REPO_ROOT
    worktree = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(worktree), base],
        cwd=root,
        check=True,
        capture_output=True,
    )
    servers = {}
    try:
        servers = {
            "new": http.start_server(root, http.PORT),
            "base": http.start_server(worktree, BASE_PORT),
        }
        ports = {"new": http.PORT, "base": BASE_PORT}
        workloads = [w for w in http.build_workloads() if not only or w.name in only]
        headers: dict[tuple[str, str], tuple[str, str]] = {}
        results: dict[tuple[str, str], list[dict]] = {}
        for workload in workloads:
            if not workload.missing:
                http._fix_paths(workload)
            if workload.missing:
                print(f"{workload.name}: not measured ({workload.missing})", flush=True)
                continue
            key = (workload.auth, workload.user)
            if key not in headers:
                headers[key] = (
                    ("Authorization", f"Token {http.api_token(workload.user)}")
                    if workload.auth == "token"
                    else ("Cookie", http.login_cookie(workload.user))
                )
            for round_ in range(rounds):
                order = ("base", "new") if round_ % 2 == 0 else ("new", "base")
                for side in order:
                    url = f"http://127.0.0.1:{ports[side]}"
                    http.run_wrk(workload, headers[key], 2, url)  # warm-up
                    result = http.run_wrk(workload, headers[key], duration, url)
                    results.setdefault((workload.name, side), []).append(result)
                    print(
                        f"{workload.name} {side}: {result['rps']:.1f} req/s, "
                        f"p50 {result['p50']:.1f} ms, {result['errors']} errors",
                        flush=True,
                    )
        print(
            f"\nbase {base} against the working tree, {rounds} alternating rounds of {duration} s:"
        )
        for workload in workloads:
            sides = [results.get((workload.name, side)) for side in ("base", "new")]
            if not all(sides):
                continue
            (rps_base, p50_base), (rps_new, p50_new) = (
                (sum(r["rps"] for r in runs) / len(runs), sum(r["p50"] for r in runs) / len(runs))
                for runs in sides
            )
            print(
                f"{workload.name}: {rps_base:.1f} -> {rps_new:.1f} req/s "
                f"({rps_new / rps_base:.2f}x), p50 {p50_base:.1f} -> {p50_new:.1f} ms"
            )
        return results
    finally:
        for server in servers.values():
            http.stop_server(server)
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(worktree)], cwd=root, check=False
        )
