"""A small client over Slurm's command-line tools, and the renderer of distill's sbatch scripts.

The Slurm executor submits each stage as a batch script (arrays for shards and training grids,
``afterok`` dependencies) and polls job states until they end. Everything goes through the CLIs
(``sbatch``, ``scontrol``, ``scancel``): no accounting database is needed, since ``scontrol show
job`` also reports jobs that ended less than ``MinJobAge`` seconds ago.

Launchers take resources as a plain dict (the executor maps the recipe to it); nothing here parses
recipes. Job ids are strings: ``"123"`` for a job or a whole array, ``"123_4"`` for one array task.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from distill.registry import SLURM_RESOURCE_KEYS, did_you_mean

# States after which a job never runs again (a requeued job goes back to PENDING instead).
# UNKNOWN: Slurm no longer knows the id (purged after MinJobAge, or never existed).
TERMINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "SPECIAL_EXIT",
        "TIMEOUT",
        "UNKNOWN",
    }
)

_CLI_TIMEOUT_S = 120  # sbatch retries an unreachable controller for a while before giving up
_STATE_TRIES = 3  # scontrol show job attempts before a failure is an error


class SlurmError(RuntimeError):
    """A Slurm command failed; the message is one line naming the command and Slurm's answer."""


def _run(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=_CLI_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise SlurmError(
            f"{what}: {args[0]} not found on PATH (no Slurm client installed; for a "
            "local cluster run: sudo bash slurm/local/start.sh)"
        ) from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{what}: {args[0]} gave no answer within {_CLI_TIMEOUT_S}s") from None


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines) if lines else "(no message)"


def dependency_spec(dependency: Iterable[str]) -> str:
    """``["12", "13", "afterany:14"]`` -> ``"afterok:12:13,afterany:14"`` (bare ids mean afterok)."""
    items = [str(d) for d in dependency]
    ok = [d for d in items if ":" not in d]
    return ",".join(([f"afterok:{':'.join(ok)}"] if ok else []) + [d for d in items if ":" in d])


def submit(
    script: Path,
    *,
    array: str | None = None,
    dependency: list[str] | None = None,
    extra: Iterable[str] = (),
    test_only: bool = False,
) -> str:
    """Submit ``script`` with sbatch; returns the job id (with ``test_only``: sbatch's message).

    ``--kill-on-invalid-dep=yes`` is always added: without it a job whose ``afterok`` dependency
    failed stays pending forever instead of being cancelled.
    """
    args = ["sbatch", "--kill-on-invalid-dep=yes"]
    args += ["--test-only"] if test_only else ["--parsable"]
    if array:
        args.append(f"--array={array}")
    if dependency:
        args.append(f"--dependency={dependency_spec(dependency)}")
    args += [*extra, str(script)]
    proc = _run(args, f"sbatch {script}")
    if proc.returncode != 0:
        raise SlurmError(f"sbatch {script}: {_one_line(proc.stderr + proc.stdout)}")
    if test_only:  # sbatch --test-only answers on stderr: "sbatch: Job N to start at ..."
        return _one_line(proc.stderr + proc.stdout)
    job_id = proc.stdout.strip().split(";")[0]  # --parsable prints "id" or "id;cluster"
    if not job_id.isdigit():
        raise SlurmError(f"sbatch {script}: unexpected answer {proc.stdout.strip()!r}")
    return job_id


def expand_task_ids(spec: str) -> list[str]:
    """Slurm's array task list (``0-3``, ``1,5-9:2``, ``0-5%2``) as single task ids."""
    spec = spec.split("%")[0]  # "%2" is the throttle, not part of the list
    out: list[str] = []
    for part in spec.split(","):
        rng, _, step = part.partition(":")
        lo, _, hi = rng.partition("-")
        out += [str(i) for i in range(int(lo), int(hi or lo) + 1, int(step or 1))]
    return out


_FIELD = re.compile(r"(?:^|\s)(JobId|ArrayJobId|ArrayTaskId|JobState)=(\S+)")


