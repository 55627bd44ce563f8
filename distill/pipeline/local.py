"""The local executor: runs a DAG on this machine, independent steps side by side.

Workers are long-lived processes, so torch, transformers and lm-eval are imported once per worker
and reused across the many tiny steps of a sweep, instead of once per step. Every step gets
``cores // workers`` threads (``runtime.thread_count``), whatever runs beside it: a step's numbers never
depend on timing, and
tiny models lose far more to threads competing for a core than they gain from a second thread
(human-only students train while the teacher is still being built).
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tqdm import tqdm

from distill.artifacts import atomic_write_text, is_done
from distill.pipeline.context import Launch
from distill.pipeline.kinds import kind_of
from distill.pipeline.lock import step_lock
from distill.pipeline.plan import Step
from distill.pipeline.state import ERROR_FILE, StepState, describe_error, failure_summary, step_state
from distill.runtime import thread_count


def _init_worker(sigint_ignored: bool) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # tqdm's default lock is a multiprocessing semaphore made in the worker; one worker process
    # needs only a thread lock, and an os._exit below would leak the semaphore (a resource_tracker warning)
    tqdm.set_lock(threading.RLock())
    # Ctrl-C reaches every process of the terminal's group: a worker leaves at once and quietly (no
    # multiprocessing traceback); its step is left partial, as after a kill, and resumes on a rerun.
    # A run that ignores SIGINT (started with `&` by a script, or nohup) keeps its workers too.
    signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else (lambda *_: os._exit(130)))


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or a SIGTERM, SIGHUP) during a local run, naming the steps that were running."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code  # what a shell reports for the signal: 128 + its number


def _stop_on(signum: int, _frame) -> None:
    """SIGTERM (`timeout`, `kill`, a scheduler) and SIGHUP (the terminal closed) end a run like Ctrl-C:
    without this the workers outlive it, still writing their steps, and the run folder's lock is free."""
    raise KeyboardInterrupt(signum)


@contextlib.contextmanager
def _terminate_like_ctrl_c():
    if threading.current_thread() is not threading.main_thread():  # only the main thread takes handlers
        yield
        return
    old = {sig: signal.signal(sig, _stop_on) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _run_in_worker(run_dir: str, step_id: str, threads: int, shared: str | None,
                   launch: Launch) -> tuple[str, float]:
    """Run one step. A ``shared`` step (in the cache, wanted by every run of its world) is built under
    its lock: when another run is building it, this one waits, then finds it done."""
    from distill.pipeline.execute import execute_step  # heavy imports happen once per worker

    start = time.time()
    if shared is None:
        execute_step(Path(run_dir), step_id, threads=threads, launch=launch)
        return step_id, time.time() - start
    with step_lock(Path(shared)):
        if not is_done(shared):
            execute_step(Path(run_dir), step_id, threads=threads, launch=launch)
    return step_id, time.time() - start


def run_local(run_dir: Path, steps: list[Step], cache_dir: Path, workers: int,
              only: set[str] | None = None, launch: Launch | None = None) -> dict[str, str]:
    """Run every step not yet done (of ``only``, when given: the others must be done already), each
    given ``launch`` (``context.launch_of(recipe)``; None: untracked, one process per device);
    return {step id: 'done' | 'failed' | 'skipped'} for this call."""
    by_id = {s.id: s for s in steps}
    state = {s.id: step_state(s, run_dir, cache_dir) for s in steps}
    todo = [s.id for s in steps if state[s.id] is not StepState.DONE and (only is None or s.id in only)]
    outcome: dict[str, str] = {}
    if not todo:
        return outcome
    workers = max(1, min(workers, os.cpu_count() or 1))
    threads = thread_count(sharing=workers)
    running: dict[Future, str] = {}
    bar = tqdm(total=len(todo), desc="steps", unit="step", dynamic_ncols=True)
    ctx = mp.get_context("spawn")  # fork after torch import is unsafe; spawn workers start clean
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(signal.getsignal(signal.SIGINT) is signal.SIG_IGN,))
    try:
        with _terminate_like_ctrl_c():
            _drive(pool, todo, running, by_id, state, outcome, bar, run_dir, cache_dir, workers, threads,
                   launch or Launch())
    except KeyboardInterrupt as exc:
        # a signal sent to this process alone (kill -INT, kill -TERM) stops the workers too (SIGTERM:
        # they may ignore SIGINT); then the pool is joined, so the run's lock outlives no worker
        for process in list(getattr(pool, "_processes", {}).values()):
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        names = (", ".join(f"{by_id[sid].kind} {by_id[sid].label}".strip() for sid in running.values())
                 or "no step")
        signum = exc.args[0] if exc.args and isinstance(exc.args[0], int) else signal.SIGINT
        raise Interrupted(f"{'interrupted' if signum == signal.SIGINT else signal.Signals(signum).name} "
                          f"while running {names}", 128 + signum) from None
    pool.shutdown()
    bar.close()
    return outcome


