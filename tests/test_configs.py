"""Config validation: every malformed config or --config override ends in one UserError."""
import copy
import json
import os
import random
import subprocess
import sys

import ml_collections
import pytest

from gan_jax import configs, validation
from gan_jax.errors import UserError
from test_train import EXPERIMENTS, load_experiment

# One xdist worker runs this module's tests: it builds the module's `override_messages` once.
pytestmark = pytest.mark.xdist_group(__name__)

ROOT = os.path.join(os.path.dirname(__file__), '..')
DEFAULT = configs.default().to_dict()  # plain dicts: ConfigDict(tree) takes values of any type


def _paths(tree, prefix=()):
  """Yields the key path of every field of `tree`, groups included."""
  for key, value in tree.items():
    yield prefix + (key,)
    if isinstance(value, dict):
      yield from _paths(value, prefix + (key,))


def _get(tree, path):
  for key in path:
    tree = tree[key]
  return tree


PATHS = list(_paths(DEFAULT))
LEAVES = [path for path in PATHS if not isinstance(_get(DEFAULT, path), dict)]


def _field(path):
  return 'config.' + '.'.join(path)


# Values of the wrong type for a field, by the type of its default.
WRONG = {
    int: ('64', 2.5, True, None, [64], float('nan')),
    float: ('2e-4', True, None, [0.1], float('nan'), float('inf')),
    str: (3, None, True, ['dcgan']),
    bool: (1, 'True', None, 0.0),
    dict: ('mlp', None, 3, [1, 2], {}),  # {}: a group without its fields
    tuple: ('cats', None, 3, [1.5], [None]),
}


def _set(path, value):
  def mutate(tree):
    _get(tree, path[:-1])[path[-1]] = value
    return [_field(path)]
  return mutate


def _delete(path):
  def mutate(tree):
    del _get(tree, path[:-1])[path[-1]]
    return [_field(path) + ' is missing']
  return mutate


def _rename(path):
  """Misspells the field's name: the error names the typo and suggests the field."""
  def mutate(tree):
    parent, key = _get(tree, path[:-1]), path[-1]
    parent[key + key[-1]] = parent.pop(key)
    return [f"Unknown field '{_field(path[:-1] + (key + key[-1],))}'. "
            f"Did you mean '{_field(path)}'?"]
  return mutate


def _case(case_id, *mutations, fragments=None):
  """A pytest case: default() with `mutations` applied, and what the error must mention."""
  tree = copy.deepcopy(DEFAULT)
  mentioned = [fragment for mutate in mutations for fragment in mutate(tree)]
  return pytest.param(tree, fragments or mentioned, id=case_id)


def _random_cases(count, seed=0):
  """Cases of 1-3 simultaneous mutations; the error must mention at least one of them."""
  rng = random.Random(seed)
  cases = []
  for i in range(count):
    mutations = []
    for path in rng.sample(LEAVES, rng.randint(1, 3)):  # leaves: no mutation undoes another
      kind = rng.choice(('set', 'delete', 'rename'))
      if kind == 'set':
        mutations.append(_set(path, rng.choice(WRONG[type(_get(DEFAULT, path))])))
      else:
        mutations.append(_delete(path) if kind == 'delete' else _rename(path))
    cases.append(_case(f'random{i}', *mutations))
  return cases


