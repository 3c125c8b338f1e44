"""What the command-line programs share: flag parsing, quiet logs and errors in one line."""
import importlib.util
import logging as std_logging
import os
import re
import sys
import traceback
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from gan_jax.errors import UserError, has_field, unknown_field_error


def _one_line(text: str) -> str:
  return ' '.join(text.split())


def _located(error: BaseException, path: str) -> str:
  """`error` with the line of `path` that raised it (or called what raised it)."""
  def in_path(filename):
    return filename and os.path.abspath(filename) == os.path.abspath(path)

  if isinstance(error, SyntaxError) and in_path(error.filename):
    line, message = error.lineno, error.msg  # str(error) repeats the file and line
  else:
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
             if in_path(frame.filename)]
    line, message = lines[-1] if lines else None, str(error)
  where = f' at line {line}' if line else ''
  return f'Config file {path} failed{where}: {type(error).__name__}: {_one_line(message)}'


class _ConfigFileParser(flags.ArgumentParser):
  """Loads `--config=file.py[:arg]` as ml_collections' parser does, with clear errors.

  ml_collections' own parser hands a missing file's error over as a placeholder config,
  which fails later with a message that names neither the file nor the problem, and
  shows an error raised by the file as a traceback through the flag parser. Here both
  are a UserError: the file does not exist, or its own error with its line.
  """

  def __init__(self, name: str):
    self.name = name
    self.loaded = None  # the config the file gave, before any `--config.x=y`

  def flag_type(self) -> str:
    return 'config file'

  def parse(self, argument: str) -> ml_collections.ConfigDict:
    self.loaded = None
    path, *arg = argument.split(':', 1)
    if not os.path.isfile(path):
      where = '' if os.path.isabs(path) else f' (in {os.getcwd()})'
      raise UserError(f'Config file {path} does not exist{where}.' if not os.path.exists(path)
                      else f'Config file {path} is not a file.')
    spec = importlib.util.spec_from_file_location(f'{self.name}_config', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as ml_collections does: dataclasses look their module up
    try:
      spec.loader.exec_module(module)
      if not callable(getattr(module, 'get_config', None)):
        raise UserError(f'Config file {path} has no get_config(arg=None) function.')
      config = module.get_config(*arg)
    except UserError:  # e.g. an unknown preset, already said clearly
      raise
    except Exception as e:  # pylint: disable=broad-except; whatever the file raised
      raise UserError(_located(e, path)) from e
    if not isinstance(config, ml_collections.ConfigDict):
      raise UserError(f'Config file {path}: get_config() returned {type(config).__name__}, '
                      'not an ml_collections.ConfigDict.')
    config.lock()  # a misspelled field then fails instead of being added
    self.loaded = config
    return config


def define_config_flag(help_string: str) -> None:
  """Defines `--config`: an experiments/*.py file, locked, overridable with `--config.x=y`."""
  config_flags.DEFINE_config_file('config', None, help_string, lock_config=True)
  flags.FLAGS['config'].parser = _ConfigFileParser('config')


def _unknown_override(argv: list[str]) -> UserError | None:
  """The error for the first `--config.a.b=...` of `argv` that names no field of the config
  file's config, or None if each names one (or no config file was loaded).

  ml_collections' own error names the last part only ('learning_rte' of
  `--config.d_optimizer.learning_rte`), and suggests fields of that group only.
  """
  if 'config' not in flags.FLAGS:
    return None
  config = getattr(flags.FLAGS['config'].parser, 'loaded', None)
  if config is None:
    return None
  for arg in argv[1:]:
    # As ml_collections reads them: -config.x or --config.x, =value or not, --noconfig.x.
    override = re.match(r'--?(?:no)?config\.([^=]+)', arg)
    if override and not has_field(config, override[1]):
      return unknown_field_error(override[1], config)
  return None


def _override_error(error: Exception, argv: list[str]) -> str:
  """ml_collections' error for a bad `--config.x=y` in `argv`, as one sentence.

  An unknown field arrives as AttributeError(KeyError("'name'\\nDid you mean ...?")); it is
  told as validation tells a config file's unknown field, by its full name.
  """
  unknown = _unknown_override(argv)
  if unknown is not None:
    return str(unknown)
  while len(error.args) == 1 and isinstance(error.args[0], Exception):
    error = error.args[0]
  if isinstance(error, KeyError) and error.args:
    name, _, hint = str(error.args[0]).partition('\n')
    return _one_line(f'unknown field {name}. {hint}')
  return _one_line(str(error))


def parse_flags(argv: list[str]) -> list[str]:
  """Parses absl flags; a bad flag, config file, preset or `--config.x=y` ends in one line.

  `run` passes it to `app.run`: the config file is loaded while flags are parsed,
  before `main` runs, so its errors need catching here.
  """
  try:
    return flags.FLAGS(argv)
  except (flags.Error, UserError) as e:  # UserError: e.g. an unknown `experiments/x.py:preset`
    sys.exit(f'Error: {e}')
  except (AttributeError, KeyError, TypeError, ValueError) as e:  # ml_collections overrides
    sys.exit(f'Error in a --config override: {_override_error(e, argv)}')


def _hide_other_libraries_info(record: std_logging.LogRecord) -> bool:
  """A logging filter: False (drop) for an INFO or DEBUG line logged outside gan_jax."""
  return (record.levelno >= std_logging.WARNING or
          record.pathname.startswith(os.path.dirname(__file__) + os.sep))


def run(main: Callable[[list[str]], Any]) -> None:
  """`app.run(main)` as every gan_jax program runs it.

  Flags parse through `parse_flags`. Other libraries' INFO lines (jax's "Unable to
  initialize backend 'tpu'", orbax's dozens per checkpoint) show only with `-v 1` (absl's
  --verbosity); their warnings and errors always. A UserError or OSError (a path that
  cannot be read or written) prints as one `Error: ...` line, once.
  """
  def run_main(argv):
    if logging.get_verbosity() <= logging.INFO:
      logging.get_absl_handler().addFilter(_hide_other_libraries_info)
    try:
      return main(argv)
    except (UserError, OSError) as e:
      sys.exit(f'Error: {e}')

  app.run(run_main, flags_parser=parse_flags)
