"""common.py against independent references: hand-written tensors, a dot product
written out, and the closed form worked out on paper."""

import copy

import pytest
import torch

import common
from common import Test_Conv

# --- the article's data -----------------------------------------------------

def test_patterns_match_the_article_element_by_element():
    s = 3.0
    expected_a = [[0, s, 0, s]] * 4
    expected_b = [[s, s, s, s], [0, s, 0, s], [0, s, 0, s], [s, s, s, s]]
    for made, expected in ((common.pattern_a(s), expected_a), (common.pattern_b(s), expected_b)):
        assert made.shape == (1, 1, 4, 4) and made.dtype == torch.float32
        assert made.reshape(4, 4).tolist() == expected


def test_patterns_differ_except_at_scale_zero():
    assert torch.equal(common.pattern_a(0), common.pattern_b(0))
    assert not torch.equal(common.pattern_a(1), common.pattern_b(1))


def test_training_set_is_the_article_order():
    inputs, labels = common.training_set()
    assert inputs.shape == (40, 1, 4, 4) and labels.tolist() == [0] * 20 + [1] * 20
    for i in range(20):
        assert torch.equal(inputs[i], common.pattern_a(i)[0])
        assert torch.equal(inputs[20 + i], common.pattern_b(i)[0])


def test_training_accuracy_leaves_out_only_the_all_zero_inputs():
    inputs, labels = common.classifiable_training_set()
    full_inputs, full_labels = common.training_set()
    keep = [i for i in range(40) if i % 20 != 0]  # A and B at scale 0 are the same all-zero input
    assert torch.equal(inputs, full_inputs[keep]) and torch.equal(labels, full_labels[keep])
    assert all(x.abs().sum() > 0 for x in inputs) and not full_inputs[[0, 20]].any()


TEST_SCALES = [0.25, 0.5, 1.5, 20, 25, 100, 1000, 999999999]  # as docs/reference.md lists them


def test_test_set_is_ten_noisy_copies_of_both_patterns_at_unseen_scales():
    noisy, labels = common.noisy_test_set()
    assert noisy.shape == (160, 1, 4, 4) and labels.tolist() == ([0] * 8 + [1] * 8) * 10
    clean = torch.cat([common.pattern_a(s) for s in TEST_SCALES] + [common.pattern_b(s) for s in TEST_SCALES])
    scales = torch.tensor(TEST_SCALES * 2).repeat(10).reshape(160, 1, 1, 1)
    noise = torch.randn(160, 1, 4, 4, generator=torch.Generator().manual_seed(2024))  # the documented seed
    torch.testing.assert_close(noisy, clean.repeat(10, 1, 1, 1) + 0.1 * scales * noise, rtol=1e-6, atol=0)
    assert torch.equal(noisy, common.noisy_test_set()[0])  # the same set every time
    assert not set(TEST_SCALES) & set(range(20)), "a test scale was used in training"


# --- the network ------------------------------------------------------------

def test_test_conv_is_a_dot_product_per_filter_on_a_batch():
    torch.manual_seed(0)
    model = Test_Conv()
    assert model.conv.bias is None and model.conv.weight.shape == (4, 1, 4, 4)
    batch = torch.randn(5, 1, 4, 4)
    logits = model(batch)
    assert logits.shape == (5, 4)
    weight = model.conv.weight.detach()
    expected = torch.tensor([[float((weight[k, 0] * x[0]).sum()) for k in range(4)] for x in batch])
    torch.testing.assert_close(logits.detach(), expected)


def test_without_bias_a_positive_scale_never_changes_the_prediction():
    torch.manual_seed(1)
    model = Test_Conv()
    inputs = torch.randn(50, 1, 4, 4)
    for scale in (0.001, 7.0, 999999999.0):
        assert torch.equal(common.predict(model, inputs), common.predict(model, scale * inputs))


def test_test_conv_is_not_collected_by_pytest():
    assert Test_Conv.__test__ is False


# --- evaluation -------------------------------------------------------------

def model_with_filters(filter_a, filter_b):
    """A Test_Conv whose logits 0 and 1 are the dot products with two given filters (2 and 3 stay at 0)."""
    model = Test_Conv()
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.weight[0, 0] = filter_a
        model.conv.weight[1, 0] = filter_b
    return model


