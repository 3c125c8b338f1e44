r"""Times the compiled training step: `python -m gan_jax.benchmark --config experiments/ns_gan.py`.

Builds the models, optimizers, state and step exactly as `train.train_and_evaluate`
does, compiles the step once, runs `--warmup` steps, then times `--steps` steps and
prints one JSON line. `--synthetic` feeds one device-resident random batch (the step
alone); without it the real input pipeline feeds every step, as in training.
`--input_only` times the input pipeline alone: the batches of `--steps` steps, read,
decoded, fitted and flipped as training reads them (data.workers worker processes).
`--flops_only` compiles the step and reports XLA's FLOPs per step without running it: what
a GPU-hour estimate needs, on a CPU, for steps too big to run there (experiments' headers).
`--profile_ops N` then profiles `--steps` more steps and adds the N slowest ops to the line
(`top_ops`: ms per step, shape, the JAX operation each came from), with a table on stderr:
where the step's time goes, on XLA:CPU (gan_jax/op_profile.py).
"""
import json
import sys
import time
from typing import Any

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from ml_collections import config_flags

from gan_jax import cli, growth, input_pipeline, models, op_profile, train_step, validation
from gan_jax.state import create_optimizers, init_state

FLAGS = flags.FLAGS
flags.DEFINE_integer('steps', 20, 'Timed training steps.', lower_bound=1)
flags.DEFINE_integer('warmup', 2, 'Untimed steps after compilation.', lower_bound=0)
flags.DEFINE_bool('synthetic', False,
                  'Feed one device-resident random batch instead of the input pipeline.')
flags.DEFINE_bool('input_only', False, 'Time the input pipeline alone, without a step.')
flags.DEFINE_bool('flops_only', False,
                  'Compile the step and report its FLOPs without running it (no timing).')
flags.DEFINE_integer('profile_ops', 0,
                     'After timing, profile --steps more steps and report the N slowest ops '
                     '(XLA:CPU; 0: no profile).', lower_bound=0)
cli.define_config_flag('An experiments/*.py file, e.g. experiments/ns_gan.py:cpu.')
flags.mark_flags_as_required(['config'])

# Dense bf16 tensor-core peak FLOP/s per device, by a substring of `device.device_kind`:
# MFU is quoted against it by convention, although the model computes in float32.
PEAK_FLOPS = {'H100': 989e12, 'H200': 989e12, 'A100': 312e12, 'L4': 121e12}


def _peak_flops(device: jax.Device) -> float | None:
  if device.platform != 'gpu':
    return None
  return next((peak for kind, peak in PEAK_FLOPS.items() if kind in device.device_kind), None)


def run_input_benchmark(config: ml_collections.ConfigDict, steps: int, warmup: int,
                        config_path: str | None = None) -> dict[str, Any]:
  """Times this host's input pipeline alone: the batches of `steps` generator steps (a
  growing model's at its last stage, as run_benchmark times its step)."""
  validation.validate(config, jax.device_count())
  stage = growth.stages(config, input_pipeline.data_shape(config)[0])[-1]
  iterator = iter(input_pipeline.create_dataset(config, jax.process_index(),
                                                jax.process_count(),
                                                start_step=growth.first_step(config, stage)))
  for _ in range(warmup + 1):  # the first batch waits for the workers to start
    next(iterator)
  start = time.perf_counter()
  for _ in range(steps):
    next(iterator)
  seconds_per_step = (time.perf_counter() - start) / steps
  images = growth.batch_size(config, stage) // jax.process_count() * config.n_critic
  return {
      'input_only': True,
      'data_shape': list(input_pipeline.data_shape(config)),
      'workers': config.data.workers,
      'ms_per_step': 1000 * seconds_per_step,
      'images_per_second': images / seconds_per_step,
      'config': config_path,
  }


def _step_flops(step: Any) -> float | None:
  """XLA's FLOP count of a compiled step (one device's program), if the backend gives one."""
  return (step.cost_analysis() or {}).get('flops')


