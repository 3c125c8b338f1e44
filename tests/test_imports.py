"""The package imports in layers: no gan_jax module imports itself back through others."""
import ast
import pathlib

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
