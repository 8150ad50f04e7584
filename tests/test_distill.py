"""Knowledge distillation: the loss terms and the Trainer subclass."""
from __future__ import annotations

import pytest
import torch

from obce.distill import DistillationTrainer, attention_outputs, distillation_loss, distillation_terms, hidden_loss
from obce.errors import ObceInputError


def test_distillation_loss_terms():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g)
    y = torch.randint(0, 3, (8,), generator=g)
    torch.testing.assert_close(distillation_loss(s, t, y, alpha=0.0), torch.nn.functional.cross_entropy(s, y))
    assert float(distillation_loss(t, t, None)) == pytest.approx(0.0, abs=1e-6)  # student = teacher
    kl = torch.nn.functional.kl_div(torch.log_softmax(s / 2, -1), torch.softmax(t / 2, -1), reduction="batchmean")
    torch.testing.assert_close(distillation_loss(s, t, y, temperature=2.0, alpha=1.0), 4 * kl)
    r = distillation_loss(s[:, :1], t[:, :1], y.float(), alpha=0.5, regression=True)
    expected = 0.5 * torch.mean((s[:, 0] - t[:, 0]) ** 2) + 0.5 * torch.mean((s[:, 0] - y.float()) ** 2)
    torch.testing.assert_close(r, expected)
    with pytest.raises(ObceInputError, match="alpha"):
        distillation_loss(s, t, y, alpha=2.0)


def test_hidden_loss_counts_real_tokens_only():
    a = [torch.zeros(2, 3, 4), torch.ones(2, 3, 4)]
    b = [torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)]
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert float(hidden_loss(a, b, [(1, 1)], mask)) == 1.0
    assert float(hidden_loss(a, b, [(0, 0), (1, 1)])) == 0.5
    b[1][:, 2] = 1.0  # padding positions differ: not counted
    assert float(hidden_loss(a, b, [(1, 1)], mask)) == 1.0


def test_distillation_loss_falls_on_a_tiny_batch(tiny_bert, sentences, tmp_path):
    from datasets import Dataset
    from transformers import BertConfig, BertForSequenceClassification, TrainingArguments

    _, tok = tiny_bert
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    teacher, student = BertForSequenceClassification(cfg).eval(), BertForSequenceClassification(cfg)
    with torch.no_grad():
        teacher.classifier.weight.normal_(0, 2.0)  # a teacher with confident, varied outputs
    enc = tok(sentences, truncation=True, max_length=16, padding="max_length")
    ds = Dataset.from_dict({**enc, "labels": [i % 2 for i in range(len(sentences))]})
    args = TrainingArguments(output_dir=str(tmp_path), num_train_epochs=40, learning_rate=3e-3,
                             per_device_train_batch_size=len(sentences), use_cpu=True, report_to=[],
                             save_strategy="no", logging_steps=1, disable_tqdm=True, seed=0)
    trainer = DistillationTrainer(model=student, args=args, train_dataset=ds, teacher=teacher, alpha=0.8,
                                  hidden_weight=0.5, attention_weight=0.5)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[-1] < 0.5 * losses[0]
    for k, v in teacher.state_dict().items():  # the teacher never changes
        torch.testing.assert_close(v, before[k])


def test_attention_term_is_the_error_between_attention_sublayer_outputs(tiny_bert, sentences, tmp_path):
    """The attention term is the squared error between each block's attention sub-layer outputs (read
    here by re-running the blocks' attention by hand), and the hooks are gone afterwards."""
    from transformers import BertConfig, BertForSequenceClassification, TrainingArguments

    _, tok = tiny_bert
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    teacher, student = BertForSequenceClassification(cfg).eval(), BertForSequenceClassification(cfg).eval()
    batch = dict(tok(sentences[:4], truncation=True, max_length=16, padding=True, return_tensors="pt"))
    mask = batch["attention_mask"]

    def by_hand(model):  # each block's attention output, from the hidden state entering it
        hs = model(**batch, output_hidden_states=True).hidden_states
        ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min  # additive
        return [blk.attention(hs[i], attention_mask=ext)[0] for i, blk in enumerate(model.bert.encoder.layer)]

    with torch.no_grad():
        with attention_outputs(student) as got:
            student(**batch)
        want = by_hand(student)
    assert len(got) == 2  # one output per block
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)
    assert not any(blk.attention._forward_hooks for blk in student.bert.encoder.layer)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    plain = DistillationTrainer(model=student, args=args, teacher=teacher, alpha=1.0)
    both = DistillationTrainer(model=student, args=args, teacher=teacher, alpha=1.0, attention_weight=2.0)
    with torch.no_grad():
        extra = both.compute_loss(student, batch) - plain.compute_loss(student, batch)
        expected = 2.0 * hidden_loss(by_hand(student), by_hand(teacher), [(0, 0), (1, 1)], mask)
    torch.testing.assert_close(extra, expected, atol=1e-5, rtol=1e-4)


def test_the_record_names_only_the_terms_that_are_weighted():
    from obce.distill import DISTILL_DEFAULTS

    assert distillation_terms(**DISTILL_DEFAULTS) == "prediction layer, hidden states and attention outputs"
    assert distillation_terms(**{**DISTILL_DEFAULTS, "attention_weight": 0}) == "prediction layer and hidden states"
    assert distillation_terms(alpha=0.5, hidden_weight=0, attention_weight=0) == "prediction layer"
    assert distillation_terms(alpha=0, hidden_weight=0, attention_weight=0) == "nothing"
