"""Where a compiled step spends its time, op by op: `gan_jax.benchmark --profile_ops N`.

The JAX profiler's trace names XLA:CPU's ops only when XLA records them
(`--xla_cpu_enable_xprof_traceme=true`, which `request_op_events` adds before the backend
starts). Events whose names are the compiled program's instructions are summed per op over
the profiled steps; each op comes with its shape and the JAX operation it came from (its
metadata's op_name, e.g. `jvp(DCGANDiscriminator)/DownConv_1/concatenate`), so a slow fusion
can be traced to a layer. Ops that run concurrently (XLA:CPU runs independent ops on
different cores) each count their own time.
"""
import collections
import glob
import os
import re
import tempfile
from typing import Any, Callable

import jax

OP_EVENTS_FLAG = '--xla_cpu_enable_xprof_traceme=true'
# `%name = shape opcode(...)`, a line of the compiled program's text, and its op_name.
_INSTRUCTION = re.compile(r'^\s*(?:ROOT )?%([\w.\-]+) = (\([^()]*\)|\S+) ([\w\-]+)\(')
_SOURCE = re.compile(r'op_name="([^"]*)"')


def request_op_events() -> None:
  """Has XLA:CPU name every op it runs in the profiler's trace. Must run before JAX starts
  its backends (XLA reads XLA_FLAGS once)."""
  flags = os.environ.get('XLA_FLAGS', '')
  if OP_EVENTS_FLAG not in flags.split():
    os.environ['XLA_FLAGS'] = f'{flags} {OP_EVENTS_FLAG}'.strip()


def instructions(program_text: str) -> dict[str, dict[str, str]]:
  """A compiled program's instructions by name: shape, opcode and source op_name."""
  found = {}
  for line in program_text.splitlines():
    if instruction := _INSTRUCTION.match(line):
      name, shape, opcode = instruction.groups()
      source = _SOURCE.search(line)
      found[name] = {'shape': shape, 'opcode': opcode, 'source': source[1] if source else ''}
  return found


def profile_ops(run: Callable[[], Any], program_text: str, repeats: int) -> list[dict[str, Any]]:
  """Runs `run` (`repeats` executions of the program, blocking until done) under the
  profiler; returns every op of the program that the trace timed, slowest first, with its
  milliseconds per execution, calls per execution, shape, opcode and source."""
  ops = instructions(program_text)
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    try:
      run()
    finally:
      jax.profiler.stop_trace()
    traces = glob.glob(os.path.join(trace_dir, '**', '*.xplane.pb'), recursive=True)
    data = jax.profiler.ProfileData.from_file(traces[0])
  nanoseconds, calls = collections.Counter(), collections.Counter()
  for plane in data.planes:
    for line in plane.lines:
      for event in line.events:
        if event.name in ops:
          nanoseconds[event.name] += event.duration_ns
          calls[event.name] += 1
  return [{'op': name, 'ms_per_step': total / 1e6 / repeats, 'calls_per_step': calls[name] / repeats,
           **ops[name]} for name, total in nanoseconds.most_common()]


def format_table(ops: list[dict[str, Any]]) -> str:
  """The ops as a plain-text table, one per line."""
  return '\n'.join(f'{op["ms_per_step"]:9.2f} ms  {op["op"]:32.32s} {op["shape"]:30.30s} '
                   f'{op["source"]}' for op in ops)