def run_benchmark(config: ml_collections.ConfigDict, steps: int, warmup: int, synthetic: bool,
                  config_path: str | None = None, flops_only: bool = False,
                  profile_ops: int = 0) -> dict[str, Any]:
  """Compiles and times the training step of `config`; returns the results as a dict.

  `flops_per_step` is XLA's count for one device's program, so `mfu` compares it with one
  device's peak. `flops_only` returns after compiling: the step's FLOPs and compile time,
  no timing, and no state or batch is materialised beyond the initial state. `profile_ops`
  > 0 adds `top_ops`, the slowest ops of `steps` more steps (op_profile.profile_ops).
  """
  mesh = Mesh(jax.devices(), (train_step.AXIS,))
  validation.validate(config, mesh.size)
  data_shape = input_pipeline.data_shape(config)
  generator, discriminator = models.build(config, data_shape)
  g_tx, d_tx = create_optimizers(config)
  state = init_state(config, mesh, generator, discriminator, g_tx, d_tx, data_shape)
  data_sharding = NamedSharding(mesh, P(None, train_step.AXIS))
  # A growing model's step at its last stage, the data's resolution, with that stage's batch.
  stage = growth.stages(config, data_shape[0])[-1]
  batch_size = growth.batch_size(config, stage)
  rows = (config.n_critic, batch_size)
  batch = {'data': jax.ShapeDtypeStruct(rows + tuple(data_shape), jnp.float32,
                                        sharding=data_sharding),
           'label': jax.ShapeDtypeStruct(rows, jnp.int32, sharding=data_sharding)}
  if flops_only:
    next_batch = None
  elif synthetic:
    key = jax.random.PRNGKey(config.seed)
    real = jax.jit(lambda: {
        'data': jax.random.uniform(key, batch['data'].shape, minval=-1.0, maxval=1.0),
        'label': jax.random.randint(key, rows, 0, max(1, input_pipeline.num_classes(config)))},
                   out_shardings=data_sharding)()
    next_batch = lambda: real
  else:
    iterator = iter(input_pipeline.create_dataset(config, jax.process_index(),
                                                  jax.process_count(),
                                                  start_step=growth.first_step(config, stage)))
    next_batch = lambda: jax.tree.map(
        lambda rows: jax.make_array_from_process_local_data(data_sharding, rows), next(iterator))

  start = time.perf_counter()
  step = train_step.make_train_step(config, mesh, generator, discriminator, g_tx, d_tx,
                                    stage=stage).lower(state, batch).compile()
  compile_seconds = time.perf_counter() - start
  if flops_only:
    return {'device_kind': jax.devices()[0].device_kind, 'device_count': jax.device_count(),
            'global_batch': batch_size, 'n_critic': config.n_critic,
            'data_shape': list(data_shape), 'compile_seconds': compile_seconds,
            'flops_per_step': _step_flops(step), 'config': config_path}
  for _ in range(warmup):
    state, _ = step(state, next_batch())
  jax.block_until_ready(state)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = step(state, next_batch())
  jax.block_until_ready((state, metrics))
  seconds_per_step = (time.perf_counter() - start) / steps
  top_ops = None
  if profile_ops:
    def run_steps():
      nonlocal state
      for _ in range(steps):
        state, _ = step(state, next_batch())
        jax.block_until_ready(state)
    top_ops = op_profile.profile_ops(run_steps, step.as_text(), steps)[:profile_ops]

  device = jax.devices()[0]
  flops = _step_flops(step)
  peak = _peak_flops(device)
  memory = device.memory_stats() or {}  # None on CPU
  return {
      'device_kind': device.device_kind,
      'device_count': jax.device_count(),
      'process_count': jax.process_count(),
      'global_batch': batch_size,
      'n_critic': config.n_critic,
      'compile_seconds': compile_seconds,
      'ms_per_step': 1000 * seconds_per_step,
      # Real images the discriminator sees per second.
      'images_per_second': batch_size * config.n_critic / seconds_per_step,
      'peak_memory_bytes': memory.get('peak_bytes_in_use'),
      'mfu': flops / seconds_per_step / peak if flops and peak else None,
      'flops_per_step': flops,
      'synthetic': synthetic,
      'config': config_path,
      **({'top_ops': top_ops} if top_ops is not None else {}),
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  path = config_flags.get_config_filename(FLAGS['config'])
  if FLAGS.input_only:
    results = run_input_benchmark(FLAGS.config, FLAGS.steps, FLAGS.warmup, path)
  else:
    if FLAGS.profile_ops:
      op_profile.request_op_events()
    results = run_benchmark(FLAGS.config, FLAGS.steps, FLAGS.warmup, FLAGS.synthetic, path,
                            flops_only=FLAGS.flops_only, profile_ops=FLAGS.profile_ops)
    if 'top_ops' in results:
      print(op_profile.format_table(results['top_ops']), file=sys.stderr)
  print(json.dumps(results))


if __name__ == '__main__':
  cli.run(main)