def parse_job_records(text: str) -> dict[str, str]:
    """``scontrol -o show job`` output -> ``{job id: state}``; array tasks keyed ``<array>_<task>``."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        fields: dict[str, str] = {}
        for key, value in _FIELD.findall(line):
            fields.setdefault(key, value)
        if "JobId" not in fields or "JobState" not in fields:
            continue
        if "ArrayJobId" in fields and "ArrayTaskId" in fields:
            for task in expand_task_ids(fields["ArrayTaskId"]):
                states[f"{fields['ArrayJobId']}_{task}"] = fields["JobState"]
        else:
            states[fields["JobId"]] = fields["JobState"]
    return states


def job_states(job_ids: Iterable[str]) -> dict[str, str]:
    """Current state of each job; a whole array is reported per task (``123_0``, ``123_1`` ...).

    Finished jobs are found too (until MinJobAge); ids Slurm does not know read ``UNKNOWN``.
    """
    states: dict[str, str] = {}
    for job_id in dict.fromkeys(str(j) for j in job_ids):
        for attempt in range(_STATE_TRIES):
            proc = _run(["scontrol", "-o", "show", "job", job_id], f"scontrol show job {job_id}")
            # a busy controller (e.g. while requeueing a multi-node job) sometimes fails a query with no
            # message; only a real answer or repeated failures count
            if proc.returncode == 0 or "Invalid job id" in proc.stderr or attempt == _STATE_TRIES - 1:
                break
            time.sleep(1.0)
        if proc.returncode != 0:
            if "Invalid job id" in proc.stderr:
                states[job_id] = "UNKNOWN"
                continue
            raise SlurmError(f"scontrol show job {job_id}: {_one_line(proc.stderr)}")
        records = parse_job_records(proc.stdout)
        # "123" is a job or a whole array (all its tasks), "123_4" one task; a task asked for by its
        # own job id keeps the "<array>_<task>" key Slurm reports.
        wanted = {k: v for k, v in records.items() if k == job_id or k.startswith(f"{job_id}_")}
        states.update(wanted or records)
    return states


def wait(job_ids: Iterable[str], poll: float = 0.5, timeout: float | None = None) -> dict[str, str]:
    """Poll until every job (every task of every array) is in a terminal state; returns the states."""
    ids = list(job_ids)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        states = job_states(ids)
        if all(s in TERMINAL_STATES for s in states.values()):
            return states
        if deadline is not None and time.monotonic() > deadline:
            waiting = {k: v for k, v in states.items() if v not in TERMINAL_STATES}
            raise SlurmError(f"jobs still not finished after {timeout}s: {waiting}")
        time.sleep(poll)


def hostnames(nodelist: str) -> list[str]:
    """A Slurm node list (``n[1-2],gpu7``) as host names, in Slurm's order (``scontrol show hostnames``)."""
    proc = _run(["scontrol", "show", "hostnames", nodelist], f"scontrol show hostnames {nodelist}")
    names = proc.stdout.split()
    if proc.returncode != 0 or not names:
        raise SlurmError(f"scontrol show hostnames {nodelist}: {_one_line(proc.stderr) or 'no hosts'}")
    return names


def cancel(job_ids: Iterable[str]) -> None:
    """Cancel jobs (whole arrays or single tasks); jobs that already ended are left as they are."""
    ids = [str(j) for j in job_ids]
    if not ids:
        return
    proc = _run(["scancel", *ids], f"scancel {' '.join(ids)}")
    errors = [
        line
        for line in proc.stderr.splitlines()
        if line.strip() and "already completing or completed" not in line
    ]
    if proc.returncode != 0 and errors:
        message = _one_line("\n".join(errors))
        raise SlurmError(f"scancel {' '.join(ids)}: {message}")


# --- sbatch scripts --------------------------------------------------------------------------------


def _directive_value(key: str, value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"slurm resources: {key}={value!r} must be a non-empty value without spaces")
    return text


