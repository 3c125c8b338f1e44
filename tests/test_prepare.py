"""Preparing a tfds data set (gan_jax/data/prepare.py): our one line, no tfds chatter or bars."""
import logging

from gan_jax.data import idx as idx_dataset
from gan_jax.data import prepare
from idx_files import NUM_TRAIN, write_dataset


def test_preparing_idx_files_logs_one_line_of_ours_and_no_progress_bars(tmp_path, capfd, caplog):
  write_dataset(str(tmp_path / 'idx'))
  with caplog.at_level(logging.DEBUG):
    source = idx_dataset.load_source('fashion_mnist', 'train', str(tmp_path / 'idx'),
                                     str(tmp_path / 'tfds'))
    again = idx_dataset.load_source('fashion_mnist', 'train', str(tmp_path / 'idx'),
                                    str(tmp_path / 'tfds'))
  assert len(source) == len(again) == NUM_TRAIN
  shown = [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO]
  # Once: the second call finds the data set prepared.
  assert [line for line in shown if line.startswith('Preparing')] == [
      f'Preparing fashion_mnist from {tmp_path}/idx (once, into '
      f'{tmp_path}/tfds/idx_images/fashion_mnist/1.0.0)']
  assert not any('Downloading and preparing' in line for line in shown)
  # tfds's own lines are kept for -v 1 (DEBUG), not printed.
  kept = [record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG]
  assert any(line.startswith('tfds: Downloading and preparing dataset') for line in kept), kept
  out, err = capfd.readouterr()
  assert 'Downloading and preparing' not in out + err
  # pytest's stderr is no terminal: no tqdm bar, hence no carriage return or cursor code.
  assert '\x1b[' not in err and '\r' not in err and 'examples/s' not in err, err


def test_quiet_preparation_restores_the_progress_bar_setting(capfd):
  def bar_written():
    with prepare.tqdm_utils.tqdm(total=1, desc='bar') as bar:
      bar.update(1)
    return 'bar' in capfd.readouterr().err

  assert bar_written()  # tfds's default: bars on
  with prepare.quiet_preparation():
    assert not bar_written()
  assert bar_written()
