"""Experiment tracking with W&B: offline by default, secrets scrubbed, one W&B run per DAG step.

``group`` is the sweep, ``job_type`` the stage, ``name`` the step id; the config is the step's resolved
config (its typed slice of the recipe, defaults included: what its id hashes) plus lineage hashes. Offline
runs land in ``<dir>/wandb/offline-run-*`` and can be uploaded later with
``wandb sync``. Mode, in order: the user's ``WANDB_MODE``; the recipe's ``tracking.wandb.mode`` when set
explicitly; online when ``WANDB_API_KEY`` is set; else offline. Only rank 0 of a multi-process job
tracks; other ranks get a ``NullTracker``.

Nothing that looks like a credential reaches W&B: keys named like ``api_key``/``token``/``secret`` are
redacted, and the values of environment variables named ``*KEY*``/``*TOKEN*``/``*SECRET*`` (and
``sk-...``/``hf_...`` strings) are masked wherever they appear in config, metrics, tables and summary.
``read_offline_run`` reads a run folder back (the ``.wandb`` record log), for tests and reports.
"""
from __future__ import annotations

import json
import os
import re
import struct
import sys
import time
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from distill.recipe.schema import Tracking, Wandb
from distill.runtime import rank

REDACTED = "<redacted>"
# Key names that hold a credential. Not every "*token*": eos_token, max_new_tokens, token counts are data.
_SECRET_KEY = re.compile(r"api_?key|secret|passw(or)?d|credential|(access|auth|bearer|hf|wandb|github)_?token"
                         r"|private_?key|^(token|key)$", re.IGNORECASE)
_SECRET_ENV_PARTS = {"KEY", "APIKEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS"}
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,})\b")
_HARMLESS = {"true", "false", "yes", "no", "none", "null", "0", "1"}


# ----------------------------------------------------------------------------- scrubbing
def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names say they hold a credential."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items()
              if _SECRET_ENV_PARTS & set(k.upper().split("_")) and len(v) >= 6 and v.lower() not in _HARMLESS}
    return sorted(values, key=len, reverse=True)  # longest first: a key containing another is masked whole


def _is_secret_key(key: str) -> bool:
    # `api_key_env` names the variable that holds a key (not the key itself): keep it.
    return bool(_SECRET_KEY.search(key)) and not key.lower().endswith("_env")


def scrub(obj: Any, secrets: Sequence[str] | None = None) -> Any:
    """A copy of ``obj`` with credential-named keys redacted and secret values masked in strings."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(obj, Mapping):
        return {scrub(str(k), secrets): REDACTED if _is_secret_key(str(k)) and v not in (None, "")
                else scrub(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(scrub(v, secrets) for v in obj)
    if isinstance(obj, str):
        for value in secrets:
            obj = obj.replace(value, REDACTED)
        return _SECRET_VALUE.sub(REDACTED, obj)
    return obj


def scrub_argv(argv: Sequence[str], secrets: Sequence[str]) -> list[str]:
    """Command-line words with secrets masked: ``api_key=...``, ``--token VALUE`` and known values.
    W&B records ``sys.argv`` in every run's metadata."""
    out: list[str] = []
    for word in argv:
        name, eq, _ = word.partition("=")
        if eq and _is_secret_key(name.lstrip("-").replace("-", "_")):
            word = f"{name}={REDACTED}"
        elif out and out[-1].startswith("--") and _is_secret_key(out[-1].lstrip("-").replace("-", "_")):
            word = REDACTED
        out.append(scrub(word, secrets))
    return out


