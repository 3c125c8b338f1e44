"""Runs a sweep on this machine: one `gan_jax.main` process per run, at most N at once.

Each run trains in ROOT/SWEEP/<run>/ (its gan_jax workdir) and appends its output to
launch.log there; launch.json records every attempt. A rerun skips the finished runs and
starts the others again, which resume from their checkpoints (gan_jax resumes a workdir by
itself). Ctrl-C or SIGTERM sends SIGTERM to the running children, which save a checkpoint and
exit, and waits for them; a second Ctrl-C kills them (the last checkpoint stays).
"""
import collections
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Mapping, TextIO

import ml_collections

from launch import spec

POLL_SECONDS = 0.5
REDRAW_SECONDS = 1.0


def last_step(workdir: str) -> int | None:
  """The step of the last complete line of WORKDIR/metrics.jsonl (None before the first)."""
  path = os.path.join(workdir, 'metrics.jsonl')
  try:
    with open(path, 'rb') as f:
      start = max(0, os.path.getsize(path) - 8192)  # a line is far shorter
      f.seek(start)
      lines = f.read().split(b'\n')
  except FileNotFoundError:
    return None
  # The last piece lacks its newline (being written, or empty); with a seek, so may the first.
  for line in reversed(lines[1 if start else 0:-1]):
    try:
      return json.loads(line)['step']
    except (json.JSONDecodeError, KeyError):  # a line a killed run left half-written
      continue
  return None


def is_finished(record: Mapping[str, Any] | None, step: int | None,
                config: ml_collections.ConfigDict) -> bool:
  """Whether a run's training ended, so a rerun would train no more; `step` is its last logged.

  gan_jax.main exits 0 both when training ends and when a signal stopped it (after saving),
  so the exit status alone does not say. A run is finished when its last attempt exited 0
  without launch having stopped it and `spec.reached_end` agrees. A run stopped by some other
  signal, or one whose num_steps grew since, is then resumed, which is always safe.
  """
  if not record or not record['attempts']:
    return False
  attempt = record['attempts'][-1]
  return attempt['returncode'] == 0 and not attempt['stopped'] and spec.reached_end(step, config)


def format_seconds(seconds: float) -> str:
  seconds = int(seconds)
  h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
  return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s' if m else f'{s}s'


class LocalRun:
  """One run of the sweep: its folder, its record and, while it trains, its process."""

  def __init__(self, sweep: spec.Sweep, run: spec.Run, root: str,
               config: ml_collections.ConfigDict):
    self.name = run.name
    self.dir = os.path.join(root, sweep.name, run.name)
    self.config = config
    self.command = [sys.executable] + spec.train_args(sweep.experiment(run), run.overrides,
                                                      self.dir)
    self.record = spec.new_record(sweep, run, self.dir, self.command,
                                  previous=spec.read_record(self.dir))
    self.state = 'done' if is_finished(self.record, last_step(self.dir), config) else 'queued'
    self.process = self.log = None
    self.started, self.started_at = 0.0, ''
    self.stopped = False

  def start(self) -> None:
    os.makedirs(self.dir, exist_ok=True)
    self.log = open(os.path.join(self.dir, spec.LOG_FILE), 'a')
    self.log.write(f'=== {datetime.datetime.now().isoformat(timespec="seconds")} attempt '
                   f'{len(self.record["attempts"]) + 1}: {" ".join(self.command)}\n')
    self.log.flush()
    self.started = time.monotonic()
    self.started_at = datetime.datetime.now().isoformat(timespec='seconds')
    self.process = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
    self.state = 'running'

  def signal(self, signum: int) -> None:
    if self.process and self.process.poll() is None:
      self.stopped = True
      self.process.send_signal(signum)

  def poll(self) -> bool:
    """Records the attempt once the process has exited; returns whether it has."""
    returncode = self.process.poll()
    if returncode is None:
      return False
    self.log.close()
    self.record['attempts'].append({
        'started': self.started_at,
        'seconds': round(time.monotonic() - self.started, 1),
        'returncode': returncode, 'stopped': self.stopped})
    spec.write_record(self.dir, self.record)
    self.process = None
    finished = is_finished(self.record, last_step(self.dir), self.config)
    self.state = ('done' if finished else 'stopped' if self.stopped else
                  'failed' if returncode else 'unfinished')
    return True

  def status(self) -> str:
    """One line: state, step reached, time taken, and for a failure where to read why."""
    step = last_step(self.dir)
    seconds = sum(attempt['seconds'] for attempt in self.record['attempts'])
    if self.process:
      seconds += time.monotonic() - self.started
    parts = [f'{self.state:<10}', f'step {step if step is not None else "-"}/'
             f'{self.config.num_steps}']
    if seconds:
      parts.append(format_seconds(seconds))
    if self.state == 'failed':
      parts.append(f'exit {self.record["attempts"][-1]["returncode"]}, see '
                   f'{os.path.join(self.dir, spec.LOG_FILE)}')
    return '  '.join(parts)