def sbatch_directives(
    *,
    job_name: str,
    resources: Mapping[str, object],
    log_path: str | Path,
    array: str | None = None,
    requeue: bool = True,
    signal_seconds: int | None = 120,
) -> list[str]:
    """The ``#SBATCH`` lines for one stage. ``mem`` and ``time`` given as numbers mean MB and minutes
    (Slurm's own units); ``gpus`` is per node; ``extra`` is a list of further sbatch options."""
    unknown = sorted(set(resources) - set(SLURM_RESOURCE_KEYS))
    if unknown:
        raise ValueError("slurm resources: unknown key "
                         f"{unknown[0]!r}{did_you_mean(unknown[0], SLURM_RESOURCE_KEYS)}")
    opts = [f"--job-name={_directive_value('job_name', job_name)}"]
    for key in ("partition", "account", "qos", "nodes", "ntasks_per_node", "cpus_per_task", "mem", "time"):
        value = resources.get(key)
        if value is not None and value != "":
            opts.append(f"--{key.replace('_', '-')}={_directive_value(key, value)}")
    gpus = resources.get("gpus")
    if gpus:
        opts.append(f"--gres=gpu:{_directive_value('gpus', gpus)}")
    if array:
        opts.append(f"--array={_directive_value('array', array)}")
    opts.append("--requeue" if requeue else "--no-requeue")
    if signal_seconds:
        # USR1 to the batch shell (B:) shortly before the time limit: the script forwards it to the
        # step so it can save progress, then requeues the job (see slurm/templates/).
        opts.append(f"--signal=B:USR1@{int(signal_seconds)}")
    opts += ["--open-mode=append", f"--output={_directive_value('log_path', log_path)}"]
    for line in resources.get("extra") or ():
        if not str(line).startswith("-") or "\n" in str(line):
            raise ValueError(
                f"slurm resources: extra line {line!r} must be one sbatch option like --constraint=a100"
            )
        opts.append(str(line))
    return [f"#SBATCH {opt}" for opt in opts]


def _check_simple_command(job_name: str, command: str) -> None:
    # The templates run the command in the background to pass USR1 on to it: a pipeline or a list
    # (a;b, a&&b) would get the signal in the wrong process, so only one program is allowed.
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError as err:
        raise ValueError(f"sbatch command for {job_name}: {err}: {command!r}") from None
    operators = [t for t in tokens if t and set(t) <= set(";&|()<>")]
    if not tokens or operators or "\n" in command.strip():
        raise ValueError(f"sbatch command for {job_name} must be one program with its arguments: {command!r}")


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def render_sbatch(
    template_text: str,
    *,
    job_name: str,
    resources: Mapping[str, object],
    command: str,
    log_path: str | Path,
    array: str | None = None,
    requeue: bool = True,
    signal_seconds: int | None = 120,
    env: Mapping[str, str] | None = None,
) -> str:
    """Fill a template from ``slurm/templates/``: ``{{directives}}``, ``{{env}}``, ``{{command}}``.

    ``command`` is one program and its arguments in shell quoting (e.g. ``shlex.join(argv)``), so the
    script can pass signals to it. ``env`` becomes ``export`` lines; ``DISTILL_REQUEUE`` tells the
    script whether to requeue itself after a USR1.
    """
    _check_simple_command(job_name, command)
    exports = {"DISTILL_REQUEUE": "1" if requeue else "0", **(env or {})}
    for name in exports:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"sbatch env for {job_name}: {name!r} is not a variable name")
    fields = {
        "directives": "\n".join(
            sbatch_directives(
                job_name=job_name,
                resources=resources,
                log_path=log_path,
                array=array,
                requeue=requeue,
                signal_seconds=signal_seconds,
            )
        ),
        "env": "\n".join(f"export {k}={shlex.quote(str(v))}" for k, v in exports.items()),
        "command": command.strip(),
    }
    present = set(_PLACEHOLDER.findall(template_text))
    missing = [name for name in ("directives", "command") if name not in present]
    if missing:
        raise ValueError(f"sbatch template for {job_name} lacks the placeholder {{{{{missing[0]}}}}}")

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in fields:
            raise ValueError(f"sbatch template for {job_name}: unknown placeholder {match.group(0)}")
        return fields[match.group(1)]

    return _PLACEHOLDER.sub(fill, template_text)
