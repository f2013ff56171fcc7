"""The console a person sees: one progress bar per stage, a short summary, Ray's output in a log file.

Quiet (the default for `videosft <verb>`): for the verb's duration the process's stdout and stderr
*file descriptors* point at `<run dir>/logs/<verb>-<time>.log`, so everything Ray, Ray Data, Tune,
Train, DeepSpeed and the library print lands there, including the lines Ray streams from its
workers to the driver and the C++ core worker's own messages (which no Python logging switch
reaches). The console writes to the terminal through duplicates of the original descriptors.
Ray's own switches do the rest (videosft/ray_runtime.py: Ray Data's progress bars off, driver
logging at WARNING). `--verbose` leaves the descriptors alone: Ray's output as before, plus bars.

Progress comes from where a stage knows done/total (videosft/progress.py: the frame-cache loop,
the Train controller's reported steps, the evaluation loop's scored rows), polled from files, so
stages running in Tune trials show up too. On a terminal each stage is a tqdm bar (done/total,
rate, ETA); written to a file or pipe, each stage prints one line when it ends.

An error leaves the block before anything prints it: the descriptors are restored first, so
tracebacks and the failure paragraph (cli.py) reach the terminal in full, with the log's path.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from videosft import ray_runtime
from videosft.progress import PROGRESS_ENV, clear_progress, progress_dir, read_progress

POLL_S = 0.5


class StageBars:
    """Polls `<output_dir>/progress/` and keeps one display per stage (a tqdm bar on a terminal)."""

    def __init__(self, output_dir: str | os.PathLike[str], stream: TextIO, since: float) -> None:
        self.output_dir, self.stream, self.since = Path(output_dir), stream, since
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.bars: dict[str, Any] = {}
        self.done: dict[str, int] = {}
        self.finished: dict[str, dict[str, Any]] = {}
        self.started: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="videosft-progress", daemon=True)

    def start(self) -> StageBars:
        clear_progress(self.output_dir)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def poll(self) -> None:
        for rec in read_progress(self.output_dir):
            ended = self.finished.get(rec["stage"])
            if ended is not None and rec["t"] > ended["t"] and rec["done"] < (rec["total"] or 0):
                del self.finished[rec["stage"]]  # the same stage again (a study's next seed): a new bar
                self.done.pop(rec["stage"], None)
                self.started.pop(rec["stage"], None)
            if rec["t"] >= self.since and rec["stage"] not in self.finished:
                self._update(rec)

    def _update(self, rec: dict[str, Any]) -> None:
        from tqdm import tqdm

        stage, done, total = rec["stage"], rec["done"], rec["total"]
        self.started.setdefault(stage, time.time())
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(
                total=total,
                desc=stage,
                unit=rec["unit"],
                file=self.stream,
                disable=not self.tty,
                ncols=self._columns(),
                leave=True,
                position=len(self.bars),
                mininterval=POLL_S,
            )
        if total is not None and bar.total != total:
            bar.total = total
            bar.refresh()
        if done != self.done.get(stage, 0):  # tracked here: a disabled bar (not a terminal) counts nothing
            bar.update(done - self.done.get(stage, 0))
        self.done[stage] = done
        if total is not None and done >= total:
            self._finish(stage, rec)

    def _columns(self) -> int:
        """The terminal's width (fd 1 may be the log file now); 100 when it reports none (a bare pty)."""
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 100
        except (AttributeError, OSError, ValueError):
            return 100

    def _finish(self, stage: str, rec: dict[str, Any]) -> None:
        bar = self.bars.pop(stage)
        bar.close()
        seconds = max(time.time() - self.started[stage], 1e-6)
        self.finished[stage] = {**rec, "seconds": seconds}
        if not self.tty:  # a file or a pipe: one line per stage, when it ends
            print(
                f"  {stage}: {rec['done']}/{rec['total']} {rec['unit']} in {seconds:.0f} s "
                f"({rec['done'] / seconds:.2f} {rec['unit']}/s)",
                file=self.stream,
                flush=True,
            )

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.poll()
        for bar in list(self.bars.values()):  # stages that did not end (an error): leave them as they are
            bar.close()
        self.bars.clear()


class Console:
    """Owns a verb's console: where output goes, the stage bars, the summary."""

    def __init__(self, verb: str, run_dir: str | os.PathLike[str] | None, *, verbose: bool = False) -> None:
        self.verb, self.verbose = verb, verbose
        self.run_dir = None if run_dir is None else Path(run_dir).expanduser().resolve()
        self.log_path: Path | None = None
        self.t0 = time.time()
        self._saved: tuple[int, int] | None = None
        self._bars: list[StageBars] = []
        self.out: TextIO = sys.stdout
        self.err: TextIO = sys.stderr

    # ------------------------------------------------------------------ output redirection
    def _redirectable(self) -> bool:
        """Only a real process console: under pytest's capture (or embedded) sys.stdout is no fd 1."""
        try:
            return sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2
        except (AttributeError, OSError, ValueError):
            return False

    def __enter__(self) -> Console:
        quiet = not self.verbose and self.run_dir is not None
        ray_runtime.set_quiet(quiet)
        if not quiet or not self._redirectable():
            return self
        assert self.run_dir is not None
        self.log_path = self.run_dir / "logs" / f"{self.verb}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        self.out = open(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace", closefd=True)
        self.err = open(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace", closefd=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        print(
            f"videosft {self.verb}: Ray, Tune and Train output -> {self.log_path} (--verbose shows it here)",
            file=self.err,
            flush=True,
        )
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        for bars in self._bars:
            bars.stop()
        try:
            ray_runtime.shutdown_if_started()  # before the restore: Ray's exit messages stay in the log too
        finally:
            self._restore()
        if exc_type is not None and self.log_path is not None:
            print(
                f"videosft {self.verb}: failed; Ray, Tune and Train output in {self.log_path}",
                file=sys.stderr,
                flush=True,
            )
        ray_runtime.set_quiet(False)
        os.environ.pop(PROGRESS_ENV, None)

    def _restore(self) -> None:
        if self._saved is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        self._saved = None
        for stream in (self.out, self.err):
            stream.close()
        self.out, self.err = sys.stdout, sys.stderr

    # ------------------------------------------------------------------ what the person sees
    def watch(self, output_dir: str | os.PathLike[str]) -> None:
        """Show the stages that report under `output_dir` until the verb ends; stages whose own
        output_dir is elsewhere (a cached base, a study's sweeps) report here through PROGRESS_ENV."""
        os.environ[PROGRESS_ENV] = str(progress_dir(Path(output_dir).expanduser().resolve()))
        self._bars.append(StageBars(output_dir, self.err, since=self.t0).start())

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def summary(self, lines: list[str]) -> None:
        """The closing lines: what each stage did, the wall time, where the log is."""
        for bars in self._bars:
            bars.stop()
        stages = sum(len(bars.finished) for bars in self._bars)
        head = f"videosft {self.verb}: done in {time.time() - self.t0:.0f} s" + (
            f" ({stages} stages)" if stages else ""
        )
        for line in [head, *lines]:
            self.print(line)