class StatusBoard:
  """Prints one status line per run: redrawn in place on a terminal, else on each change."""

  def __init__(self, runs: list[LocalRun], out: TextIO):
    self._runs = runs
    self._out = out
    self._tty = out.isatty()
    self._width = max(len(run.name) for run in runs)
    self._drawn = 0
    self._last_states = {}

  def _line(self, run: LocalRun) -> str:
    return f'  {run.name:<{self._width}}  {run.status()}'

  def _block(self) -> list[str]:
    """The lines to draw, cut to the terminal: a wrapped line would break the redraw."""
    columns, rows = shutil.get_terminal_size()
    runs = self._runs
    lines = []
    if len(runs) > rows - 2:  # too many to show: the counts, then the runs that are not queued
      counts = collections.Counter(run.state for run in runs)
      lines.append('  ' + ', '.join(f'{n} {state}' for state, n in sorted(counts.items())))
      runs = [run for run in runs if run.state not in ('queued', 'done')][:rows - 3]
    return [line[:columns - 1] for line in lines + [self._line(run) for run in runs]]

  def update(self) -> None:
    if self._tty:
      if self._drawn:
        self._out.write(f'\x1b[{self._drawn}F\x1b[J')  # back to the block's first line
      block = self._block()
      self._out.write(''.join(line + '\n' for line in block))
      self._drawn = len(block)
    else:  # a log: a line per change of state
      for run in self._runs:
        if self._last_states.get(run.name) != run.state:
          self._out.write(self._line(run) + '\n')
          self._last_states[run.name] = run.state
    self._out.flush()


def run_sweep(sweep: spec.Sweep, root: str, parallel: int,
              configs: Mapping[str, ml_collections.ConfigDict], out: TextIO = sys.stdout) -> int:
  """Runs the sweep's unfinished runs, `parallel` at once; returns the exit status. Call it
  holding `spec.locked(ROOT/SWEEP)`.

  0 when every run is done, 1 when one failed, 128 + the signal's number when stopped.
  """
  runs = [LocalRun(sweep, run, root, configs[run.name]) for run in sweep.runs]
  queue = collections.deque(run for run in runs if run.state != 'done')
  done_before = len(runs) - len(queue)
  out.write(f'Sweep {sweep.name}: {len(runs)} runs in {os.path.join(root, sweep.name)}, '
            f'{parallel} at once' + (f'; {done_before} done before, skipped' if done_before
                                     else '') + '.\n')
  signals = []
  previous = {signum: signal.signal(signum, lambda signum, frame: signals.append(signum))
              for signum in (signal.SIGINT, signal.SIGTERM)}
  board = StatusBoard(runs, out)
  running = []
  handled = 0
  next_draw = 0.0
  try:
    while queue or running:
      if len(signals) > handled:  # the first signal stops the children, a second kills them
        for run in running:
          run.signal(signal.SIGTERM if handled == 0 else signal.SIGKILL)
        handled = len(signals)
        queue.clear()
      while queue and len(running) < parallel:
        running.append(queue.popleft())
        running[-1].start()
      running = [run for run in running if not run.poll()]
      if time.monotonic() >= next_draw or not running:
        board.update()
        next_draw = time.monotonic() + REDRAW_SECONDS
      time.sleep(POLL_SECONDS if running else 0)
  except BaseException:  # a bug here must not leave the children training unwatched
    for run in running:
      run.signal(signal.SIGTERM)
    raise
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)
  board.update()
  failed = [run.name for run in runs if run.state == 'failed']
  if signals:
    out.write(f'Stopped by {signal.Signals(signals[0]).name}: the running runs saved a '
              'checkpoint. Rerun the same command to resume.\n')
    return 128 + signals[0]
  if failed:
    out.write(f'{len(failed)} of {len(runs)} runs failed; their logs say why. Rerun the same '
              'command to retry them (finished runs are skipped).\n')
    return 1
  out.write(f'All {len(runs)} runs done. Summary: python -m launch.summary '
            f'{os.path.join(root, sweep.name)}\n')
  return 0
