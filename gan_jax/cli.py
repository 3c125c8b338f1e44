"""What the command-line programs share: flag parsing that ends in one clear line."""
import sys

from absl import flags

from gan_jax.errors import UserError


def parse_flags(argv: list[str]) -> list[str]:
  """Parses absl flags; a bad flag, preset or `--config.x=y` override ends in one line.

  Pass it to `app.run(main, flags_parser=parse_flags)`: the config file is loaded while
  flags are parsed, before `main` runs, so its errors need catching here.
  """
  try:
    return flags.FLAGS(argv)
  except (flags.Error, UserError) as e:  # UserError: e.g. an unknown `experiments/x.py:preset`
    sys.exit(f'Error: {e}')
  except (AttributeError, KeyError, TypeError, ValueError) as e:  # ml_collections overrides
    detail = str(e).replace('\\n', ' ').replace('\\', '').replace("'", '')
    sys.exit(f'Error in a --config override: {" ".join(detail.split())}')