MALFORMED = [
    *(_case(f'{_field(path)}={value!r}', _set(path, value))
      for path in PATHS for value in WRONG[type(_get(DEFAULT, path))]),
    *(_case(f'del {_field(path)}', _delete(path)) for path in PATHS),
    *(_case(f'typo {_field(path)}', _rename(path)) for path in PATHS),
    _case('unknown top-level field', _set(('generator',), 'mlp'),
          fragments=["Unknown field 'config.generator'. config has: allow_config_change, "]),
    _case('unknown nested field', _set(('model', 'depth'), 4),
          fragments=["Unknown field 'config.model.depth'. config.model has: "
                     'attention_resolution, compute_dtype, ']),
    # Named in full, and the field meant wherever it is.
    _case('misspelled nested field', _set(('d_optimizer', 'learning_rte'), 1.0),
          fragments=["Unknown field 'config.d_optimizer.learning_rte'. Did you mean "
                     "'config.d_optimizer.learning_rate'?"]),
    _case('nested field at the top', _set(('learning_rte',), 1.0),
          fragments=["Unknown field 'config.learning_rte'. Did you mean "
                     "'config.d_optimizer.learning_rate' or 'config.g_optimizer.learning_rate'?"]),
    # Values of the right type out of range.
    *(_case(f'{field}={value!r}', _set(tuple(field.split('.')), value), fragments=[
        f'config.{field} must be {requirement}']) for field, value, requirement in [
            ('batch_size', 0, 'positive'), ('batch_size', -8, 'positive'),
            ('num_steps', 0, 'positive'), ('n_critic', 0, 'positive'),
            ('n_critic', -1, 'positive'), ('log_every', 0, 'positive'),
            ('sample_every', -1, 'positive'), ('checkpoint_every', 0, 'positive'),
            ('keep_checkpoints', 0, 'positive'), ('num_grid_samples', 0, 'positive'),
            ('model.latent_dim', 0, 'positive'), ('model.width', -64, 'positive'),
            ('g_optimizer.learning_rate', 0.0, 'positive'),
            ('g_optimizer.learning_rate', -1e-4, 'positive'),
            ('d_optimizer.learning_rate', -1, 'positive'),
            ('gradient_penalty', -10.0, '>= 0'), ('model.mlp_layers', -1, '>= 0'),
            ('data.num_threads', -1, '>= 0'), ('data.prefetch', -2, '>= 0'),
            ('seed', -1, 'in [0, 2**32)'), ('seed', 2**32, 'in [0, 2**32)'),
            ('g_optimizer.b1', 1.0, 'in [0, 1)'), ('g_optimizer.b2', -0.5, 'in [0, 1)'),
            ('d_optimizer.b1', 1, 'in [0, 1)'), ('d_optimizer.b2', 1.5, 'in [0, 1)')]),
    # Unknown names: the closest valid one, or the list of all.
    *(_case(f'{field}={value!r}', _set(tuple(field.split('.')), value),
            fragments=[f'Unknown config.{field} {value!r}. {expected}'])
      for field, value, expected in [
          ('loss', 'nonsaturating', "Did you mean 'non_saturating'?"),
          ('loss', 'wgan', 'Valid: hinge, least_squares, minimax, non_saturating, wasserstein.'),
          ('model.name', 'dcgann', "Did you mean 'dcgan'?"),
          ('model.name', 'vae', 'Valid: biggan, dcgan, mlp, progan, resnet, stylegan2.'),
          ('model.latent_prior', 'gausian', "Did you mean 'gaussian'?"),
          ('model.latent_prior', 'normal', 'Valid: gaussian, uniform.')]),
    _case("dataset='fashion-mnist'", _set(('dataset',), 'fashion-mnist'),
          fragments=["Unknown data set 'fashion-mnist'. Did you mean 'fashion_mnist'"]),
    _case("dataset='cifar1000'", _set(('dataset',), 'cifar1000'),
          fragments=["Unknown data set 'cifar1000'. Did you mean 'cifar100' or 'cifar10'"]),
    _case('dcgan on 2-D points', _set(('dataset',), 'ring8'),
          fragments=['model dcgan makes images']),
    _case('batch over 4 devices', _set(('batch_size',), 6), fragments=['multiple of 4']),
    *_random_cases(40),
]


@pytest.mark.parametrize('tree, fragments', MALFORMED)
def test_malformed_config_is_a_user_error_naming_the_field(tree, fragments):
  with pytest.raises(UserError) as error:
    validation.validate(ml_collections.ConfigDict(tree), num_devices=4)
  assert any(fragment in str(error.value) for fragment in fragments), (str(error.value), fragments)


@pytest.mark.parametrize('path, arg', [
    pytest.param(path, arg, id=f'{os.path.basename(path)}:{arg}')
    for path in EXPERIMENTS for arg in (None, 'smoke', 'cpu')
    # Toys run on CPUs as they are; dcgan64 is the benchmark's copy of the PyTorch reference.
    if not (arg == 'cpu' and os.path.basename(path).startswith(('toy_', 'dcgan64')))
])
def test_experiment_configs_are_valid(path, arg):
  validation.validate(load_experiment(path, arg), num_devices=1)


