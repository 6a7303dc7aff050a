"""Bad input to every public function and class: a clear error, never a result.

Each case calls one public callable with valid arguments except one, which is
replaced by a bad value: the wrong kind (a float for a size, a string for a
flag, a float tensor for ids) or the right kind out of range. The call must
raise TypeError or ValueError, and the message must name the argument as the
caller spelled it and say what was expected and what was received. The same
call with the valid arguments must succeed, so that each bad case fails for
its own reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from literate_transformer.attention import KVCache, MultiHeadAttention, attention
from literate_transformer.config import TransformerConfig
from literate_transformer.debug import set_debug
from literate_transformer.dropout import EmbeddingDropout, WordDropout
from literate_transformer.embedding import EmbeddingConfig, TransformerEmbedding
from literate_transformer.engine import Decoding, attention_real, use_engine
from literate_transformer.fast_dropout import (
    FastDropout,
    fast_dropout,
    keep_mask,
    kept_scale,
)
from literate_transformer.layers import (
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    load_torch_attention,
    load_torch_layer,
)
from literate_transformer.lm import (
    TransformerLM,
    evaluate_lm,
    init_gpt2,
    load_gpt2,
    train_lm,
)
from literate_transformer.masks import (
    attention_mask,
    causal_mask,
    key_mask_from_embeddings,
    padding_mask,
)
from literate_transformer.model import Decoder, Encoder, Transformer
from literate_transformer.packing import (
    document_labels,
    document_mask,
    document_positions,
    next_tokens,
    pack,
)
from literate_transformer.positional import (
    LearnedPositionalEncoding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    sinusoidal_encoding,
)
from literate_transformer.tasks import Batch, SyntheticTask
from literate_transformer.text import Vocabulary, load_corpus, split_of, tokenize
from literate_transformer.train import accuracy, fit, train, warmup_lr

NAN, INF = math.nan, math.inf
# The wrong kinds and the values out of range, by the kind of argument.
SIZE = [0, -1, 2.5, 4.0, True, "4", None, [4]]  # an integer >= 1
COUNT = [-1, 1.5, False, "1", None]  # an integer >= 0
ID = [-1, 1.0, True, "0", None]  # a token id
PROBABILITY = [-0.1, 1.0, 1.5, NAN, INF, "0.1", True, None]  # [0, 1)
POSITIVE = [0.0, -1.0, NAN, INF, "1", True]  # a number > 0, None allowed
FLAG = ["no", "yes", 1, 0, None, np.bool_(True)]
CHOICE = ["nope", "", 1, None]
DEVICE = ["tpu", "gpu0", 3, 1.5] + ([] if torch.cuda.is_available() else ["cuda"])


def ids(*rows: list[int], dtype: torch.dtype = torch.long) -> torch.Tensor:
    return torch.tensor(rows, dtype=dtype)


# Bad token ids (N, T): not integers, not (N, T), empty, not a tensor.
IDS = [
    ids([1, 2], dtype=torch.float32),
    ids([1, 0], dtype=torch.bool),
    torch.tensor([1, 2, 3]),
    torch.ones(1, 2, 3, dtype=torch.long),
    torch.ones(2, 0, dtype=torch.long),
    torch.ones(0, 3, dtype=torch.long),
    [[1, 2, 3]],
    np.array([[1, 2, 3]]),
    None,
]


def features(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape).to(dtype)


# Bad activations for a module of width 8, batch 2, length 3.
FEATURES = [
    features(2, 3, 6),
    features(2, 3),
    features(2, 3, 8, dtype=torch.float64),  # not the module's dtype
    torch.ones(2, 3, 8, dtype=torch.long),
    [[0.0] * 8],
    None,
]


@dataclass
class Case:
    """One public callable, valid arguments, and bad values per argument."""

    module: str
    name: str
    call: Callable[..., Any]
    valid: dict[str, Any]
    bad: dict[str, list[Any]]


def module(factory: Callable[[], nn.Module], method: str = "forward") -> Callable:
    """A call of `method` of a fresh module (so cases do not share state)."""

    def call(**kwargs: Any) -> Any:
        torch.manual_seed(0)
        return getattr(factory().eval(), method)(**kwargs)

    return call


def tiny_model(**options: Any) -> Transformer:
    torch.manual_seed(0)
    base = dict(d_model=8, num_heads=2, d_ff=16, max_len=12, dropout=0.0)
    return Transformer(13, 13, **{**base, **options})


def tiny_draw(generator: torch.Generator) -> Any:
    """One fixed batch of the tasks, for tiny_model."""
    return (BATCH.src, BATCH.tgt_in), BATCH.tgt_out


TASK = SyntheticTask("reverse", 10, 1, 5)
BATCH = TASK.sample(3, torch.Generator().manual_seed(0))
SRC, TGT = ids([5, 6, 7, 0], [8, 9, 10, 11]), ids([1, 7, 6, 5], [1, 11, 10, 9])
# Bad document labels for SRC's (2, 4): not integers, not its shape, below -1.
LABELS = [
    torch.zeros(2, 4),
    torch.zeros(2, 4, dtype=torch.bool),
    torch.zeros(2, 3, dtype=torch.long),
    torch.zeros(4, dtype=torch.long),
    torch.full((2, 4), -2),
    [[0, 0, 0, 0], [0, 0, 0, 0]],
    "0",
]
# Bad positions for 3 positions: not integers, another length or rank, < 0.
POSITIONS = [
    torch.tensor([0.0, 1.0, 2.0]),
    torch.tensor([0, 1]),
    torch.zeros(1, 2, 3, dtype=torch.long),
    torch.tensor([-1, 0, 1]),
    [0, 1, 2],
]
MASK_2 = torch.ones(2, 1, 1, 3, dtype=torch.bool)  # key padding, N=2, T_k=3
REAL = torch.tensor([[True, True, False], [True, True, True]])  # 5 real of 6


def filled_cache(batch: int) -> KVCache:
    """A self-attention cache holding one position of `batch` sequences."""
    cache = KVCache()
    cache.update(torch.zeros(batch, 2, 1, 4), torch.zeros(batch, 2, 1, 4))
    return cache


# Bad masks for attention over (N=2, h=2, T_q=3, T_k=3).
MASKS = [
    torch.ones(2, 1, 1, 3),  # float: which way round would it be?
    torch.ones(2, 1, 1, 3, dtype=torch.long),
    torch.ones(2, 1, 1, 4, dtype=torch.bool),  # other T_k
    torch.ones(5, 1, 1, 3, dtype=torch.bool),  # other N
    [[True, True, True]],
]

CASES = [
    # positional.py
    Case(
        "positional",
        "sinusoidal_encoding",
        sinusoidal_encoding,
        dict(max_len=8, d_model=8, base=10000.0, dtype=torch.float32, device="cpu"),
        dict(
            max_len=SIZE,
            d_model=[*SIZE, 3, 7],
            base=[0.0, 1.0, 0.5, -2.0, NAN, INF, "10", True, None],
            dtype=[torch.int64, torch.bool, torch.complex64, "float32", float, None],
            device=DEVICE,
        ),
    ),
    Case(
        "positional",
        "SinusoidalPositionalEncoding",
        SinusoidalPositionalEncoding,
        dict(max_len=8, d_model=8, base=100.0),
        dict(max_len=SIZE, d_model=[*SIZE, 5], base=[0.0, 1.0, NAN, "1e4", None]),
    ),
    Case(
        "positional",
        "SinusoidalPositionalEncoding.forward",
        module(lambda: SinusoidalPositionalEncoding(8, 8)),
        dict(length=8),
        dict(length=[*SIZE, 9]),
    ),
    Case(
        "positional",
        "LearnedPositionalEncoding",
        LearnedPositionalEncoding,
        dict(max_len=8, d_model=8),
        dict(max_len=SIZE, d_model=SIZE),
    ),
    Case(
        "positional",
        "LearnedPositionalEncoding.forward",
        module(lambda: LearnedPositionalEncoding(8, 8)),
        dict(length=3),
        dict(length=[*SIZE, 9]),
    ),
    Case(
        "positional",
        "RotaryEmbedding",
        RotaryEmbedding,
        dict(d_head=8, base=10000.0),
        dict(d_head=[*SIZE, 3], base=[0.0, 1.0, -1.0, NAN, "big", None]),
    ),
    Case(
        "positional",
        "RotaryEmbedding.forward",
        module(lambda: RotaryEmbedding(8)),
        dict(x=features(2, 3, 8), offset=0, positions=torch.tensor([[0, 1, 2]] * 2)),
        dict(
            x=[features(2, 3, 6), features(8), torch.ones(2, 8, dtype=torch.long)],
            offset=[-1, 1.5, True, "0", None],
            positions=POSITIONS,
        ),
    ),
    # embedding.py
    Case(
        "embedding",
        "TransformerEmbedding",
        TransformerEmbedding,
        dict(vocab_size=12, d_model=8, max_len=6),
        dict(
            vocab_size=SIZE,
            d_model=[*SIZE, 7],  # sinusoids need an even width
            max_len=SIZE,
            positional=CHOICE,
            combine=CHOICE,
            d_position=[4, 0],  # only concat splits the width
            scale=POSITIVE,
            init_std=POSITIVE,
            position_init_std=[*POSITIVE, 0.5],  # 0.5: no learned table here
            dropout=PROBABILITY,
            dropout_on=CHOICE,
            word_dropout=PROBABILITY,
            unk_id=[-1, 12, 1.0, True, "1"],
            embedding_dropout=PROBABILITY,
            pad_id=[-1, 12, 0.0, True, "0"],
        ),
    ),
    Case(
        "embedding",
        "TransformerEmbedding(combine='concat')",
        TransformerEmbedding,
        dict(vocab_size=12, d_model=8, max_len=6, combine="concat", d_position=4),
        dict(d_position=[0, 8, 9, 3, 4.0, True, "4"], positional=["none", "x"]),
    ),
    Case(
        "embedding",
        "TransformerEmbedding(word_dropout=0.1)",
        TransformerEmbedding,
        dict(vocab_size=12, d_model=8, max_len=6, word_dropout=0.1, unk_id=1),
        dict(unk_id=[None, 0, 12, -1, 1.0]),  # 0 is the padding id
    ),
    Case(
        "embedding",
        "TransformerEmbedding.forward",
        module(lambda: TransformerEmbedding(12, 8, max_len=6)),
        dict(tokens=ids([3, 4, 0]), positions=torch.tensor([2, 3, 4])),
        dict(
            tokens=[*IDS, ids([3, 12]), ids([-1, 3]), torch.ones(1, 7).long()],
            positions=[*POSITIONS, torch.tensor([4, 5, 6])],  # max_len 6
        ),
    ),
    # dropout.py
    Case(
        "dropout",
        "WordDropout",
        WordDropout,
        dict(p=0.1, unk_id=1, pad_id=0),
        dict(p=PROBABILITY, unk_id=[*ID, 0], pad_id=[-1, 1.0, True, "0", 1]),
    ),
    Case(
        "dropout",
        "WordDropout.forward",
        module(lambda: WordDropout(0.5, unk_id=1).train()),
        dict(tokens=ids([3, 4, 0])),
        dict(tokens=IDS),
    ),
    Case(
        "dropout",
        "EmbeddingDropout",
        EmbeddingDropout,
        dict(p=0.1),
        dict(p=PROBABILITY),
    ),
    Case(
        "dropout",
        "EmbeddingDropout.forward",
        module(lambda: EmbeddingDropout(0.5).train()),
        dict(tokens=ids([3, 4, 0]), weight=features(12, 8), padding_idx=0),
        dict(
            tokens=[*IDS, ids([3, 12])],
            weight=[features(12), torch.ones(12, 8).long(), [[0.0]], None],
            padding_idx=[-1, 1.5, True, "0"],
        ),
    ),
    # masks.py
    Case(
        "masks",
        "padding_mask",
        padding_mask,
        dict(tokens=ids([3, 4, 0]), pad_id=0),
        dict(tokens=IDS, pad_id=ID),
    ),
    Case(
        "masks",
        "causal_mask",
        causal_mask,
        dict(size=4, device="cpu"),
        dict(size=SIZE, device=DEVICE),
    ),
    Case(
        "masks",
        "attention_mask",
        attention_mask,
        dict(key_padding=torch.ones(2, 3, dtype=torch.bool), causal=True, size=3),
        dict(
            key_padding=[
                torch.ones(2, 3),
                torch.ones(2, 3, dtype=torch.long),
                torch.ones(3, dtype=torch.bool),
                torch.ones(2, 3, 3, dtype=torch.bool),
                torch.ones(2, 0, dtype=torch.bool),
                [[True, False]],
            ],
            causal=FLAG,
            size=[4, 0, -1, 3.0, True, "3"],
        ),
    ),
    Case(
        "masks",
        "key_mask_from_embeddings",
        key_mask_from_embeddings,
        dict(emb=features(2, 3, 8)),
        dict(emb=[features(2, 3), torch.ones(2, 3, 8).long(), [[[0.0]]], None]),
    ),
    # attention.py
    Case(
        "attention",
        "attention",
        attention,
        dict(
            q=features(2, 3, 8),
            k=features(2, 4, 8),
            v=features(2, 4, 6),
            mask=torch.ones(2, 3, 4, dtype=torch.bool),
            dropout_p=0.0,
        ),
        dict(
            q=[features(2, 3, 5), features(3), features(2, 3, 8, dtype=torch.float64)],
            k=[features(2, 4, 5), features(4, 8), torch.ones(2, 4, 8).long(), None],
            v=[features(2, 5, 6), features(2, 4, 6, dtype=torch.float16), [[0.0]]],
            mask=[torch.ones(2, 3, 4), torch.ones(2, 3, 5, dtype=torch.bool), [[1]]],
            dropout_p=PROBABILITY,
        ),
    ),
    Case(
        "attention",
        "MultiHeadAttention",
        MultiHeadAttention,
        dict(d_model=8, num_heads=2, dropout=0.1, bias=True, rotary=None, fused=False),
        dict(
            d_model=[*SIZE, 7],
            num_heads=[*SIZE, 3, 16],
            dropout=PROBABILITY,
            bias=FLAG,
            rotary=["rope", RotaryEmbedding(8), nn.Linear(4, 4)],
            fused=FLAG,
        ),
    ),
    Case(
        "attention",
        "MultiHeadAttention.forward",
        module(lambda: MultiHeadAttention(8, 2)),
        dict(
            query=features(2, 3, 8),
            key=features(2, 3, 8),
            value=features(2, 3, 8),
            mask=MASK_2,
            need_weights=True,
            average_attn_weights=True,
        ),
        dict(
            query=FEATURES,
            key=[*FEATURES[:-1], features(5, 3, 8)],  # None: key = query
            value=[*FEATURES[:-1], features(2, 4, 8)],
            mask=[*MASKS, torch.ones(2, 3, 3, dtype=torch.bool)],  # 3-D: ambiguous
            need_weights=FLAG,
            average_attn_weights=FLAG,
            cache=["kv", (KVCache(),), filled_cache(5)],
            is_causal=[*FLAG, True],  # True beside a mask: one or the other
        ),
    ),
    Case("attention", "KVCache", KVCache, dict(fixed=True), dict(fixed=FLAG)),
    # debug.py
    Case("debug", "set_debug", set_debug, dict(on=True), dict(on=FLAG)),
    # engine.py
    Case(
        "engine",
        "attention_real",
        attention_real,
        dict(
            mha=MultiHeadAttention(8, 2).eval(),
            x=features(5, 8),
            real=REAL,
            mask=REAL[:, None, None, :],
        ),
        dict(
            mha=[nn.Linear(8, 8), None],
            x=[features(4, 8), features(5, 6), features(1, 5, 8), None],
            real=[REAL.long(), REAL[0], "real"],
            mask=[
                REAL[:, None, None, :].float(),
                torch.ones(2, 1, 1, 4).bool(),
                torch.ones(2, 1, 1, 3).bool(),  # not the key mask of real
            ],
        ),
    ),
    Case(
        "engine",
        "Decoding",
        Decoding,
        dict(model=TransformerLM(20, d_model=8, num_heads=2, d_ff=16).eval(), length=9),
        dict(
            model=[
                nn.Linear(2, 2),
                None,
                TransformerLM(20, d_model=8, num_heads=2, d_ff=16),  # training
            ],
            length=[*SIZE, 257],  # at most the model's max_len, 256
        ),
    ),
    Case(
        "engine",
        "use_engine",
        use_engine,
        dict(model=nn.Linear(2, 2), on=True, chunked_loss=None, causal_attention=None),
        dict(
            model=["model", None, torch.zeros(2)],
            on=FLAG,
            chunked_loss=FLAG[:4],  # None: as `on`
            causal_attention=FLAG[:4],
        ),
    ),
    # layers.py
    Case(
        "layers",
        "FeedForward",
        FeedForward,
        dict(d_model=8, d_ff=16, dropout=0.1, activation="relu"),
        dict(d_model=SIZE, d_ff=SIZE, dropout=PROBABILITY, activation=CHOICE),
    ),
    Case(
        "layers",
        "FeedForward.forward",
        module(lambda: FeedForward(8, 16)),
        dict(x=features(2, 3, 8)),
        dict(x=[f for f in FEATURES if not (torch.is_tensor(f) and f.dim() == 2)]),
    ),
    Case(
        "layers",
        "EncoderLayer",
        EncoderLayer,
        dict(d_model=8, num_heads=2, d_ff=16, dropout=0.1, norm_first=False),
        dict(
            d_model=[*SIZE, 7],
            num_heads=[*SIZE, 3],
            d_ff=SIZE,
            dropout=PROBABILITY,
            norm_first=FLAG,
            activation=CHOICE,
            rotary=["rope", RotaryEmbedding(8)],
        ),
    ),
    Case(
        "layers",
        "EncoderLayer.forward",
        module(lambda: EncoderLayer(8, 2, 16)),
        dict(x=features(2, 3, 8), mask=MASK_2),
        dict(
            x=FEATURES,
            mask=MASKS,
            cache=["kv", filled_cache(5)],
            positions=POSITIONS,
        ),
    ),
    Case(
        "layers",
        "DecoderLayer",
        DecoderLayer,
        dict(d_model=8, num_heads=2, d_ff=16, dropout=0.1, norm_first=True),
        dict(d_model=[*SIZE, 7], num_heads=[*SIZE, 3], norm_first=FLAG),
    ),
    Case(
        "layers",
        "DecoderLayer.forward",
        module(lambda: DecoderLayer(8, 2, 16)),
        dict(
            y=features(2, 3, 8),
            memory=features(2, 3, 8),
            self_mask=causal_mask(3),
            memory_mask=MASK_2,
        ),
        dict(
            y=FEATURES,
            memory=[*FEATURES, features(5, 3, 8)],
            self_mask=MASKS,
            memory_mask=MASKS,
            cache=[KVCache(), (KVCache(),), ("a", "b"), [KVCache(), KVCache()]],
        ),
    ),
    Case(
        "layers",
        "load_torch_attention",
        load_torch_attention,
        dict(ours=MultiHeadAttention(8, 2), theirs=nn.MultiheadAttention(8, 2)),
        dict(
            ours=[nn.MultiheadAttention(8, 2), nn.Linear(8, 8), None],
            theirs=[
                nn.MultiheadAttention(8, 4),
                nn.MultiheadAttention(16, 2),
                nn.MultiheadAttention(8, 2, bias=False),
                nn.MultiheadAttention(8, 2, add_bias_kv=True),
                nn.MultiheadAttention(8, 2, kdim=4, vdim=4),
                nn.Linear(8, 8),
                None,
            ],
        ),
    ),
    Case(
        "layers",
        "load_torch_layer",
        load_torch_layer,
        dict(
            ours=EncoderLayer(8, 2, 16),
            theirs=nn.TransformerEncoderLayer(8, 2, 16, batch_first=True),
        ),
        dict(
            ours=[DecoderLayer(8, 2, 16), FeedForward(8, 16), None],
            theirs=[
                nn.TransformerDecoderLayer(8, 2, 16, batch_first=True),
                nn.TransformerEncoderLayer(8, 2, 32, batch_first=True),
                nn.TransformerEncoderLayer(8, 4, 16, batch_first=True),
                nn.TransformerEncoderLayer(16, 2, 16, batch_first=True),
                nn.TransformerEncoderLayer(8, 2, 16, bias=False),
                nn.TransformerEncoderLayer(8, 2, 16, norm_first=True),
                nn.TransformerEncoderLayer(8, 2, 16, activation="gelu"),
                nn.TransformerEncoderLayer(8, 2, 16, layer_norm_eps=1e-6),
                nn.MultiheadAttention(8, 2),
                None,
            ],
        ),
    ),
    # model.py
    Case(
        "model",
        "Encoder",
        Encoder,
        dict(
            embedding=TransformerEmbedding(12, 8, max_len=6),
            layers=[EncoderLayer(8, 2, 16)],
            norm_first=False,
        ),
        dict(
            embedding=[nn.Embedding(12, 8), None],
            layers=[[], [DecoderLayer(8, 2, 16)], [EncoderLayer(4, 2, 16)], "x"],
            norm_first=FLAG,
        ),
    ),
    Case(
        "model",
        "Encoder.forward",
        module(lambda: tiny_model().encoder),
        dict(src=SRC, src_mask=MASK_2[:, :, :, :1].expand(2, 1, 1, 4)),
        dict(src=[*IDS, ids([13])], src_mask=[torch.ones(2, 1, 1, 4), [[True]]]),
    ),
    Case(
        "model",
        "Decoder",
        Decoder,
        dict(
            embedding=TransformerEmbedding(12, 8, max_len=6),
            layers=[DecoderLayer(8, 2, 16)],
            norm_first=True,
            vocab_size=12,
        ),
        dict(
            embedding=[nn.Embedding(12, 8)],
            layers=[[EncoderLayer(8, 2, 16)], (), None],
            norm_first=FLAG,
            vocab_size=SIZE,
        ),
    ),
    Case(
        "model",
        "Decoder.forward",
        module(lambda: tiny_model().decoder),
        dict(tgt=TGT, memory=features(2, 4, 8), tgt_mask=None, memory_mask=None),
        dict(
            tgt=[*IDS, ids([13])],
            memory=[features(2, 4, 6), features(3, 4, 8), None],
            tgt_mask=[torch.ones(2, 1, 4, 4), torch.ones(2, 1, 4, 5).bool()],
            memory_mask=[torch.ones(2, 1, 1, 4), torch.ones(2, 1, 1, 5).bool()],
            cache=[KVCache(), [(KVCache(), KVCache())], "kv"],  # tiny_model: 2 layers
        ),
    ),
    Case(
        "config",
        "TransformerConfig",
        TransformerConfig,
        dict(d_model=8, num_heads=2, word_dropout=0.1, unk_id=3),
        dict(
            d_model=[*SIZE, 7],
            num_heads=[*SIZE, 3],
            d_ff=SIZE,
            dropout=PROBABILITY,
            max_len=SIZE,
            norm_first=FLAG,
            activation=CHOICE,
            positional=CHOICE,
            combine=CHOICE,
            embedding_scale=POSITIVE,
            embedding_init_std=POSITIVE,
            position_init_std=[*POSITIVE, 0.5],  # 0.5: no learned table
            input_dropout=[-0.1, 1.0, NAN, "0.1", True],
            activation_dropout=[-0.1, 1.0, NAN, "0.1", True],  # None: dropout
            dropout_on=CHOICE,
            word_dropout=PROBABILITY,
            unk_id=[-1, 1.5, "1", True, None],  # None: word dropout needs one
            embedding_dropout=PROBABILITY,
            tie_embeddings=FLAG,
            num_encoder_layers=SIZE,
            num_decoder_layers=SIZE,
            share_vocab=FLAG,
            pad_id=[-1, 1.5, "0", True, None],
        ),
    ),
    Case(
        "config",
        "EmbeddingConfig",
        EmbeddingConfig,
        dict(d_model=8, max_len=6),
        dict(d_model=SIZE, max_len=SIZE, scale=POSITIVE, pad_id=[-1, 1.5, "0"]),
    ),
    Case(
        "config",
        "TransformerEmbedding(config)",
        TransformerEmbedding,
        dict(vocab_size=12, config=EmbeddingConfig(d_model=8, max_len=6)),
        dict(
            config=["x", {"d_model": 8}, TransformerConfig()],
            d_model=[0, "8"],
            scale=[0.0],
            pad_id=[12],
            max_lenn=[6],  # no such option
        ),
    ),
    Case(
        "model",
        "Transformer",
        Transformer,
        dict(src_vocab_size=13, tgt_vocab_size=13, d_model=8, num_heads=2, d_ff=16),
        dict(
            src_vocab_size=SIZE,
            tgt_vocab_size=SIZE,
            d_model=[*SIZE, 7, 9],
            num_heads=[*SIZE, 3],
            num_encoder_layers=[0, -1, 1.0, True, "2"],
            num_decoder_layers=[0, -1, 2.0, None],
            d_ff=SIZE,
            dropout=PROBABILITY,
            max_len=SIZE,
            norm_first=FLAG,
            activation=CHOICE,
            tie_embeddings=FLAG,
            share_vocab=FLAG,
            positional=CHOICE,
            combine=CHOICE,
            embedding_scale=POSITIVE,
            embedding_init_std=POSITIVE,
            input_dropout=["x", {"dropout": 0.1}, [("dropout", 0.1)], 1.0],
            word_dropout=[1.0],
            pad_id=ID,
            config=["x", {"d_model": 8}, EmbeddingConfig(d_model=8, max_len=6)],
            d_modle=[8],  # no such option
        ),
    ),
    Case(
        "model",
        "Transformer.forward",
        module(tiny_model),
        dict(src=SRC, tgt=TGT),
        dict(
            src=[*IDS, ids([13, 3]), ids([3, 4]), torch.ones(2, 13).long()],
            tgt=[*IDS, ids([-2, 3], [1, 2]), ids([3, 4]), torch.ones(2, 13).long()],
        ),
    ),
    Case(
        "model",
        "Transformer.greedy_decode",
        module(tiny_model, "greedy_decode"),
        dict(src=SRC, bos_id=1, eos_id=2, max_len=5),
        dict(
            src=[*IDS, ids([13])],
            bos_id=[*ID, 0, 13],  # 0 is the padding id
            eos_id=[*ID, 0, 13],
            max_len=[*SIZE, 13],
            cache=FLAG,
        ),
    ),
    Case(
        "model",
        "Transformer.load_state_dict",
        module(tiny_model, "load_state_dict"),
        dict(state_dict=tiny_model().state_dict()),
        dict(state_dict=[tiny_model(tie_embeddings=False).state_dict()]),
    ),
    # tasks.py
    Case(
        "tasks",
        "SyntheticTask",
        SyntheticTask,
        dict(name="copy", num_symbols=5, min_len=2, max_len=4),
        dict(
            name=CHOICE,
            num_symbols=SIZE,
            min_len=[*SIZE, 5],  # longer than max_len
            max_len=[*SIZE, 1],  # shorter than min_len
        ),
    ),
    Case(
        "tasks",
        "SyntheticTask.sample",
        lambda **kwargs: TASK.sample(**kwargs),
        dict(batch_size=2, generator=torch.Generator()),
        dict(batch_size=SIZE, generator=[0, None, "seed"]),
    ),
    Case(
        "tasks",
        "Batch",
        Batch,
        dict(src=SRC, tgt_in=TGT, tgt_out=TGT),
        dict(
            src=IDS,
            tgt_in=[*IDS, ids([1, 2, 3])],
            tgt_out=[*IDS, ids([1, 2], [3, 4])],
        ),
    ),
    # train.py
    Case(
        "train",
        "warmup_lr",
        warmup_lr,
        dict(step=1, d_model=8, warmup=10, factor=1.0),
        dict(step=SIZE, d_model=SIZE, warmup=SIZE, factor=[*POSITIVE, None]),
    ),
    Case(
        "train",
        "accuracy",
        accuracy,
        dict(model=tiny_model(), batch=BATCH),
        dict(batch=[BATCH.src, None]),
    ),
    Case(
        "train",
        "train",
        lambda **kwargs: train(**kwargs),
        dict(
            model=tiny_model(),
            task=TASK,
            steps=1,
            batch_size=2,
            eval_size=2,
            progress=False,
        ),
        dict(
            model=[
                nn.Linear(8, 8),
                tiny_model(pad_id=3),  # the tasks pad with 0
                Transformer(8, 8, d_model=8, num_heads=2, d_ff=16),  # too few ids
                tiny_model(max_len=5),  # too short for the targets
                None,
            ],
            task=["reverse", None],
            steps=SIZE,
            batch_size=SIZE,
            warmup=SIZE,
            lr_factor=[*POSITIVE, None],
            label_smoothing=PROBABILITY,
            clip_norm=POSITIVE,
            pool=[BATCH.src, "pool"],
            eval_every=SIZE,
            eval_size=SIZE,
            seed=[-1, 1.5, True, "0", None],
            device=DEVICE,
            progress=FLAG,
            optimizer=CHOICE,
            weight_decay=[-0.1, float("nan"), None, "0.1", 0.1],  # 0.1: not with adam
        ),
    ),
    Case(
        "train",
        "fit",
        lambda **kwargs: fit(**kwargs),
        dict(model=tiny_model(), draw=tiny_draw, steps=1, evaluate=None),
        dict(
            model=[nn.Linear(8, 8), None, "model"],  # a Linear has no d_model
            draw=[None, "draw"],
            steps=SIZE,
            evaluate=[3, "print"],
            eval_every=SIZE,
            optimizer=CHOICE,
            weight_decay=[-0.1, float("nan"), None, "0.1", 0.1],  # 0.1: not with adam
            warmup=SIZE,
            lr_factor=[*POSITIVE, None],
            schedule=[3, "1e-3"],
            clip_norm=POSITIVE,
            ignore_index=[1.5, None, "0", True],
            label_smoothing=PROBABILITY,
            seed=[-1, 1.5, True, "0", None],
            progress=FLAG,
        ),
    ),
]

CASES += [
    # text.py
    Case(
        "text",
        "Vocabulary.from_tokens",
        Vocabulary.from_tokens,
        dict(tokens=["a", "b", "a"], min_count=1),
        dict(min_count=SIZE),
    ),
    Case("text", "tokenize", tokenize, dict(text="a b"), dict(text=[b"a", 1, None])),
    Case("text", "split_of", split_of, dict(name="assert"), dict(name=[b"x", 1, None])),
    Case(
        "text",
        "load_corpus",
        load_corpus,
        dict(min_count=3),
        dict(path=[3, None, 1.5], min_count=SIZE),
    ),
    # lm.py
    Case(
        "lm",
        "TransformerLM",
        TransformerLM,
        dict(vocab_size=13, d_model=8, num_heads=2, d_ff=16, max_len=6),
        dict(
            vocab_size=SIZE,
            d_model=[*SIZE, 7],
            num_heads=[*SIZE, 3],
            num_layers=SIZE,
            d_ff=SIZE,
            dropout=PROBABILITY,
            max_len=SIZE,
            norm_first=FLAG,
            activation=CHOICE,
            positional=CHOICE,
            combine=CHOICE,
            embedding_scale=POSITIVE,
            embedding_init_std=POSITIVE,
            input_dropout=[{"dropout": 0.1}, 1.0, "sum"],
            tie_embeddings=FLAG,
            pad_id=[-1, 1.0, True, "0", 13],  # None: no padding id
            output_bias=[1, "no"],  # None: only when untied
            init=CHOICE,
            config=["x", TransformerConfig()],
        ),
    ),
    Case(
        "lm",
        "TransformerLM.forward",
        module(lambda: TransformerLM(13, d_model=8, num_heads=2, d_ff=16, max_len=6)),
        dict(ids=SRC, documents=None),
        dict(
            ids=[*IDS, ids([13]), torch.ones(1, 7, dtype=torch.long)],
            documents=LABELS,
        ),
    ),
    Case(
        "lm",
        "TransformerLM.forward",  # asked for the loss: targets, ignore_index
        module(lambda: TransformerLM(13, d_model=8, num_heads=2, d_ff=16, max_len=6)),
        dict(ids=SRC, targets=TGT, ignore_index=-100),
        dict(
            targets=[
                TGT.float(),
                TGT[:, :3],  # not ids' shape
                ids([1, 2, 3, 13], [1, 2, 3, 4]),  # 13: beyond the vocabulary
                ids([1, 2, 3, -1], [1, 2, 3, 4]),  # -1: not the ignore_index
                [[1, 2, 3, 4]],
            ],
            ignore_index=[1.5, "x", None, True],
        ),
    ),
    Case(
        "lm",
        "TransformerLM.generate",
        module(
            lambda: TransformerLM(13, d_model=8, num_heads=2, d_ff=16, max_len=6),
            "generate",
        ),
        dict(prompt=SRC, max_new_tokens=2, do_sample=True, temperature=1.0, top_k=3),
        dict(
            prompt=[*IDS, ids([13])],
            max_new_tokens=SIZE,
            do_sample=FLAG,
            temperature=POSITIVE,
            top_k=[0, -1, 2.5, 4.0, True, "4", [4], 13],  # None: no limit
            generator=[7, "seed"],
            cache=FLAG,
            end_id=[-1, 13, 2.5, True, "2"],  # None: no end
        ),
    ),
]


def gpt2_state(layers: int = 1) -> dict[str, torch.Tensor]:
    """Random weights in the layout of transformers' GPT2LMHeadModel:
    vocabulary 13, width 8, 6 positions."""
    d = 8
    state = {
        "transformer.wte.weight": torch.randn(13, d),
        "transformer.wpe.weight": torch.randn(6, d),
        "transformer.ln_f.weight": torch.ones(d),
        "transformer.ln_f.bias": torch.zeros(d),
    }
    shapes = {"attn.c_attn": 3 * d, "attn.c_proj": d, "mlp.c_fc": 4 * d}
    for i in range(layers):
        for name in ("ln_1", "ln_2"):
            state[f"transformer.h.{i}.{name}.weight"] = torch.ones(d)
            state[f"transformer.h.{i}.{name}.bias"] = torch.zeros(d)
        for name, width in shapes.items():
            state[f"transformer.h.{i}.{name}.weight"] = torch.randn(d, width)
            state[f"transformer.h.{i}.{name}.bias"] = torch.zeros(width)
        state[f"transformer.h.{i}.mlp.c_proj.weight"] = torch.randn(4 * d, d)
        state[f"transformer.h.{i}.mlp.c_proj.bias"] = torch.zeros(d)
    return state


def wrong(key: str, value: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """gpt2_state() with one weight replaced, or removed (None)."""
    state = gpt2_state()
    state.pop(key)
    return state if value is None else state | {key: value}


CASES += [
    Case(
        "lm",
        "load_gpt2",
        load_gpt2,
        dict(state=gpt2_state(), num_heads=2, dropout=0.0),
        dict(
            state=[
                None,
                3,
                {},
                wrong("transformer.h.0.mlp.c_fc.bias", None),
                wrong("transformer.h.0.attn.c_attn.weight", torch.randn(8, 16)),
                wrong("transformer.wte.weight", torch.randn(13)),
            ],
            num_heads=[*SIZE, 3],
            dropout=PROBABILITY,
        ),
    ),
]

LM_CORPUS = load_corpus()


def tiny_lm() -> TransformerLM:
    torch.manual_seed(0)
    return TransformerLM(
        len(LM_CORPUS.vocab), d_model=8, num_heads=2, d_ff=16, max_len=8
    )


CASES += [
    Case(
        "lm",
        "train_lm",
        lambda **kwargs: train_lm(tiny_lm(), **kwargs),
        dict(corpus=LM_CORPUS, steps=1, batch_size=2, length=8, on_eval=None),
        dict(
            corpus=["corpus", None],
            steps=SIZE,
            batch_size=SIZE,
            length=[*SIZE, 9],
            warmup=SIZE,
            lr_factor=POSITIVE,
            clip_norm=POSITIVE,
            eval_every=SIZE,
            seed=[-1, 1.5, True, "0", None],
            on_eval=[3, "print"],
            optimizer=CHOICE,
            weight_decay=[-0.1, float("nan"), None, "0.1", 0.1],  # 0.1: not with adam
            progress=FLAG,
            documents=FLAG,
        ),
    ),
    Case(
        "lm",
        "evaluate_lm",
        lambda **kwargs: evaluate_lm(tiny_lm(), **kwargs),
        dict(stream=LM_CORPUS.stream("valid")[:40], length=8, documents=True),
        dict(
            stream=[torch.tensor([1.0, 2.0]), "ids", torch.tensor([3, 4])],
            length=[*SIZE, 9],
            documents=FLAG,
        ),
    ),
    Case(
        "lm",
        "init_gpt2",
        lambda **kwargs: init_gpt2(**kwargs),
        dict(model=tiny_lm(), std=0.02),
        dict(model=[nn.Linear(2, 2), None], std=[*POSITIVE, None]),
    ),
    Case(
        "lm",
        "train_lm.model",
        train_lm,
        dict(model=tiny_lm(), corpus=LM_CORPUS, steps=1, batch_size=2, length=8),
        dict(model=[nn.Linear(2, 2), None, TransformerLM(13, d_model=8, num_heads=2)]),
    ),
]

CASES += [
    # fast_dropout.py
    Case(
        "fast_dropout",
        "fast_dropout",
        fast_dropout,
        dict(x=torch.ones(2, 3), p=0.1, training=True),
        dict(
            x=[torch.ones(2, 3, dtype=torch.long), [[1.0, 2.0]], None],
            p=PROBABILITY,
            training=FLAG,
        ),
    ),
    Case(
        "fast_dropout",
        "keep_mask",
        keep_mask,
        dict(shape=(2, 3), p=0.1),
        dict(shape=[(2, -1), (2.5,), ("2",), 4, None], p=PROBABILITY),
    ),
    Case(
        "fast_dropout",
        "kept_scale",
        kept_scale,
        dict(shape=(2, 3), p=0.1, scale=1.25),
        dict(
            shape=[(2, -1), (2.5,), 4, None],
            p=PROBABILITY,
            scale=[float("inf"), float("nan"), "1", None],
            dtype=[torch.int64, torch.bool, "float32"],
        ),
    ),
    Case("fast_dropout", "FastDropout", FastDropout, dict(p=0.1), dict(p=PROBABILITY)),
    Case(
        "fast_dropout",
        "FastDropout.forward",
        module(lambda: FastDropout(0.1)),
        dict(x=torch.ones(2, 3)),
        dict(x=[torch.ones(2, 3, dtype=torch.long), "x"]),
    ),
]

CASES += [
    # packing.py
    Case(
        "packing",
        "pack",
        pack,
        dict(documents=[torch.tensor([3, 4]), torch.tensor([5])], length=4),
        dict(
            documents=[
                torch.tensor([3, 4]),
                [],
                [torch.tensor([1.0, 2.0])],
                [torch.ones(2, 2, dtype=torch.long)],
                [torch.tensor([], dtype=torch.long)],
                ["ab"],
                None,
            ],
            length=SIZE,
            pad_id=ID,
            one_per_row=FLAG,
        ),
    ),
    Case(
        "packing",
        "document_mask",
        document_mask,
        dict(documents=SRC),
        dict(documents=LABELS[:2] + LABELS[3:]),  # alone, (2, 3) is a shape
    ),
    Case(
        "packing",
        "document_positions",
        document_positions,
        dict(documents=SRC),
        dict(documents=LABELS[:2] + LABELS[3:]),  # alone, (2, 3) is a shape
    ),
    Case(
        "packing",
        "document_labels",
        document_labels,
        dict(ids=SRC, end_id=2),
        dict(ids=IDS, end_id=ID),
    ),
    Case(
        "packing",
        "next_tokens",
        next_tokens,
        dict(ids=SRC, documents=SRC),
        dict(ids=IDS, documents=LABELS),
    ),
]

BAD = [
    pytest.param(case, arg, value, id=f"{case.name}-{arg}-{index}")
    for case in CASES
    for arg, values in case.bad.items()
    for index, value in enumerate(values)
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_case_succeeds_with_its_valid_arguments(case: Case):
    case.call(**case.valid)


def named(message: str, arg: str) -> bool:
    """The message starts with the argument's name (alone or in a list)."""
    names = message.split(":", 1)[0]
    return arg in re.split(r"[,.\s\[\]'\"]+", names)


