"""When the training loop stops or saves besides its step counts: signals and wall-clock time.

`StopOnSignal` turns preemption (SIGTERM) and Ctrl-C (SIGINT) into a request to save and
stop; `TrainClock` counts the seconds of training across resumes, for a wall-clock budget
(config.train_minutes) and checkpoints every so many minutes (config.checkpoint_every_minutes).
"""
import math
import signal
import threading
import time
from typing import Callable

import ml_collections


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

  def out_of_time(self) -> bool:
    """Whether the budget is spent (never without one)."""
    return bool(self._budget) and self.seconds() >= self._budget

  def spent_before(self) -> bool:
    """Whether the runs before this one spent the budget: a rerun then trains no more."""
    return bool(self._budget) and self._trained_before >= self._budget

  def checkpoint_due(self) -> bool:
    """Whether a timed checkpoint is due; each period's checkpoint is due once."""
    if self._next_checkpoint is None or self.seconds() < self._next_checkpoint:
      return False
    while self._next_checkpoint <= self.seconds():
      self._next_checkpoint += self._period
    return True