def _drive(pool, todo, running, by_id, state, outcome, bar, run_dir, cache_dir, workers, threads,
           launch) -> None:
    """Submit ready steps, collect finished ones, until nothing is left to run."""
    while todo or running:
        for sid in _ready(todo, by_id, state):
            if len(running) >= workers:
                break
            todo.remove(sid)
            step = by_id[sid]
            shared = str(step.folder(run_dir, cache_dir)) if kind_of(step.kind).cached else None
            running[pool.submit(_run_in_worker, str(run_dir), sid, threads, shared, launch)] = sid
            bar.set_postfix_str(f"{by_id[sid].kind} {by_id[sid].label}")
        for sid in _blocked(todo, by_id, outcome):
            todo.remove(sid)
            outcome[sid] = "skipped"
            bar.update(1)
        if not running:
            break
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for fut in done:
            sid = running.pop(fut)
            try:
                fut.result()
                outcome[sid] = "done"
                state[sid] = StepState.DONE
            except BrokenProcessPool:  # the pool is unusable: the rest of the DAG waits for a rerun
                outcome[sid] = "failed"
                _worker_died(by_id[sid], by_id[sid].folder(run_dir, cache_dir))
                outcome.update({t: "skipped" for t in todo})
                bar.update(1 + len(todo))
                todo.clear()
                continue
            except Exception as exc:  # noqa: BLE001 -- any step failure; its traceback is in its log
                if type(exc).__name__ == "AnnotationsPending":  # not a failure: people are at work
                    outcome[sid] = "waiting"
                    tqdm.write(f"waiting: {by_id[sid].kind} {by_id[sid].label}: {exc}")
                    bar.update(1)
                    continue
                outcome[sid] = "failed"
                folder = by_id[sid].folder(run_dir, cache_dir)
                cause = failure_summary(folder) if (folder / ERROR_FILE).exists() else describe_error(exc)
                tqdm.write(f"failed: {by_id[sid].kind} {by_id[sid].label}: {cause} (log: "
                           f"{folder / 'log.txt'})")
            bar.update(1)


def _worker_died(step: Step, folder: Path) -> None:
    """A worker killed under its step (a signal, the out-of-memory killer) leaves no error of its own:
    say so in the step's error file, so the run and `distill status` show the step failed, with why."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / ERROR_FILE, "its worker process died (killed by a signal or out of memory; "
                                           "see the end of log.txt); rerun the same command to resume\n")
    tqdm.write(f"failed: {step.kind} {step.label}: its worker process died (log: {folder / 'log.txt'})")


def _ready(todo: list[str], by_id: dict[str, Step], state: dict) -> list[str]:
    return [sid for sid in todo if all(state.get(d) is StepState.DONE for d in by_id[sid].deps)]


def _blocked(todo: list[str], by_id: dict[str, Step], outcome: dict) -> list[str]:
    return [sid
            for sid in todo
            if any(outcome.get(d) in ("failed", "skipped", "waiting") for d in by_id[sid].deps)]

