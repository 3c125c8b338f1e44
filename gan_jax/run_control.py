"""When the training loop stops or saves besides its step counts: signals and wall-clock time.

`StopOnSignal` turns preemption (SIGTERM) and Ctrl-C (SIGINT) into a request to save and
stop; `TrainClock` counts the seconds of training across resumes, for a wall-clock budget
(config.train_minutes) and checkpoints every so many minutes (config.checkpoint_every_minutes);
`agreement` makes every process of a multi-process run act on the same signal and time;
`standing` says how far a run is and which limit, num_steps or the budget, ends it.
"""
import math
import signal
import threading
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax import writers


class StopOnSignal:
  """Turns SIGTERM and SIGINT into a request to save and stop, noting how far the run was.

  The loop sets `completed_step` to the last step it knows the device finished; the
  handler keeps its value at the signal, so the stop can say how many steps ran after it.
  """

  def __init__(self):
    self.requested = None  # the signal's name, once one came
    self.completed_step = 0
    self.completed_at_signal = None
    self._previous = {}
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
      for signum in (signal.SIGTERM, signal.SIGINT):
        self._previous[signum] = signal.signal(signum, self._handle)

  def _handle(self, signum, frame):
    del frame
    if self.requested is None:
      self.completed_at_signal = self.completed_step
    self.requested = signal.Signals(signum).name

  def restore(self):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  def stopped_message(self, agreed_signal: str, step: int) -> str:
    """The last word of a run that `agreed_signal` stopped after `step`, on this process."""
    if agreed_signal == self.requested:
      return (f'Stopped by {agreed_signal} after step {step}, {step - self.completed_at_signal} '
              'steps after the signal, and saved a checkpoint; rerun the same command to resume.')
    return (f'Stopped by {agreed_signal} to another process after step {step}, and saved a '
            'checkpoint; rerun the same command to resume.')