# ----------------------------------------------------------------------------- mode
def resolve_mode(cfg: Wandb, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    user = env.get("WANDB_MODE", "").strip().lower()
    if user:
        return {"dryrun": "offline", "run": "online"}.get(user, user)
    if "mode" in cfg.model_fields_set:
        return cfg.mode
    return "online" if env.get("WANDB_API_KEY") else "offline"


# ----------------------------------------------------------------------------- trackers
class NullTracker:
    """Same interface, does nothing: tracking disabled, or a non-zero rank."""

    mode = "disabled"
    run_dir: Path | None = None

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None: ...
    def log_table(self, key: str, rows: Sequence[Mapping[str, Any]], step: int | None = None) -> None: ...
    def log_images(self, images: Mapping[str, str | Path], step: int | None = None) -> None: ...
    def summary(self, values: Mapping[str, Any]) -> None: ...
    def finish(self, exit_code: int | None = None) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.finish(exit_code=1 if exc_type else None)  # an exception marks the W&B run failed


class Tracker(NullTracker):
    """A live W&B run. Every value passes through ``scrub`` before W&B sees it."""

    def __init__(self, run, mode: str, secrets: Sequence[str]):
        self._run, self.mode, self._secrets = run, mode, list(secrets)
        self.run_dir = Path(run.dir).parent  # .../wandb/offline-run-*/ (run.dir is its files/)

    def _clean(self, obj: Any) -> Any:
        return scrub(obj, self._secrets)

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self._run.log(self._clean(dict(metrics)), step=step)

    def log_table(self, key: str, rows: Sequence[Mapping[str, Any]], step: int | None = None) -> None:
        import wandb

        rows = [self._clean(dict(r)) for r in rows]
        columns = list(dict.fromkeys(k for r in rows for k in r))
        data = [[_cell(r.get(c)) for c in columns] for r in rows]
        self._run.log({self._clean(key): wandb.Table(columns=columns, data=data)}, step=step)

    def log_images(self, images: Mapping[str, str | Path], step: int | None = None) -> None:
        import wandb

        self._run.log({self._clean(k): wandb.Image(str(p), caption=self._clean(Path(p).stem))
                       for k, p in images.items()}, step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        for key, value in self._clean(dict(values)).items():
            self._run.summary[key] = value

    def finish(self, exit_code: int | None = None, timeout_s: float = 60.0) -> None:
        """End the run. Offline, also wait until W&B's writer has flushed the run file (its `exit`
        record): ``run.finish()`` can return before that, and a step that marks itself done must not
        leave half a run folder behind."""
        if self._run is None:
            return
        self._run.finish(exit_code=exit_code)
        self._run = None
        if self.mode == "offline" and not _wait_for_exit(self.run_dir, timeout_s):
            warnings.warn(f"W&B run {self.run_dir} has no exit record after {timeout_s:.0f} s", stacklevel=2)


def _cell(value: Any) -> Any:
    """Table cells must be scalars; nested values become JSON text."""
    return json.dumps(value, default=str) if isinstance(value, (dict, list, tuple)) else value


def start_tracker(cfg: Tracking | Wandb, *, sweep: str, stage: str, step_id: str, config: Mapping[str, Any],
                  lineage: Mapping[str, str] | None = None, dir: str | Path | None = None,
                  env: Mapping[str, str] | None = None) -> Tracker | NullTracker:
    """Open the W&B run of one DAG step (``NullTracker`` when disabled or not rank 0)."""
    env = os.environ if env is None else env
    cfg = cfg.wandb if isinstance(cfg, Tracking) else cfg
    mode = resolve_mode(cfg, env)
    if mode == "disabled" or rank(env) != 0:
        return NullTracker()
    if mode not in ("offline", "online", "shared"):
        raise ValueError(f"WANDB_MODE={mode!r} is not one of offline, online, disabled")
    import wandb

    secrets = secret_values(env)
    run_dir = Path(dir or env.get("WANDB_DIR") or ".").expanduser()
    run_dir.mkdir(parents=True, exist_ok=True)
    # No git capture either: a remote URL can carry a token; lineage hashes say what ran.
    settings = wandb.Settings(console="off", disable_git=True, save_code=False, silent=True)
    argv, sys.argv = sys.argv, scrub_argv(sys.argv, secrets)  # W&B copies argv into the run metadata
    try:
        run = wandb.init(project=cfg.project, entity=cfg.entity, group=sweep, job_type=stage, name=step_id,
                         mode=mode, dir=str(run_dir), reinit="create_new", settings=settings,
                         config=scrub({**dict(config), "lineage": dict(lineage or {})}, secrets))
    finally:
        sys.argv = argv
    return Tracker(run, mode, secrets)


# ----------------------------------------------------------------------------- reading back
_BLOCK, _HEADER = 32768, 7  # the .wandb file: a 7-byte header, then LevelDB-log records in 32 KiB blocks


def _records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file (bad header)")
    out, pending, pos = [], b"", _HEADER
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # a record header never straddles blocks: the tail is padding
            pos += _BLOCK - pos % _BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if pos + 7 + length > len(data):
            break  # a record still being written (or cut by a crash): everything before it stands
        payload = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0:
            continue
        if zlib.crc32(bytes([kind]) + payload) != crc:
            raise ValueError(f"{path}: corrupt record at byte {pos - length - 7}")
        pending = payload if kind in (1, 2) else pending + payload
        if kind in (1, 4):
            out.append(pending)
    return out


def _kinds(path: Path) -> list[str]:
    from wandb.proto import wandb_internal_pb2 as pb

    out = []
    for blob in _records(path):
        rec = pb.Record()
        rec.ParseFromString(blob)
        out.append(rec.WhichOneof("record_type"))
    return out


def _wait_for_exit(run_dir: Path, timeout_s: float) -> bool:
    deadline, pause = time.monotonic() + timeout_s, 0.01
    while True:
        files = sorted(run_dir.glob("*.wandb"))
        try:
            if files and "exit" in _kinds(files[0]):
                return True
        except ValueError:  # header not written yet
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)
        pause = min(2 * pause, 0.5)


def _set(target: dict, item) -> None:
    keys = list(item.nested_key) or [item.key]
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = json.loads(item.value_json)


def read_offline_run(run_dir: str | Path) -> dict[str, Any]:
    """``{run: {group, job_type, name, project}, config, history: [rows], summary, tables: {key: {...}}}``."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("*.wandb"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no .wandb file")
    out: dict[str, Any] = {"run": {}, "config": {}, "history": [], "summary": {}, "tables": {}}
    for blob in _records(files[0]):
        rec = pb.Record()
        rec.ParseFromString(blob)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out["run"] = {"group": rec.run.run_group, "job_type": rec.run.job_type,
                          "name": rec.run.display_name, "project": rec.run.project}
            for item in rec.run.config.update:
                _set(out["config"], item)
        elif kind == "config":
            for item in rec.config.update:
                _set(out["config"], item)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in rec.history.item:
                _set(row, item)
            out["history"].append(row)
        elif kind == "summary":
            for item in rec.summary.update:
                _set(out["summary"], item)
    for table in sorted(run_dir.glob("files/media/table/**/*.table.json")):
        out["tables"][table.name.split(".table.json")[0].rsplit("_", 2)[0]] = json.loads(table.read_text())
    out["config"].pop("_wandb", None)
    return out


def offline_runs(root: str | Path) -> list[Path]:
    """Offline run folders under ``root`` (``root/wandb/offline-run-*``), oldest first."""
    return sorted(Path(root).glob("wandb/offline-run-*"))
