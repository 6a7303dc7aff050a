"""No wait for the device: a training step and a cached generation step of
each model read no tensor value outside debug mode (docs/checks.md, "No wait
for the device"). On a GPU session the steps run on the GPU; elsewhere on the
meta device, which has shapes and no values, so that any read is counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from literate_transformer.attention import KVCache
from literate_transformer.debug import set_debug
from literate_transformer.engine import use_engine
from literate_transformer.lm import TransformerLM
from literate_transformer.masks import attention_mask, padding_mask
from literate_transformer.model import Transformer

SCALAR = torch.ops.aten._local_scalar_dense.default
READS = {SCALAR, torch.ops.aten.nonzero.default, torch.ops.aten.equal.default}


class Reads(TorchDispatchMode):
    """Counts the operators that read values (answering them with 0 on meta)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        boolean_index = func is torch.ops.aten.index.Tensor and any(
            i is not None and i.dtype == torch.bool for i in args[1]
        )
        if func in READS or boolean_index:
            self.seen.append(str(func))
            if func is SCALAR and args[0].device.type == "meta":
                return 0
        return func(*args, **(kwargs or {}))


@contextmanager
def debug(on: bool) -> Iterator[None]:
    previous = set_debug(on)
    try:
        yield
    finally:
        set_debug(previous)


@pytest.fixture
def where(device: torch.device) -> torch.device:
    return torch.device("meta") if device.type == "cpu" else device


def models(where: torch.device, **options) -> tuple[Transformer, TransformerLM]:
    torch.manual_seed(0)
    sizes = dict(d_model=16, num_heads=2, d_ff=32, dropout=0.1)
    seq2seq = Transformer(20, 20, max_len=16, **sizes, **options)
    lm = TransformerLM(20, max_len=16, pad_id=None, **sizes, **options)
    return seq2seq.to(where), lm.to(where)


def steps(where: torch.device) -> dict[str, list[str]]:
    """The reads of each step: name -> the operators that read."""
    seq2seq, lm = models(where)
    src = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]], device=where)
    work: dict[str, Callable[[], object]] = {
        "Transformer training step": lambda: seq2seq(src, src).sum().backward(),
        "TransformerLM training step": lambda: lm(src).sum().backward(),
        "TransformerLM.generate, 2 tokens": lambda: lm.generate(src, 2),
    }
    found = {}
    for name, run in work.items():
        with Reads() as reads:
            run()
        found[name] = reads.seen
    seq2seq.eval()
    with torch.no_grad(), Reads():  # the first target token fills the caches
        src_mask = attention_mask(padding_mask(src))
        memory = seq2seq.encoder(src, src_mask)
        caches = [(KVCache(), KVCache(fixed=True)) for _ in seq2seq.decoder.layers]
        seq2seq.decoder(src[:, :1], memory, None, src_mask, cache=caches)
    with torch.no_grad(), Reads() as reads:
        seq2seq.decoder(src[:, 1:2], memory, None, src_mask, cache=caches)
    found["Transformer cached decoder step"] = reads.seen
    return found


def test_no_step_reads_a_value_outside_debug_mode(where):
    with debug(False):
        found = steps(where)
    assert found and all(not reads for reads in found.values()), found


def test_the_count_sees_the_checks_of_contents_in_debug_mode(where):
    """The counter is not blind: with set_debug(True) the checks of id and
    position ranges read values, in every step."""
    with debug(True):
        found = steps(where)
    assert all(SCALAR.__name__ in " ".join(reads) for reads in found.values()), found


def test_the_engine_reads_the_mask(where):
    """The engine's gathered rows have a size only the mask's values tell: it
    reads them, on purpose (it is off by default)."""
    seq2seq, lm = models(where)
    use_engine(seq2seq)
    use_engine(lm)
    src = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]], device=where)
    with debug(False), Reads() as reads:
        try:
            seq2seq(src, src)
        except NotImplementedError:  # meta: rows cannot be gathered without values
            assert where.type == "meta"
    assert reads.seen
    with debug(False), Reads() as reads:
        lm(src).sum().backward()  # nothing to skip without padding: no read
    assert not reads.seen