def test_accuracy_counts_the_largest_logit():
    # logit 0 sums columns 1 and 3 (8s for A and B at scale s); logit 1 weighs the cells
    # that only B has by 3 (0 for A, 12s for B): A is predicted A, B is predicted B
    filter_a = torch.zeros(4, 4)
    filter_a[:, [1, 3]] = 1.0
    filter_b = torch.zeros(4, 4)
    filter_b[0, [0, 2]] = filter_b[3, [0, 2]] = 3.0
    model = model_with_filters(filter_a, filter_b)
    inputs = torch.cat([common.pattern_a(1), common.pattern_b(1), common.pattern_b(2), common.pattern_a(3)])
    assert common.predict(model, inputs).tolist() == [0, 1, 1, 0]
    assert common.accuracy(model, inputs, torch.tensor([0, 1, 1, 0])) == 100.0
    assert common.accuracy(model, inputs, torch.tensor([0, 1, 0, 1])) == 50.0
    assert common.accuracy(model, inputs, torch.tensor([1, 1, 1, 0])) == 75.0
    assert common.accuracy(model, inputs[:3], torch.tensor([0, 0, 1])) == pytest.approx(200 / 3, abs=0)


def test_article_check_is_the_prediction_for_a_at_the_huge_scale():
    filter_a = torch.zeros(4, 4)
    filter_a[:, [1, 3]] = 1.0
    right = model_with_filters(filter_a, torch.zeros(4, 4))
    wrong = model_with_filters(torch.zeros(4, 4), filter_a)
    assert common.article_check(right) is True and common.article_check(wrong) is False


def test_evaluate_reports_the_three_measures_against_their_own_sets():
    filter_a = torch.zeros(4, 4)
    filter_a[:, [1, 3]] = 1.0
    always_a = model_with_filters(filter_a, torch.zeros(4, 4))  # predicts A for every non-negative input
    noisy, noisy_labels = common.noisy_test_set()
    expected_test = 100.0 * (common.predict(always_a, noisy) == noisy_labels).sum().item() / len(noisy_labels)
    assert common.evaluate(always_a) == {"train_accuracy": 50.0, "test_accuracy": expected_test,
                                         "article_check": True}


def test_the_articles_check_is_the_prediction_for_a_at_scale_one():
    """No bias: the class of A at scale 999999999 is the class of A at scale 1, a training sample."""
    for seed in range(20):
        torch.manual_seed(seed)
        model = Test_Conv()
        at_scale_one = common.predict(model, common.pattern_a(1)).item() == common.LABEL_A
        assert common.article_check(model) is at_scale_one


def test_compare_weights_sees_one_bit_in_any_parameter():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2))
    twin = copy.deepcopy(model)
    assert common.compare_weights(model, twin) == (True, 0.0)
    assert common.verdict(True) == "identical, bit for bit"
    with torch.no_grad():
        last = twin[1].bias
        last[1] = torch.nextafter(last[1], torch.tensor(2.0))  # one bit, in the last number of the last tensor
    identical, largest = common.compare_weights(model, twin)
    assert identical is False and largest == (twin[1].bias[1] - model[1].bias[1]).abs().item() > 0
    assert common.verdict(identical) == "DIFFERENT"
    with torch.no_grad():
        twin[0].weight[0, 0] += 0.5  # a larger difference, in another tensor, is the one reported
    assert common.compare_weights(model, twin)[1] == pytest.approx(0.5, rel=1e-6)
    with pytest.raises(ValueError):  # a network with fewer parameters is not a twin
        common.compare_weights(model, model[0])



# --- the closed form --------------------------------------------------------

@pytest.mark.parametrize("x0, lr, n, expected", [
    (1.0, 0.25, 3, 0.125), (2.0, 0.5, 7, 0.0), (1.0, 1.0, 5, -1.0), (-3.0, 0.75, 2, -0.75), (1.0, 0.01, 0, 1.0),
    (0.0, 2.0, 800, 0.0),  # 0 stays 0, though 3^800 is past float64
])
def test_closed_form_by_hand(x0, lr, n, expected):
    assert common.parabola_closed_form(x0, lr, n) == expected
