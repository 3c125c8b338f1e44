"""`python -m gan_jax.main` on tfds.testing.mock_data: tests run the README's commands with it.

`python tests/mocked_main.py MAIN_FLAGS...` runs gan_jax.main with the flags, every tfds data
set replaced by 20 random examples per split that tfds makes from the data set's own features
(tests/tfds_mock.py), so a command that names CIFAR-10 or CelebA runs offline.
"""
import os
import runpy
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [TESTS, os.path.dirname(TESTS)]  # tfds_mock, and this checkout's gan_jax

from tfds_mock import mock_tfds  # pylint: disable=wrong-import-position

if __name__ == '__main__':
  with mock_tfds(num_examples=20):
    sys.argv[0] = 'gan_jax.main'
    runpy.run_module('gan_jax.main', run_name='__main__', alter_sys=True)
