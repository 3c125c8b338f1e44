"""The package imports in layers: no gan_jax module imports itself back through others; and
training imports nothing that only the extras of pyproject.toml install."""
import ast
import json
import pathlib
import subprocess
import sys
import tomllib

import idx_files

PACKAGE = pathlib.Path(__file__).parent.parent / 'gan_jax'


def _module_name(path: pathlib.Path, package: pathlib.Path) -> str:
  parts = path.relative_to(package.parent).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def import_graph(package: pathlib.Path = PACKAGE) -> dict[str, set[str]]:
  """{module: the package's modules it imports}, from the source (function-level imports too)."""
  modules = {_module_name(path, package): path for path in package.rglob('*.py')}
  graph = {}
  for name, path in modules.items():
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.Import):
        imported |= {alias.name for alias in node.names}
      elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        # `from gan_jax import configs` names a module; `from gan_jax.errors import X` does not.
        imported |= {node.module} | {f'{node.module}.{alias.name}' for alias in node.names}
    # A module's parent packages are initialised before it in any case: importing a sibling
    # through them (`from gan_jax.models import resnet`) is no edge back to them.
    graph[name] = {other for other in imported & modules.keys()
                   if other != name and not name.startswith(other + '.')}
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One cycle of `graph` as [a, b, ..., a], or None if it has none (depth-first search)."""
  on_path, done = [], set()

  def visit(node):
    on_path.append(node)
    for successor in sorted(graph[node]):
      if successor in on_path:
        return on_path[on_path.index(successor):] + [successor]
      if successor not in done and (cycle := visit(successor)):
        return cycle
    done.add(on_path.pop())
    return None

  for node in sorted(graph):
    if node not in done and (cycle := visit(node)):
      return cycle
  return None


def test_find_cycle_finds_one_and_only_one():
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
  assert find_cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set(), 'd': {'d2'}, 'd2': {'d'}}) == [
      'd', 'd2', 'd']


def test_package_modules_import_without_cycles():
  graph = import_graph()
  assert {'gan_jax.configs', 'gan_jax.evaluate', 'gan_jax.train'} <= graph.keys()
  assert 'gan_jax.errors' in graph['gan_jax.configs']  # the graph sees `from gan_jax.x import y`
  cycle = find_cycle(graph)
  assert cycle is None, 'gan_jax modules import each other in a circle: ' + ' -> '.join(cycle)


# Runs a program with the modules of `blocked` (argv[1], JSON) missing, as if not installed.
_WITHOUT_MODULES = r'''
import json, runpy, sys

blocked = set(json.loads(sys.argv.pop(1)))
assert not blocked & {name.split('.')[0] for name in sys.modules}, 'imported at start-up'


class NotInstalled:
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in blocked:
      raise ModuleNotFoundError(f'No module named {name!r}', name=name)
    return None


sys.meta_path.insert(0, NotInstalled())
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
'''


def _installed_by(requirements: list[str]) -> set[str]:
  """The installed distributions (canonical names) that installing `requirements` brings, this
  project's extras (`gan_jax[notebook]`) and the dependencies' extras included; not gan_jax."""
  from importlib import metadata
  from packaging.requirements import Requirement
  from packaging.utils import canonicalize_name

  with open(PACKAGE.parent / 'pyproject.toml', 'rb') as f:
    project = tomllib.load(f)['project']
  seen, pending = set(), [Requirement(text) for text in requirements]
  while pending:
    requirement = pending.pop()
    name = canonicalize_name(requirement.name)
    if (name, frozenset(requirement.extras)) in seen:
      continue
    seen.add((name, frozenset(requirement.extras)))
    if name == canonicalize_name(project['name']):  # pyproject.toml: the source of truth
      pending += [Requirement(text) for extra in requirement.extras
                  for text in project['optional-dependencies'][extra]]
      continue
    try:
      requires = metadata.distribution(name).requires or []
    except metadata.PackageNotFoundError:  # an optional dependency not installed here
      continue
    for text in requires:
      needed = Requirement(text)
      if needed.marker is None or any(needed.marker.evaluate({'extra': extra})
                                      for extra in requirement.extras or {''}):
        pending.append(needed)
  return {name for name, _ in seen} - {canonicalize_name(project['name'])}


def test_training_needs_nothing_of_the_extras(tmp_path):
  """The README's training command installs `.` alone: training Fashion-MNIST (here tiny IDX
  files, prepared on the way) works with every module only the extras bring missing."""
  from importlib import metadata
  from packaging.utils import canonicalize_name

  with open(PACKAGE.parent / 'pyproject.toml', 'rb') as f:
    project = tomllib.load(f)['project']
  core = _installed_by(project['dependencies'])
  # pip, setuptools and wheel come with every Python environment, whatever was installed.
  extras_only = _installed_by([f'{project["name"]}[{",".join(project["optional-dependencies"])}]']
                              ) - core - {'pip', 'setuptools', 'wheel'}
  assert {'matplotlib', 'tensorboard', 'skypilot', 'gcsfs', 'pytest'} <= extras_only
  blocked = sorted(module for module, names in metadata.packages_distributions().items()
                   if {canonicalize_name(name) for name in names} <= extras_only)
  assert {'matplotlib', 'sky', 'gcsfs', 'pytest', 'nbformat'} <= set(blocked)
  idx_files.write_dataset(str(tmp_path / 'idx'))
  result = subprocess.run(
      [sys.executable, '-c', _WITHOUT_MODULES, json.dumps(blocked), 'gan_jax.main',
       '--config=experiments/sngan.py:smoke', f'--workdir={tmp_path / "run"}',
       f'--config.data.manual_dir={tmp_path / "idx"}',
       f'--config.data.data_dir={tmp_path / "tfds"}'],
      cwd=PACKAGE.parent, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Trained to step 2 of 2' in result.stderr


def test_readme_installs_the_package_alone_to_train_and_ci_runs_its_test_command():
  readme = (PACKAGE.parent / 'README.md').read_text(encoding='utf-8')
  setup = readme.split('## Set-up: two commands', 1)[1].split('```bash\n', 1)[1].split('```')[0]
  train_command, test_command = [line for line in setup.splitlines()
                                 if line and not line.startswith('#')]
  # Training installs `.` alone (test_training_needs_nothing_of_the_extras shows it suffices).
  assert 'pip install -e . && python -m gan_jax.main ' in train_command, train_command
  assert test_command == "pip install -e '.[test]' && python -m pytest -q", test_command
  ci = (PACKAGE.parent / '.ci' / 'run').read_text().strip().splitlines()[-1]
  assert ci.replace('python -m pip install -q ', 'pip install ') == test_command, ci