@pytest.mark.parametrize(("case", "arg", "value"), BAD)
def test_a_bad_argument_raises_an_error_that_names_it(case: Case, arg: str, value):
    with pytest.raises((TypeError, ValueError)) as error:
        case.call(**{**case.valid, arg: value})
    message = str(error.value)
    assert named(message, arg), f"{arg} not named: {message}"
    assert "expected" in message, message
    assert "got" in message or "asked for" in message, message


def test_the_suite_covers_every_module_with_hundreds_of_cases():
    per_module: dict[str, int] = {}
    for param in BAD:
        case = param.values[0]
        per_module[case.module] = per_module.get(case.module, 0) + 1
    assert set(per_module) == {
        "engine",
        "positional",
        "embedding",
        "dropout",
        "masks",
        "attention",
        "layers",
        "model",
        "tasks",
        "train",
        "text",
        "lm",
        "packing",
        "fast_dropout",
        "debug",
        "config",
    }, per_module
    assert sum(per_module.values()) >= 400, per_module


# Inputs that look odd but are valid, with what they give.


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_narrow_integer_ids_give_what_int64_ids_give(dtype):
    model = tiny_model().eval()
    expected = model(SRC, TGT)
    assert torch.equal(model(SRC.to(dtype), TGT.to(dtype)), expected)
    assert torch.equal(padding_mask(SRC.to(dtype)), padding_mask(SRC))
    decoded = model.greedy_decode(SRC.to(dtype), bos_id=1, eos_id=2, max_len=4)
    assert torch.equal(decoded, model.greedy_decode(SRC, bos_id=1, eos_id=2, max_len=4))


