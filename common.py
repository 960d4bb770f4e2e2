"""What the lessons share: the article's two patterns, its network `Test_Conv`
(and a fresh one from a seed), the training and test sets, evaluation (with the
bit-for-bit comparison of two networks), the 95% Wilson interval of a count
of runs (lessons 01 and 05), and the closed form of gradient descent on y = x^2.

Open it after the first cells of lesson 01, which use it from the start.
"""

import math

import torch
from torch import nn

# ---------------------------------------------------------------------------
# The article's data: two 4x4 patterns at many scales
# ---------------------------------------------------------------------------

LABEL_A, LABEL_B = 0, 1
TRAIN_SCALES = range(20)
ARTICLE_CHECK_SCALE = 999999999  # the one input the article tests its network on
# The test set: both patterns at scales never trained on, each copied with noise.
TEST_SCALES = (0.25, 0.5, 1.5, 20, 25, 100, 1000, ARTICLE_CHECK_SCALE)
NOISE_FRACTION = 0.1  # the noise's standard deviation, as a fraction of the sample's scale
NOISY_COPIES = 10
NOISE_SEED = 2024  # the test set is the same for every run and every seed


def pattern_a(scale):
    """Columns 1 and 3 set to `scale`: shape (1, 1, 4, 4), float32."""
    image = torch.zeros(4, 4)
    image[:, [1, 3]] = scale
    return image.reshape(1, 1, 4, 4)


def pattern_b(scale):
    """Pattern A plus its top and bottom rows: shape (1, 1, 4, 4), float32."""
    image = pattern_a(scale).reshape(4, 4)
    image[[0, 3], :] = scale
    return image.reshape(1, 1, 4, 4)


def labelled_patterns(scales):
    """Pattern A at every scale, then pattern B at every scale, with their labels."""
    inputs = [pattern_a(s) for s in scales] + [pattern_b(s) for s in scales]
    labels = [LABEL_A] * len(scales) + [LABEL_B] * len(scales)
    return torch.cat(inputs), torch.tensor(labels)


def training_set():
    """The article's 40 samples in its order: A at scales 0..19, then B at 0..19."""
    return labelled_patterns(TRAIN_SCALES)


def classifiable_training_set():
    """The training samples that a network without bias can classify: all but scale 0.

    At scale 0 both patterns are all zeros, so every logit is 0 whatever the
    weights: no bias-free network can tell A from B there. Training accuracy
    leaves those two samples out; 38 remain.
    """
    return labelled_patterns(TRAIN_SCALES[1:])


def noisy_test_set():
    """Inputs that no run ever trained on: 160 noisy copies of the two patterns.

    Each pattern at 8 scales never trained on, copied 10 times with Gaussian
    noise whose standard deviation is 10% of the scale. The noise is what makes
    them new. The scales change nothing: Test_Conv has no bias, so scaling an
    input scales its four logits alike and never changes the largest one. A
    clean pattern at any scale above 0 is therefore classified as at scale 1,
    which is a training sample.
    """
    inputs, labels = labelled_patterns(TEST_SCALES)
    copies = inputs.repeat(NOISY_COPIES, 1, 1, 1)
    scales = copies.amax(dim=(1, 2, 3), keepdim=True)
    noise = torch.randn(copies.shape, generator=torch.Generator().manual_seed(NOISE_SEED))
    return copies + NOISE_FRACTION * scales * noise, labels.repeat(NOISY_COPIES)


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------

class Test_Conv(nn.Module):
    """The article's network: four 4x4 filters, no bias, one logit per filter."""

    __test__ = False  # its name starts with "Test": tell pytest it is no test class

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(in_channels=1, out_channels=4, kernel_size=4, bias=False)

    def forward(self, x):
        return self.conv(x).flatten(start_dim=1)  # (N, 1, 4, 4) -> logits (N, 4)


def new_network(seed, device="cpu"):
    """A fresh Test_Conv whose initial filters are drawn from `seed`: the same seed, the same run."""
    torch.manual_seed(seed)
    return Test_Conv().to(device)


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------

@torch.no_grad()
def predict(model, inputs):
    """The class with the largest logit, one per input."""
    return model(inputs).argmax(dim=1)


def accuracy(model, inputs, labels):
    """Percentage of inputs whose predicted class is their label."""
    device = next(model.parameters()).device
    correct = (predict(model, inputs.to(device)) == labels.to(device)).sum().item()
    return 100.0 * correct / len(labels)


def article_check(model):
    """The article's only test: is pattern A at scale 999999999 classified as A?

    For a bias-free network that is the prediction for A at scale 1: the
    article's check is a training sample in disguise.
    """
    return accuracy(model, pattern_a(ARTICLE_CHECK_SCALE), torch.tensor([LABEL_A])) == 100.0


def evaluate(model):
    """Training accuracy, test accuracy (both in %), and the article's check."""
    return {
        "train_accuracy": accuracy(model, *classifiable_training_set()),
        "test_accuracy": accuracy(model, *noisy_test_set()),
        "article_check": article_check(model),
    }


def compare_weights(model, other):
    """(every parameter equal bit for bit?, the largest absolute difference), for two networks."""
    pairs = list(zip(model.parameters(), other.parameters(), strict=True))
    identical = all(torch.equal(a, b) for a, b in pairs)
    return identical, max((a - b).abs().max().item() for a, b in pairs)


def verdict(identical):
    """compare_weights' first answer, in words."""
    return "identical, bit for bit" if identical else "DIFFERENT"


def wilson_interval(successes, runs, z=1.96):
    """The 95% Wilson score interval of a success rate, in percent: (low, high). It never leaves 0..100%,
    yet float rounding can put an end a hair outside, so both ends are clamped."""
    rate, spread = successes / runs, z * z / runs
    centre = (rate + spread / 2) / (1 + spread)
    half_width = z * math.sqrt(rate * (1 - rate) / runs + spread / (4 * runs)) / (1 + spread)
    return max(0.0, 100 * (centre - half_width)), min(100.0, 100 * (centre + half_width))


# ---------------------------------------------------------------------------
# Gradient descent on y = x^2, in closed form
# ---------------------------------------------------------------------------

def parabola_closed_form(x0, lr, n):
    """x after n gradient descent steps on y = x^2.

    The slope is 2x, so one step is x - lr * 2x = (1 - 2*lr) * x: every step
    multiplies x by the same factor, and n steps by that factor to the n.
    """
    if x0 == 0:  # 0 stays 0, even where the factor to the n is past float64's largest number
        return 0.0
    factor = 1 - 2 * lr
    try:
        return x0 * factor**n
    except OverflowError:  # the factor to the n is past float64's largest number: infinity, with its sign
        return x0 * (float("inf") if factor > 0 or n % 2 == 0 else float("-inf"))