class TrainClock:
  """Seconds of training, this process's (start-up and compilation included) plus earlier runs'.

  Args:
    config: reads train_minutes and checkpoint_every_minutes (0: off).
    trained_before: the seconds the resumed checkpoint had trained (0 for a new run).
    time_fn: the clock, for tests.
  """

  def __init__(self, config: ml_collections.ConfigDict, trained_before: float = 0.0,
               time_fn: Callable[[], float] = time.monotonic):
    self._time_fn = time_fn
    self._trained_before = trained_before
    self._start = time_fn() - trained_before
    self._budget = 60.0 * config.train_minutes
    self._period = 60.0 * config.checkpoint_every_minutes
    self._next_checkpoint = None
    if self._period:
      self._next_checkpoint = (trained_before // self._period + 1) * self._period

  def seconds(self) -> float:
    return self._time_fn() - self._start

  def seconds_left(self) -> float:
    """Seconds until the budget is spent (infinite without one)."""
    return max(0.0, self._budget - self.seconds()) if self._budget else math.inf

  def out_of_time(self, seconds: float | None = None) -> bool:
    """Whether the budget is spent (never without one) by `seconds`, default `seconds()`."""
    seconds = self.seconds() if seconds is None else seconds
    return bool(self._budget) and seconds >= self._budget

  def spent_before(self) -> bool:
    """Whether the runs before this one spent the budget: a rerun then trains no more."""
    return bool(self._budget) and self._trained_before >= self._budget

  def checkpoint_due(self, seconds: float | None = None) -> bool:
    """Whether a timed checkpoint is due by `seconds`, default `seconds()`; each period's
    checkpoint is due once."""
    seconds = self.seconds() if seconds is None else seconds
    if self._next_checkpoint is None or seconds < self._next_checkpoint:
      return False
    while self._next_checkpoint <= seconds:
      self._next_checkpoint += self._period
    return True


def budget_name(minutes: float) -> str:
  """'the 15-minute budget (config.train_minutes)' for 15 minutes; '' for none (0)."""
  return f'the {minutes:g}-minute budget (config.train_minutes)' if minutes else ''


def budget_ended(config: ml_collections.ConfigDict, step: int, train_seconds: float) -> bool:
  """Whether the budget, not num_steps, ended (or will end at once) a run of `config` that
  trained `train_seconds` in all to `step`."""
  return (step < config.num_steps and bool(config.train_minutes)
          and train_seconds >= 60.0 * config.train_minutes)


def standing(config: ml_collections.ConfigDict, step: int, train_seconds: float) -> str:
  """Where a run of `config` stands at `step` after `train_seconds` of training in all, and
  which limit ends it, e.g. 'step 42745 of 100000, where the 15-minute budget
  (config.train_minutes) ended the run'. A checkpoint's RUN_META holds the seconds."""
  where = f'step {step} of {config.num_steps}'
  budget = budget_name(config.train_minutes)
  if step >= config.num_steps:
    return f'{where}, the end of config.num_steps'
  if budget_ended(config, step, train_seconds):
    return f'{where}, where {budget} ended the run'
  if budget:
    return (f'{where} after {writers.format_duration(train_seconds)} of training; {budget} or '
            'config.num_steps, whichever comes first, ends the run')
  return f'{where} (config.num_steps)'


Agree = Callable[[jax.Array, str | None, float], tuple[str | None, float]]


class _Vote:
  """`agreement` across processes: every so many calls, the largest signal and seconds.

  A vote is a tiny jitted max over one row [signal, seconds] per device. It is read at the
  call after the one that dispatched it, when the loop has waited for the step before, so
  the host never waits for the device's current step; only the first call waits for its vote.
  Between votes, the last vote's answer holds.
  """

  def __init__(self, mesh: Mesh, seconds_between_votes: float):
    self._rows = NamedSharding(mesh, P(mesh.axis_names))
    self._local_rows = len(mesh.local_devices)
    # `step` is kept although unused: reading it orders the vote after the step that wrote
    # it and before the next one, which donates it. Two programs with collectives running
    # at once could pair their collectives up differently on different processes.
    self._largest = jax.jit(lambda rows, step: jnp.max(rows, axis=0), keep_unused=True,
                            out_shardings=NamedSharding(mesh, P()))
    self._seconds_between_votes = seconds_between_votes
    self._calls = 0  # the same count on every process: each calls once a step
    self._next_vote = 0
    self._pending = None  # (call, vote) dispatched and not read yet
    self._last_read = None  # (call, agreed seconds) of the last vote read
    self._agreed = (None, 0.0)

  def _read(self, call: int, vote: jax.Array) -> None:
    signum, seconds = (float(value) for value in np.asarray(vote))
    self._agreed = (signal.Signals(int(signum)).name if signum else None), seconds
    # The next vote about `seconds_between_votes` later, at the pace of the calls since the
    # last one. Only agreed numbers go in, so every process picks the same call.
    calls = 1
    if self._last_read is not None:
      last_call, last_seconds = self._last_read
      calls_per_second = (call - last_call) / max(seconds - last_seconds, 1e-6)
      calls = max(1, round(self._seconds_between_votes * calls_per_second))
    self._next_vote, self._last_read, self._pending = call + calls, (call, seconds), None

  def __call__(self, step: jax.Array, signal_name: str | None,
               seconds: float) -> tuple[str | None, float]:
    call, self._calls = self._calls, self._calls + 1
    if self._pending is not None:
      self._read(*self._pending)
    if call == self._next_vote:
      signum = signal.Signals[signal_name].value if signal_name else 0
      rows = np.tile(np.array([signum, seconds], np.float32), (self._local_rows, 1))
      self._pending = call, self._largest(
          jax.make_array_from_process_local_data(self._rows, rows), step)
      if self._last_read is None:  # nothing agreed yet: wait for this first vote
        self._read(*self._pending)
    return self._agreed


def agreement(mesh: Mesh, seconds_between_votes: float = 1.0) -> Agree:
  """Returns `agree(step, signal, seconds) -> (signal, seconds)`, the same on every process.

  All processes must stop and save at the same step: a checkpoint is written by all of them
  together, and a process that stops alone leaves the others waiting in the next step's
  collectives. But a signal reaches one process (one preempted VM) and each has its own clock.
  So each offers what it has, the signal it got (None if none) and its seconds of training
  (`TrainClock.seconds`), and every process gets the largest of each: one process's signal
  stops all, and the budget and timed checkpoints follow the clock that counted the most.

  With several processes they vote about every `seconds_between_votes` (every step if steps
  are slower), and the answer comes one step after the vote: a vote costs a collective, as
  much as a small step's (ms with CPU collectives), and a second is nothing next to a
  preemption notice (30 s on Compute Engine) or a budget of minutes. One process agrees
  with itself at no cost: its own values, at once.

  Args:
    mesh: the training mesh, over every process's devices.
    seconds_between_votes: how often processes vote, in seconds of training.
  Returns:
    `agree`, to call once every step with the state's step counter (a replicated array),
    this process's signal name and seconds.
  """
  if jax.process_count() == 1:
    return lambda step, signal_name, seconds: (signal_name, seconds)
  return _Vote(mesh, seconds_between_votes)
