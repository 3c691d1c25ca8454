"""What the bench scripts share: a free port, `colloquy serve` started and stopped, and colloquy's JSON output.

The scripts run as `python benches/NAME.py`, so this folder is on `sys.path` and `import common` finds this file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from typing import IO, Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    binary: str,
    workdir: str,
    *,
    config: str | None = None,
    demo: bool = False,
    cache_dir: str | None = None,
) -> tuple[subprocess.Popen[str], str, IO[str]]:
    """Starts `colloquy serve` on a free port with `config` (TOML text) and returns (process, grpc URI, log).

    The server logs a line per query to stderr: into `workdir/server.log`, because a pipe nobody reads fills
    up and then blocks the server's next write. The caller closes the log after `stop_server`.
    """
    args = [binary, "serve", "--bind", "127.0.0.1:0"]
    if config is not None:
        path = os.path.join(workdir, "colloquy.toml")
        with open(path, "w") as f:
            f.write(config)
        args += ["--config", path]
    if demo:
        args.append("--demo")
    env = dict(os.environ, COLLOQUY_CACHE_DIR=cache_dir or os.path.join(workdir, "cache"))
    log = open(os.path.join(workdir, "server.log"), "w")  # noqa: SIM115 (handed to the caller)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        proc.wait()
        log.close()
        raise RuntimeError(f"colloquy serve did not start: {line!r}\n{server_log_tail(workdir)}")
    return proc, line.strip().rsplit(" ", 1)[-1], log


def server_log_tail(workdir: str, lines: int = 20) -> str:
    """The last lines of the server log `start_server` writes, for error messages."""
    try:
        with open(os.path.join(workdir, "server.log")) as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def stop_server(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM (the server lets running streams finish), then SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def last_json_array(stdout: str) -> Any:
    """colloquy prints one JSON array per statement (`--format json`): the last one."""
    decoder, pos, last = json.JSONDecoder(), 0, None
    while True:
        while pos < len(stdout) and stdout[pos].isspace():
            pos += 1
        if pos >= len(stdout):
            return last
        last, pos = decoder.raw_decode(stdout, pos)


# Tables some views of sql/views/ read besides `messages`; such a view exists only while its table does.
OPTIONAL_INPUTS = ("labels",)


def run_sql(
    binary: str, statements: list[str], cluster: str | None = None, cores: str | None = None
) -> tuple[float, str]:
    """Runs `statements` in one `colloquy sql --format csv` process (on the cluster at `cluster`, pinned to
    `cores` with taskset when given) and returns (wall seconds, stdout)."""
    args = [binary, "sql", "--format", "csv"]
    if cluster:
        args += ["--cluster", cluster]
    for s in statements:
        args += ["-c", s]
    if cores:
        args = ["taskset", "-c", cores] + args
    started = time.perf_counter()
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, out.stdout


def library_views() -> list[str]:
    """The views of sql/views/ that a session with only `messages` has (by each file's `-- Inputs:` line)."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sql", "views")
    views = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".sql"):
            continue
        with open(os.path.join(folder, name)) as f:
            inputs = next((line for line in f if line.startswith("-- Inputs:")), "")
        if not any(table in inputs.replace(",", " ").replace(".", " ").split() for table in OPTIONAL_INPUTS):
            views.append(name[:-4])
    return views


def demo_archive(binary: str, work: str, conversations: int, seed: int | None = None) -> str:
    """The demo archive of `conversations` (and `seed`) under `work`, written by `colloquy demo` unless it is
    there already; returns its folder."""
    name = f"demo-{conversations}" if seed is None else f"demo-{conversations}-{seed}"
    archive = os.path.join(work, name)
    if not os.path.isdir(archive):
        args = [binary, "demo", "--out", archive, "--conversations", str(conversations)]
        if seed is not None:
            args += ["--seed", str(seed)]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return archive

