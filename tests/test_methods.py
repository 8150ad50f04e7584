"""Compression methods: FFN sub-layer removal."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import obce
from obce.errors import ObceInputError
from obce.methods import layer_removal


def _hidden(model, tok, texts):
    batch = obce.activations.tokenize(tok, texts, 16)
    with torch.no_grad():
        return model(**batch).last_hidden_state


def test_removing_a_block_whose_ffn_output_is_zero_changes_no_output(tiny_bert, sentences):
    model, tok = tiny_bert
    with torch.no_grad():
        out = model.encoder.layer[1].output.dense
        out.weight.zero_()
        out.bias.zero_()
    small = layer_removal.compress(model, layers=[1])
    torch.testing.assert_close(_hidden(small, tok, sentences), _hidden(model, tok, sentences))
    assert layer_removal.layer_sizes(small) == [64, 0, 64]


def test_parameter_count_is_exact(minilm):
    model, _ = minilm
    small = layer_removal.compress(model, n_remove=3, criterion="last")
    block = 2 * 384 * 1536 + 1536 + 384  # both maps and both biases: 1,181,568
    assert obce.count_parameters(model) - obce.count_parameters(small) == 3 * block == 3_544_704
    # OBCE level 2 removes 1,152 fewer: neuron pruning keeps each layer's output bias
    level2 = obce.prune(model, np.random.default_rng(0).random((6, 1536)), level=2)
    assert obce.count_parameters(model) - obce.count_parameters(level2) == 3_543_552


def test_save_and_load_round_trip(tiny_bert, sentences, tmp_path):
    model, tok = tiny_bert
    small = layer_removal.compress(model, n_remove=2, criterion="every_other")
    layer_removal.save(small, tmp_path / "m", tok)
    again = layer_removal.load(tmp_path / "m")
    assert layer_removal.layer_sizes(again) == layer_removal.layer_sizes(small) == [0, 0, 64]
    torch.testing.assert_close(_hidden(again, tok, sentences), _hidden(small, tok, sentences))
    with pytest.raises(ObceInputError, match="obce_layers.json"):
        layer_removal.load(tmp_path)


def test_criteria_choose_blocks(tiny_bert, sentences):
    model, tok = tiny_bert
    assert layer_removal.choose_layers(model, 1, "last") == [2]
    assert layer_removal.choose_layers(model, 2, "first") == [0, 1]
    assert layer_removal.choose_layers(model, 1, "every_other") == [1]
    with torch.no_grad():
        model.encoder.layer[0].output.dense.weight.mul_(1e-3)  # layer 0's FFN barely changes the stream
        model.encoder.layer[0].output.dense.bias.zero_()
    change = layer_removal.residual_change(model, tok, sentences)
    assert change.shape == (3,) and np.argmin(change) == 0
    assert layer_removal.choose_layers(model, 1, "residual_change", tok, sentences) == [0]
    with pytest.raises(ObceInputError, match="criterion 'deepest'"):
        layer_removal.choose_layers(model, 1, "deepest")
    with pytest.raises(ObceInputError, match="n_remove=4"):
        layer_removal.compress(model, n_remove=4)