def test_numpy_and_tensor_integers_are_sizes_and_numpy_floats_are_rates():
    torch.manual_seed(0)
    a = MultiHeadAttention(np.int64(8), torch.tensor(2), dropout=np.float32(0.25))
    assert (a.d_model, a.num_heads, a.dropout) == (8, 2, 0.25)
    assert isinstance(a.d_model, int) and isinstance(a.dropout, float)
    table = sinusoidal_encoding(np.int32(4), 8, base=np.float64(100.0))
    assert torch.equal(table, sinusoidal_encoding(4, 8, base=100.0))


def test_a_float_is_not_a_size_even_when_it_is_whole():
    with pytest.raises(TypeError, match=r"d_ff: expected an integer, got 16.0"):
        FeedForward(8, 16.0)


def test_bool_is_not_an_integer_and_an_integer_is_not_a_flag():
    with pytest.raises(TypeError, match=r"num_heads: expected an integer, got True"):
        MultiHeadAttention(8, True)
    with pytest.raises(TypeError, match=r"norm_first: expected True or False, got 1"):
        EncoderLayer(8, 2, 16, norm_first=1)


def test_ids_out_of_range_name_the_argument_and_the_range():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"src: expected ids in \[0, 13\), got ids"):
        model(ids([3, 13]), ids([1, 2]))
    with pytest.raises(ValueError, match=r"tgt: expected ids in \[0, 13\), got ids"):
        model(ids([3, 4]), ids([-1, 2]))


def test_attention_without_biases_loads_from_torch_without_biases():
    torch.manual_seed(0)
    ours = MultiHeadAttention(8, 2, bias=False).eval()
    theirs = nn.MultiheadAttention(8, 2, bias=False, batch_first=True).eval()
    load_torch_attention(ours, theirs)
    x = features(2, 3, 8)
    expected, _ = theirs(x, x, x, need_weights=False)
    torch.testing.assert_close(ours(x)[0], expected)
