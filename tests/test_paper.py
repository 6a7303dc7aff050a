"""The "Paper vs this code" page: each departure it lists, pinned by a test,
and the page itself checked against the tests and the chapters' notes."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import torch

from literate_transformer.attention import MultiHeadAttention
from literate_transformer.config import TransformerConfig
from literate_transformer.embedding import TransformerEmbedding
from literate_transformer.layers import EncoderLayer
from literate_transformer.lm import TransformerLM
from literate_transformer.masks import key_mask_from_embeddings, padding_mask
from literate_transformer.model import Transformer
from literate_transformer.positional import SinusoidalPositionalEncoding
from literate_transformer.train import train, warmup_lr

ROOT = Path(__file__).parent.parent
PAGE = ROOT / "docs" / "paper.md"
SMALL = dict(d_model=16, num_heads=2, d_ff=32, max_len=16)


def test_layer_norm_is_post_ln_by_default_and_pre_ln_on_request():
    torch.manual_seed(0)
    layer = EncoderLayer(16, 2, 32, dropout=0.0).eval()
    x = torch.randn(2, 5, 16)
    post = layer.norm2(
        (h := layer.norm1(x + layer.self_attn(x)[0])) + layer.ff(h)
    )  # LayerNorm(x + Sublayer(x)), twice: section 3.1
    torch.testing.assert_close(layer(x), post)
    assert layer.ff.activation is torch.nn.functional.relu or isinstance(
        layer.ff.activation, torch.nn.ReLU
    )
    pre = EncoderLayer(16, 2, 32, dropout=0.0, norm_first=True).eval()
    assert pre.norm_first and not layer.norm_first


def test_attention_projections_have_biases_unless_asked_otherwise():
    projections = ("q_proj", "k_proj", "v_proj", "out_proj")
    default, plain = MultiHeadAttention(16, 2), MultiHeadAttention(16, 2, bias=False)
    assert all(getattr(default, name).bias is not None for name in projections)
    assert all(getattr(plain, name).bias is None for name in projections)
    layer = Transformer(10, 10, d_model=16, num_heads=2, d_ff=32).encoder.layers[0]
    assert layer.self_attn.q_proj.bias is not None  # the model keeps the default


def test_only_pre_ln_stacks_end_with_a_layer_norm():
    post = Transformer(10, 10, **SMALL)
    pre = Transformer(10, 10, norm_first=True, **SMALL)
    assert isinstance(post.encoder.norm, torch.nn.Identity)
    assert isinstance(post.decoder.norm, torch.nn.Identity)
    assert isinstance(pre.encoder.norm, torch.nn.LayerNorm)
    assert isinstance(pre.decoder.norm, torch.nn.LayerNorm)


def test_dropout_also_acts_on_attention_weights_and_the_ffn_activation():
    model = Transformer(10, 10, dropout=0.3, **SMALL)
    layer = model.encoder.layers[0]
    assert layer.dropout1.p == layer.dropout2.p == 0.3  # sub-layer outputs
    assert model.encoder.embedding.dropout.p == 0.3  # the sums e + p
    assert layer.self_attn.dropout == 0.3  # attention weights: not in the paper
    assert layer.ff.dropout.p == 0.3  # after the activation: not in the paper


def test_input_dropout_is_on_the_sum_unless_asked_otherwise():
    layer = TransformerEmbedding(10, 16, max_len=8)
    assert layer.dropout_on == "sum" and layer.dropout.p == 0.1
    assert layer.word_dropout is None and layer.embedding_dropout is None


def test_the_default_input_is_the_papers_sinusoids_added():
    layer = TransformerEmbedding(10, 16, max_len=8, dropout=0.0)
    assert layer.combine == "add"
    assert isinstance(layer.position, SinusoidalPositionalEncoding)


def test_the_output_projection_is_tied_and_has_no_bias():
    model = Transformer(10, 10, **SMALL)
    assert model.decoder.output.weight is model.decoder.embedding.token.weight
    assert model.decoder.output.bias is None
    assert model.encoder.embedding.token.weight is not model.decoder.output.weight
    shared = Transformer(10, 10, share_vocab=True, **SMALL)
    assert shared.encoder.embedding.token.weight is shared.decoder.output.weight
    lm = TransformerLM(10, d_model=16, num_heads=2)  # tied: no bias either
    assert lm.output.weight is lm.embedding.token.weight and lm.output.bias is None


def test_the_key_mask_comes_from_token_ids_not_from_embeddings():
    tokens = torch.tensor([[4, 5, 0, 0]])
    embedding = TransformerEmbedding(10, 16, max_len=8, dropout=0.0)
    from_embeddings = key_mask_from_embeddings(embedding(tokens))
    assert from_embeddings.all()  # the position makes padding look real
    assert padding_mask(tokens, 0).tolist() == [[True, True, False, False]]
    model = Transformer(10, 10, **SMALL)
    src_mask, _ = model.masks(tokens, tokens)
    assert src_mask.flatten().tolist() == [True, True, False, False]


def test_training_clips_the_gradient_norm_by_default():
    assert inspect.signature(train).parameters["clip_norm"].default == 1.0


def test_the_schedule_is_the_papers_formula_times_a_factor():
    for step in (1, 100, 3999, 4000, 4001, 100_000):
        paper = 512**-0.5 * min(step**-0.5, step * 4000**-1.5)
        assert warmup_lr(step, d_model=512, warmup=4000) == paper
        assert warmup_lr(step, d_model=512, warmup=4000, factor=0.2) == 0.2 * paper


def test_default_sizes_and_regularisation():
    defaults = Transformer(10, 10).config
    assert defaults == TransformerConfig()
    assert defaults.d_model == 128 and defaults.num_heads == 4
    assert defaults.num_encoder_layers == defaults.num_decoder_layers == 2
    assert defaults.d_ff == 512 and defaults.dropout == 0.1
    assert inspect.signature(train).parameters["label_smoothing"].default == 0.0
    assert MultiHeadAttention(16, 2).dropout == 0.0


def page_rows() -> list[list[str]]:
    rows = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ") and not line.startswith("| topic"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_every_row_of_the_paper_page_names_a_test_that_exists():
    rows = page_rows()
    assert len(rows) >= 15
    for row in rows:
        found = re.fullmatch(r"`(tests/\w+\.py)::(test_\w+)`", row[-1])
        assert found, row[-1]
        tree = ast.parse((ROOT / found[1]).read_text(encoding="utf-8"))
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert found[2] in names, f"{row[0]}: no {found[2]} in {found[1]}"
        assert re.search(r"\]\(\w+\.md#[\w-]+\)", row[-2]), row[-2]


def test_every_chapter_note_is_on_the_paper_page():
    page = PAGE.read_text(encoding="utf-8").lower()
    notes = []
    for chapter in sorted((ROOT / "docs").glob("*.md")):
        text = chapter.read_text(encoding="utf-8")
        notes += re.findall(r'^!!! note "Paper vs this code: ([^"]+)"', text, re.M)
    assert len(notes) >= 6
    topics = {
        "the embedding scale": "embedding scale and initialisation",
        "layer-norm placement and dropout": "layer-norm placement",
        "the final layer normalisation": "final layer normalisation",
        "weight tying and the output bias": "weight tying",
        "gradient clipping and the learning rate": "gradient clipping",
        "sizes, regularisation and decoding": "decoding",
    }
    for note in notes:
        assert note in topics, f"a new note, not yet on docs/paper.md: {note!r}"
        assert f"| {topics[note]} |" in page, note
