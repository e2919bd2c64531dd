"""The models as the paper sets them up: CLS token read at the end, tied embeddings, the one-hot MLP baseline."""

import random

import torch
import torch.nn.functional as F
from harness.plugins.relational.experiment import as_tensors, score
from harness.plugins.relational.models import ModelSpec, OneHotMLP, build, loss, outputs
from harness.plugins.relational.templates import CLS, Vocabulary, make_split, parse_templates


def test_regression_inputs_end_with_the_cls_token_that_the_head_reads(one_thread):
    templates = parse_templates("aba_abb", "regression")
    vocab = Vocabulary.build(templates, 10, 10, 10)
    ids, targets = as_tensors(make_split(templates, 8, vocab.alphabet("train"), random.Random(0), vocab), "regression")
    assert ids.shape == (8, 4) and (ids[:, -1] == CLS).all() and set(targets.tolist()) == {1.0, -1.0}
    torch.manual_seed(0)
    model = build(ModelSpec(attention="identity", d_model=32, n_head=4), "regression", vocab.size, 4)
    assert not model.config.causal and model.config.head == "regression"
    out = outputs(model, ids)
    assert out.shape == (8, 1)
    changed = ids.clone()
    changed[:, 0] = ids[:, 1]  # the first token changes the CLS output: attention reaches back from the end
    assert not torch.allclose(outputs(model, changed), out)


def test_next_token_ties_embeddings_and_reads_the_last_position(one_thread):
    torch.manual_seed(0)
    model = build(ModelSpec(attention="sdpa", d_model=32, n_head=4), "next_token", 50, 3)
    assert model.head.weight is model.tok_emb.weight
    ids, targets = torch.randint(1, 50, (5, 3)), torch.randint(1, 50, (5,))
    assert outputs(model, ids).shape == (5, 50)
    torch.testing.assert_close(loss(model, ids, targets), F.cross_entropy(model(ids)[:, -1], targets))


def test_mlp_baseline_is_a_linear_map_of_concatenated_one_hots(one_thread):
    torch.manual_seed(0)
    mlp = OneHotMLP(vocab_size=7, length=3, width=16, depth=2, n_outputs=1)
    ids = torch.tensor([[1, 5, 2], [6, 0, 6]])
    one_hot = F.one_hot(ids, 7).float().view(2, 21)  # (B, length * vocab)
    weight = mlp.first.weight.T  # (width, length * vocab) as a Linear on the one-hots
    first = F.relu(one_hot @ weight.T + mlp.first_bias)
    expected = mlp.out(F.relu(mlp.hidden[0](first)))
    torch.testing.assert_close(mlp(ids), expected)


def test_score_uses_the_nearest_label_for_regression_and_argmax_for_next_token():
    class Fixed(torch.nn.Module):
        def __init__(self, out):
            super().__init__()
            self.out = out

        def forward(self, ids):
            return self.out

    labels = torch.tensor([-1.0, 1.0])
    result = score(
        Fixed(torch.tensor([[0.2], [-3.0], [0.9], [-0.1]])),
        torch.zeros(4, 4, dtype=torch.long),
        torch.tensor([1.0, -1.0, -1.0, 1.0]),
        labels,
    )
    assert result["accuracy"] == 0.5
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    assert score(Fixed(logits), torch.zeros(2, 2, dtype=torch.long), torch.tensor([1, 2]), None)["accuracy"] == 0.5