# Each override -> what its message must contain.
OVERRIDES = {
    '--config.batch_size=abc': 'batch_size',
    '--config.batch_size=2.5': 'batch_size',
    '--config.batch_size=None': 'batch_size',
    '--config.batch_size=': 'batch_size',
    '--config.batch_size=0': 'config.batch_size must be positive',
    '--config.batch_size=6': 'multiple of 4',
    '--config.num_steps=1e3': 'num_steps',
    '--config.n_critic=0': 'config.n_critic must be positive',
    '--config.n_critic=-2': 'config.n_critic must be positive',
    '--config.ncritic=3': "Unknown field 'config.ncritic'. Did you mean 'config.n_critic'?",
    '--config.model.widht=3': "Unknown field 'config.model.widht'. Did you mean "
                              "'config.model.width'?",
    '--config.g_optimizer.lr=1e-4': "Unknown field 'config.g_optimizer.lr'. config.g_optimizer "
                                    'has: b1, b2, learning_rate.',
    '--config.d_optimizer.learning_rte=1': "Unknown field 'config.d_optimizer.learning_rte'. "
                                           "Did you mean 'config.d_optimizer.learning_rate'?",
    '--config.learning_rate=1e-4': "Unknown field 'config.learning_rate'. Did you mean "
                                   "'config.d_optimizer.learning_rate' or "
                                   "'config.g_optimizer.learning_rate'?",
    '--config.g_optimizer.learning_rate=fast': 'learning_rate',
    '--config.d_optimizer.learning_rate=-1e-4': 'config.d_optimizer.learning_rate must be positive',
    '--config.g_optimizer.learning_rate=inf': 'config.g_optimizer.learning_rate must be a finite',
    '--config.g_optimizer.b1=1': 'config.g_optimizer.b1 must be in [0, 1)',
    '--config.gradient_penalty=-10': 'config.gradient_penalty must be >= 0',
    '--config.gradient_penalty=nan': 'config.gradient_penalty must be a finite',
    '--config.loss=nonsaturating': "Did you mean 'non_saturating'?",
    '--config.loss=None': 'Unknown config.loss',
    '--config.model.name=dcgann': "Did you mean 'dcgan'?",
    '--config.model.latent_prior=normal': 'Valid: gaussian, uniform.',
    '--config.dataset=fashion-mnist': "Did you mean 'fashion_mnist'?",
    '--config.dataset=ring8': 'model dcgan makes images',
    '--config.model=mlp': 'config.model',
    '--config.model={}': 'config.model.',
    '--config.g_optimizer=None': 'config.g_optimizer',
    '--config.model.g_batch_norm=maybe': 'config.model.g_batch_norm',
    '--config.seed=[1,2]': 'config.seed',
    '--config.seed=-1': 'config.seed must be in [0, 2**32)',
    '--config.data.num_threads=-1': 'config.data.num_threads must be >= 0',
    '--config.log_every=0': 'config.log_every must be positive',
    '--config.eval_reference_count=5': 'config.eval_reference_count must be 0 (every training '
                                       'image) or at least 10, got 5.',
    '--config.eval_reference_count=-1': 'config.eval_reference_count must be >= 0',
}

# What `python -m gan_jax.main` answers to each override: parse_flags, then validate (the first
# thing train_and_evaluate does). config_flags reads sys.argv and defines a flag per override, so
# each case sets the one and removes the others.
_PARSE_SCRIPT = r'''
import json, sys, traceback
from gan_jax import cli, main, validation
from gan_jax.errors import UserError

defined = set(main.FLAGS)
messages = {}
for override in json.load(sys.stdin):
  sys.argv = ['main', '--config=experiments/ns_gan.py:smoke', override, '--workdir=unused']
  try:
    cli.parse_flags(sys.argv)
    validation.validate(main.FLAGS.config, num_devices=4)
    messages[override] = 'accepted'
  except SystemExit as e:
    messages[override] = str(e.code)
  except UserError as e:
    messages[override] = f'Error: {e}'
  except Exception:
    messages[override] = traceback.format_exc()
  main.FLAGS.unparse_flags()
  for name in set(main.FLAGS) - defined:
    delattr(main.FLAGS, name)
print(json.dumps(messages))
'''


@pytest.fixture(scope='module')
def override_messages():
  """Each of OVERRIDES -> its message, from the real flag parsing in one fresh process.

  A process of its own: absl's flags are global, and gan_jax.main's clash with gan_jax.sample's.
  """
  result = subprocess.run([sys.executable, '-c', _PARSE_SCRIPT], input=json.dumps(list(OVERRIDES)),
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize('override', OVERRIDES)
def test_malformed_override_ends_in_one_error_message(override_messages, override):
  message = override_messages[override]
  assert message.startswith('Error') and 'Traceback' not in message, message
  assert OVERRIDES[override] in message, message


def test_main_reports_a_bad_value_without_traceback(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'gan_jax.main', '--config=experiments/toy_ring.py:smoke',
       '--config.n_critic=0', f'--workdir={tmp_path}'], capture_output=True, text=True, cwd=ROOT,
      timeout=120)
  assert result.returncode != 0
  assert 'Error: config.n_critic must be positive, got 0.' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not os.listdir(tmp_path)  # nothing started
