r"""DCGAN 64x64 as pytorch/examples' dcgan/main.py ships it, on Fashion-MNIST upsampled to 64x64.

The like-for-like peer of benchmarks/pytorch_dcgan.py: the same networks (Radford et al.,
2016: transposed convolutions with batch norm and ReLU in G, strided convolutions with
batch norm and leaky ReLU in D), loss (BCE, G maximising log D(G(z))), Adam 2e-4/0.5 and
batch 64; the reference's `--dataset mnist` likewise upsamples 28x28 grey images to 64x64.

`:celeb_a` is the paper's setting (its Section 4 and Figure 1) on CelebA: 64x64 images
(CelebA's 218x178 faces centre-cropped to 178x178 and shrunk), z of 100 drawn uniformly, G
of 1024, 512, 256 and 128 channels from 4x4 up (Figure 1), batch 128, Adam(0.0002, 0.5)
(beta2 unstated: Adam's default 0.999), convolution weights from N(0, 0.02), leaky ReLU
slope 0.2, no EMA. What differs: the paper trained its faces on a scraped set of 3M images
of 10K people, not CelebA; it does not give D's widths (ours mirror G's, 128 to 1024) nor
its faces' training length; G's first, dense layer keeps flax's initialisation. Length: we
train 25 epochs of CelebA's 162,770 training images (pytorch/examples' --niter default),
31,792 steps. Published: nothing to compare; the paper reports no FID or Inception score for
faces (its numbers are classification accuracies from D's features on CIFAR-10 and SVHN).
Estimated cost: 31,792 steps x FLOPs per step (`python -m gan_jax.benchmark --config
experiments/dcgan64.py:celeb_a --config.model.conv_implementation=xla --flops_only`: 0.99
TFLOP per step, jax 0.10.2) at 30% of an H100's 989 TFLOP/s (dense bf16): about 0.03 H100
hours.

python -m gan_jax.main --config experiments/dcgan64.py --workdir runs/dcgan64
python -m gan_jax.benchmark --config experiments/dcgan64.py --synthetic
python -m gan_jax.main --config experiments/dcgan64.py:celeb_a --workdir runs/dcgan64_celeb_a
"""
from gan_jax import configs

# Radford et al. (2016), Section 4 and Figure 1.
CELEB_A = {
    'dataset': 'celeb_a', 'data.image_size': 64, 'data.crop': 'center',
    'model.width': 128, 'model.latent_dim': 100, 'model.latent_prior': 'uniform',
    'model.d_batch_norm': True, 'loss': 'non_saturating', 'n_critic': 1,
    'batch_size': 128, 'num_steps': -(-25 * 162_770 // 128),
    'g_optimizer.learning_rate': 2e-4, 'g_optimizer.b1': 0.5, 'g_optimizer.b2': 0.999,
    'd_optimizer.learning_rate': 2e-4, 'd_optimizer.b1': 0.5, 'd_optimizer.b2': 0.999,
    'g_ema_decay': 0.0,
}


def get_config(arg=None):
  config = configs.default()
  config.dataset = 'fashion_mnist'
  config.data.image_size = 64
  config.model.name = 'dcgan'
  config.model.width = 64
  config.model.d_batch_norm = True
  config.loss = 'non_saturating'
  config.num_steps = 23_500  # the reference's 25 epochs of 60,000 images
  return configs.apply_preset(config, arg, celeb_a=CELEB_A)
