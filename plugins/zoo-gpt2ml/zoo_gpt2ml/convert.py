"""Convert an official GPT2_ML TensorFlow checkpoint into a zoo model folder, streaming.

The 1.37B-parameter checkpoint is 5.5 GB; this converter never holds more than
a few of its tensors at once. It plans the whole output from the index first
(every tensor's name, shape, dtype and place in the output shards), then reads
the ``.data`` file front to back with :class:`~zoo_gpt2ml.tf_bundle.TFBundle`
and writes each converted tensor straight into the safetensors shard it
belongs to, hashing the ``.data`` bytes on the way for the model card.

Name map (TF ``newslm/...`` -> PyTorch state dict; TF Dense kernels are
[in, out], ``nn.Linear`` weights [out, in], hence the transposes)::

    embeddings/word_embed                   -> wte.weight            [vocab, H]
    embeddings/pos_embed                    -> wpe.weight            [max_pos, H]
    embeddings/LayerNorm_embed_norm/{gamma,beta} -> ln_embed.{weight,bias}
    layerNN/{query,key,value}_layer/kernelᵀ -> h.N.attn.qkv.weight   [3H, H] (q, k, v stacked)
    layerNN/{query,key,value}_layer/bias    -> h.N.attn.qkv.bias     [3H]
    layerNN/context_projection_layer        -> h.N.attn.proj
    layerNN/LayerNorm_mlp_ln0               -> h.N.ln_0
    layerNN/intermediate                    -> h.N.mlp.fc            [4H, H]
    layerNN/output                          -> h.N.mlp.proj          [H, 4H]
    layerNN/LayerNorm_mlp_ln1               -> h.N.ln_1

The output head is tied to ``wte``. Adafactor slots (``*/adafactor_v``,
``*/adafactor_vr``, ``*/adafactor_vc``) and ``global_step`` are skipped and
counted; any other tensor, a missing one or a wrong shape is an error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo_core import IntegrityError, ZooError, atomic_dir, sha256_file

from .tf_bundle import TFBundle, TensorEntry

ARCHITECTURE = "gpt2-ml"
SLOT_SUFFIXES = ("/adafactor_v", "/adafactor_vr", "/adafactor_vc")
NON_MODEL = ("global_step",)
HEAD_DIM = 64  # every released GPT2_ML/Grover config uses 64-dim heads
MAX_SHARD_BYTES = 2 * 10**9  # "2GB" as huggingface_hub counts it
LEGACY_BERT_VOCAB, LEGACY_ROWS = 21128, 21130  # the 100k-step model has 2 embedding rows the vocab never uses

# sha256 of the official .data files (the project README's table; gpt2-ml.md §6).
OFFICIAL_SHA256 = {
    "e698cc97a7f5f706f84f58bb469d614e51d3c0ce5f9ab9bf77e01e3fcb41d482":
        "official model.ckpt-220000 (30G corpus, CLUE vocab 8021)",
    "4a6e5124df8db7ac2bdd902e6191b807a6983a7f5d09fb10ce011f9a073b183e":
        "official model.ckpt-100000 (15G corpus, BERT vocab 21128)",
}

# sha256 of the .index that goes with each official .data: the v1.0 / v0.5 GitHub release assets, as
# copied into ghosthamlet/gpt2-ml-torch (models/mega-*-tok-tf/, 26,175 and 26,201 bytes), hashed here.
# The .index decides which bytes of .data become which tensor: an edited one (entries swapped, CRCs
# still valid) turns the official .data into other weights, so both files are checked.
OFFICIAL_INDEX_SHA256 = {
    "e698cc97a7f5f706f84f58bb469d614e51d3c0ce5f9ab9bf77e01e3fcb41d482":
        "8749abb13dec637a70defc741cb1e2612ec561bf7230ade6db413d96c6cd4f37",
    "4a6e5124df8db7ac2bdd902e6191b807a6983a7f5d09fb10ce011f9a073b183e":
        "196d1e8fb238bb7f1ca54eb5690705f44dce963602c82b88ad25341043e94782",
}

DTYPES = {  # accepted names -> (safetensors dtype, bytes per element)
    "float32": ("F32", 4), "float16": ("F16", 2), "bfloat16": ("BF16", 2),
}
DTYPE_ALIASES = {"fp32": "float32", "f32": "float32", "fp16": "float16", "half": "float16", "f16": "float16",
                 "bf16": "bfloat16"}

LAYER_PARTS = {  # PyTorch name inside h.{i} -> (op, TF names inside newslm/layerNN)
    "attn.qkv.weight": ("qkv", ("query_layer/kernel", "key_layer/kernel", "value_layer/kernel")),
    "attn.qkv.bias": ("cat", ("query_layer/bias", "key_layer/bias", "value_layer/bias")),
    "attn.proj.weight": ("t", ("context_projection_layer/kernel",)),
    "attn.proj.bias": ("copy", ("context_projection_layer/bias",)),
    "ln_0.weight": ("copy", ("LayerNorm_mlp_ln0/gamma",)),
    "ln_0.bias": ("copy", ("LayerNorm_mlp_ln0/beta",)),
    "mlp.fc.weight": ("t", ("intermediate/kernel",)),
    "mlp.fc.bias": ("copy", ("intermediate/bias",)),
    "mlp.proj.weight": ("t", ("output/kernel",)),
    "mlp.proj.bias": ("copy", ("output/bias",)),
    "ln_1.weight": ("copy", ("LayerNorm_mlp_ln1/gamma",)),
    "ln_1.bias": ("copy", ("LayerNorm_mlp_ln1/beta",)),
}
EMBED_PARTS = {
    "wte.weight": ("copy", ("newslm/embeddings/word_embed",)),
    "wpe.weight": ("copy", ("newslm/embeddings/pos_embed",)),
    "ln_embed.weight": ("copy", ("newslm/embeddings/LayerNorm_embed_norm/gamma",)),
    "ln_embed.bias": ("copy", ("newslm/embeddings/LayerNorm_embed_norm/beta",)),
}


@dataclass
class OutTensor:
    """One tensor of the output state dict and the checkpoint tensors it is made of."""

    name: str
    op: str  # copy | t (transpose a Dense kernel) | qkv (transpose and stack) | cat
    sources: tuple[str, ...]
    shape: tuple[int, ...] = ()
    shard: int = 0
    begin: int = 0  # byte offsets inside the shard's data section
    end: int = 0


@dataclass
class ConversionSummary:
    """What a conversion did; ``convert_checkpoint`` returns it, ``convert`` prints it."""

    out_dir: Path
    source: Path
    config: dict
    dtype: str
    vocab: Path
    vocab_tokens: int
    mapped: int  # checkpoint tensors that went into the model
    written: int  # state-dict tensors written
    skipped_slots: int  # Adafactor slot variables left out
    skipped_other: list[str] = field(default_factory=list)  # global_step
    global_step: int | None = None
    data_sha256: dict[str, str] = field(default_factory=dict)  # .data file name -> hex digest
    index_sha256: dict[str, str] = field(default_factory=dict)  # .index file name -> hex digest (always hashed)
    official: str | None = None  # which official release the .data sha256 matches
    shards: list[str] = field(default_factory=list)
    total_bytes: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        c = self.config
        out = [f"converted {self.source} -> {self.out_dir}",
               f"  model: {c['num_hidden_layers']} layers, hidden {c['hidden_size']}, "
               f"{c['num_attention_heads']} heads, "
               f"vocab rows {c['vocab_size']} ({self.vocab_tokens}-token vocab), {self.dtype}",
               f"  tensors: {self.mapped} mapped into {self.written}; skipped {self.skipped_slots} Adafactor slots"
               + (f" and {', '.join(self.skipped_other)}" if self.skipped_other else ""),
               f"  wrote {self.total_bytes / 1e6:,.1f} MB in {len(self.shards)} safetensors file(s) "
               f"in {self.seconds:.1f} s"]
        for name, digest in self.data_sha256.items():
            out.append(f"  sha256 {name}: {digest}" + (f" ({self.official})" if self.official else
                                                         " (not an official release file)"))
        for name, digest in self.index_sha256.items():
            out.append(f"  sha256 {name}: {digest}")
        return out


def normalise_dtype(dtype: str) -> str:
    """Canonical dtype name, or a clear error."""
    name = DTYPE_ALIASES.get(str(dtype).lower().removeprefix("torch."), str(dtype).lower().removeprefix("torch."))
    if name not in DTYPES:
        raise ZooError(f"unsupported output dtype {dtype!r}", hint="choose float32, float16 or bfloat16")
    return name


def parse_size(size: int | str) -> int:
    """Bytes from an int or a string like "2GB" / "500MB" (decimal units, as huggingface_hub)."""
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*", str(size), re.I)
    if not m:
        raise ZooError(f"cannot read the shard size {size!r}", hint='write it like "2GB" or "500MB"')
    unit = (m.group(2) or "B").upper()
    scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}[unit]
    return int(float(m.group(1)) * scale)


# ---------------------------------------------------------------------------
# Planning: from the index alone, before a byte of tensor data is read.

def classify(bundle: TFBundle) -> tuple[dict[str, TensorEntry], list[str], list[str]]:
    """Split the checkpoint into model tensors, optimizer slots and other known non-model entries.

    Raises on anything else, since a tensor we do not understand might be one
    the model needs.
    """
    model, slots, other, unknown = {}, [], [], []
    for name, e in bundle.entries.items():
        if name.endswith(SLOT_SUFFIXES):
            slots.append(name)
        elif name in NON_MODEL:
            other.append(name)
        elif name.startswith("newslm/"):
            model[name] = e
        else:
            unknown.append(name)
    if not model:
        raise ZooError("the checkpoint holds no newslm/... tensors: it is not a GPT2_ML (Grover) checkpoint",
                       where=str(bundle.index_path),
                       hint="pass the prefix of an official gpt2-ml checkpoint, e.g. model.ckpt-220000")
    if bundle.slice_keys:
        raise ZooError(f"the checkpoint holds {len(bundle.slice_keys)} partitioned tensor slices; "
                       "GPT2_ML checkpoints have none", where=str(bundle.index_path))
    if unknown:
        raise ZooError(f"{len(unknown)} tensor(s) the GPT2_ML converter does not know, e.g. "
                       + ", ".join(repr(n) for n in unknown[:5]),
                       where=str(bundle.index_path),
                       hint="this converter takes the released gpt2-ml checkpoints (model tensors, "
                            "Adafactor slots and global_step only)")
    return model, slots, other


def infer_config(model: dict[str, TensorEntry], *, num_heads: int | None = None, where: str = "") -> dict:
    """The GPT2MLConfig fields, read off the checkpoint's shapes."""
    def shape(name):
        if name not in model:
            raise ZooError(f"tensor {name!r} is missing from the checkpoint", where=where,
                           hint="the checkpoint is incomplete or not a GPT2_ML checkpoint")
        return model[name].shape

    vocab, hidden = _dims(shape("newslm/embeddings/word_embed"), 2, "newslm/embeddings/word_embed", where)
    max_pos, _ = _dims(shape("newslm/embeddings/pos_embed"), 2, "newslm/embeddings/pos_embed", where)
    layers = sorted({int(m.group(1)) for n in model if (m := re.match(r"newslm/layer(\d+)/", n))})
    if not layers or layers != list(range(len(layers))):
        raise ZooError(f"layer scopes are not numbered 0..N-1 (found {layers[:3]}...{layers[-3:]})"
                       if layers else "the checkpoint has no newslm/layerNN tensors", where=where,
                       hint="the checkpoint is incomplete or not a GPT2_ML checkpoint")
    _, inter = _dims(shape("newslm/layer00/intermediate/kernel"), 2, "newslm/layer00/intermediate/kernel", where)
    if num_heads is None:
        if hidden % HEAD_DIM:
            raise ZooError(f"hidden size {hidden} is not a multiple of {HEAD_DIM}, so the number of heads "
                           "cannot be inferred", where=where, hint="pass num_heads (--heads)")
        num_heads = hidden // HEAD_DIM
    if num_heads < 1 or hidden % num_heads:
        raise ZooError(f"{num_heads} heads do not divide hidden size {hidden}", where=where,
                       hint="pass a number of heads that divides the hidden size")
    return {
        "vocab_size": vocab, "max_position_embeddings": max_pos, "hidden_size": hidden,
        "num_hidden_layers": len(layers), "num_attention_heads": num_heads, "intermediate_size": inter,
        "layer_norm_eps": 1e-5, "initializer_range": 0.014142135623731, "pad_token_id": 0, "eos_token_id": 102,
    }


def _dims(shape, rank, name, where):
    if len(shape) != rank:
        raise ZooError(f"tensor {name!r} has shape {list(shape)}, expected rank {rank}", where=where)
    return shape


def expected_tf_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every model tensor of the checkpoint with the shape the config implies (TF layout)."""
    V, P, H = config["vocab_size"], config["max_position_embeddings"], config["hidden_size"]
    inner = config["intermediate_size"]
    shapes = {"newslm/embeddings/word_embed": (V, H), "newslm/embeddings/pos_embed": (P, H),
              "newslm/embeddings/LayerNorm_embed_norm/gamma": (H,),
              "newslm/embeddings/LayerNorm_embed_norm/beta": (H,)}
    for i in range(config["num_hidden_layers"]):
        s = f"newslm/layer{i:02d}/"
        for d in ("query_layer", "key_layer", "value_layer", "context_projection_layer"):
            shapes[s + d + "/kernel"], shapes[s + d + "/bias"] = (H, H), (H,)
        for ln in ("LayerNorm_mlp_ln0", "LayerNorm_mlp_ln1"):
            shapes[s + ln + "/gamma"] = shapes[s + ln + "/beta"] = (H,)
        shapes[s + "intermediate/kernel"], shapes[s + "intermediate/bias"] = (H, inner), (inner,)
        shapes[s + "output/kernel"], shapes[s + "output/bias"] = (inner, H), (H,)
    return shapes


def plan(bundle: TFBundle, model: dict[str, TensorEntry], config: dict, dtype: str,
         max_shard_bytes: int) -> list[OutTensor]:
    """Every output tensor with its shape, shard and byte range, in the order it will be written.

    A tensor is written as soon as the last checkpoint tensor it needs has
    been read, so the output follows the ``.data`` file's order and the shards
    are written front to back.
    """
    where = str(bundle.index_path)
    expected = expected_tf_shapes(config)
    missing = sorted(set(expected) - set(model))
    if missing:
        raise ZooError(f"{len(missing)} model tensor(s) missing from the checkpoint, e.g. {missing[0]!r}",
                       where=where, hint="the checkpoint is incomplete (or not a GPT2_ML checkpoint)")
    extra = sorted(set(model) - set(expected))
    if extra:
        raise ZooError(f"{len(extra)} newslm tensor(s) that GPT2_ML does not have, e.g. {extra[0]!r}", where=where,
                       hint="this is not a GPT2_ML checkpoint of the released architecture")
    for name, shape in expected.items():
        if tuple(model[name].shape) != shape:
            raise ZooError(f"tensor {name!r} has shape {list(model[name].shape)}, expected {list(shape)} "
                           f"for the config read off the checkpoint", where=where,
                           hint="the checkpoint is inconsistent or not a GPT2_ML checkpoint")
        if model[name].dtype != "float32":
            raise ZooError(f"tensor {name!r} is {model[name].dtype}; GPT2_ML checkpoints are float32", where=where)

    outs = [OutTensor(n, op, src) for n, (op, src) in EMBED_PARTS.items()]
    for i in range(config["num_hidden_layers"]):
        outs += [OutTensor(f"h.{i}.{n}", op, tuple(f"newslm/layer{i:02d}/{s}" for s in src))
                 for n, (op, src) in LAYER_PARTS.items()]
    for o in outs:
        shapes = [model[s].shape for s in o.sources]
        if o.op == "copy":
            o.shape = tuple(shapes[0])
        elif o.op == "t":
            o.shape = tuple(shapes[0][::-1])
        elif o.op == "qkv":
            o.shape = (3 * shapes[0][1], shapes[0][0])
        else:  # cat
            o.shape = (sum(s[0] for s in shapes),)

    position = {e.name: i for i, e in enumerate(bundle.file_order())}
    outs.sort(key=lambda o: max(position[s] for s in o.sources))
    itemsize = DTYPES[dtype][1]
    shard, used = 0, 0
    for o in outs:
        nbytes = int(np.prod(o.shape)) * itemsize
        if used and used + nbytes > max_shard_bytes:
            shard, used = shard + 1, 0
        o.shard, o.begin, o.end = shard, used, used + nbytes
        used += nbytes
    return outs


def shard_names(n: int) -> list[str]:
    """File names of n shards, as huggingface_hub names them."""
    return ["model.safetensors"] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]


def safetensors_header(tensors: list[OutTensor], dtype: str, metadata: dict[str, str]) -> bytes:
    """The 8-byte length plus JSON header of one shard, padded to 8 bytes as safetensors does."""
    header = {"__metadata__": metadata}
    for o in tensors:
        header[o.name] = {"dtype": DTYPES[dtype][0], "shape": list(o.shape), "data_offsets": [o.begin, o.end]}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


# ---------------------------------------------------------------------------
# Building output tensors as the checkpoint streams by.

class Assembler:
    """Turns checkpoint tensors into output tensors, in a few recycled buffers.

    A fresh 10-50 MB allocation per tensor costs page faults that make the
    copies 2-3x slower, so outputs are built in byte buffers that are reused.
    An output made of several checkpoint tensors (q/k/v -> qkv) keeps its
    buffer until its last part has arrived; that is the only state carried
    from one tensor to the next.
    """

    def __init__(self, dtype: str):
        import torch

        self.torch = torch
        self.dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
        self.free: list = []  # idle uint8 buffers
        self.pending: dict[str, tuple] = {}  # output name -> (tensor, buffer, names still missing)
        self.scratch = torch.empty(0)  # float32, for transposing before a cast

    def _take(self, nbytes: int):
        fits = [i for i, b in enumerate(self.free) if b.numel() >= nbytes]
        if fits:
            return self.free.pop(min(fits, key=lambda i: self.free[i].numel()))
        return self.torch.empty(nbytes, dtype=self.torch.uint8)

    def _transpose(self, out, src) -> None:
        if out.dtype == self.torch.float32:
            out.copy_(src.t())  # one strided copy into a warm buffer: ~3 GB/s on one core
            return
        if self.scratch.numel() < out.numel():  # casting while transposing is 2x slower than doing it in two steps
            self.scratch = self.torch.empty(out.numel())
        tmp = self.scratch[:out.numel()].view(out.shape)
        tmp.copy_(src.t())
        out.copy_(tmp)  # round-to-nearest-even, as torch casts

    def add(self, o: OutTensor, name: str, arr: np.ndarray) -> memoryview | None:
        """Put checkpoint tensor ``name`` (float32) into output ``o``.

        Returns ``o``'s bytes once its last part is in; they stay valid until
        the next call.
        """
        if o.op == "copy" and self.dtype == self.torch.float32:
            return memoryview(np.ascontiguousarray(arr)).cast("B")  # already the bytes to write
        nbytes = o.end - o.begin
        if o.name not in self.pending:
            buf = self._take(nbytes)
            self.pending[o.name] = (buf[:nbytes].view(self.dtype).view(o.shape), buf, set(o.sources))
        out, buf, missing = self.pending[o.name]
        src = self.torch.from_numpy(arr)
        j = o.sources.index(name)
        if o.op == "copy":
            out.copy_(src)
        elif o.op == "t":
            self._transpose(out, src)
        elif o.op == "qkv":  # part j of [q; k; v], each kernel [H_in, H_out] -> rows j*H_out...
            self._transpose(out[j * src.shape[1]:(j + 1) * src.shape[1]], src)
        else:  # cat of equal-length vectors
            out[j * src.shape[0]:(j + 1) * src.shape[0]].copy_(src)
        missing.discard(name)
        if missing:
            return None
        del self.pending[o.name]
        self.free.append(buf)  # reusable from the next call on, after the caller has written these bytes
        return memoryview(buf[:nbytes].numpy())


# ---------------------------------------------------------------------------

def count_vocab(path: Path) -> int:
    """Tokens in a vocab.txt, counted as the tokenizer reads it (the bert vocab has a U+2028 token)."""
    from .vocab import read_vocab

    return len(read_vocab(path))


def check_vocab(rows: int, tokens: int, vocab_path: Path, where: str) -> str:
    """Raise unless the vocab fits the embedding; return a note for the card."""
    if rows == tokens:
        return ""
    if rows == LEGACY_ROWS and tokens == LEGACY_BERT_VOCAB:
        return (f"The embedding has {rows} rows for the {tokens}-token BERT vocab, as in the released 100k-step "
                "checkpoint; the 2 extra rows are never produced by the tokenizer.")
    raise ZooError(f"the vocab has {tokens} tokens but the checkpoint's embedding has {rows} rows",
                   where=f"{where} with {vocab_path}",
                   hint="use --vocab clue for model.ckpt-220000 (8021 rows) and --vocab bert for "
                        "model.ckpt-100000 (21130 rows), or pass the vocab.txt the checkpoint was trained with")


def convert_checkpoint(source: str | os.PathLike, out_dir: str | os.PathLike, *, dtype: str = "float32",
                       vocab: str = "clue", num_heads: int | None = None, sha256: bool = True,
                       max_shard_size: int | str = MAX_SHARD_BYTES, progress: bool = True,
                       overwrite: bool = True) -> ConversionSummary:
    """Convert and return a :class:`ConversionSummary` (see :func:`convert`)."""
    from .vocab import resolve_vocab

    t0 = time.perf_counter()
    dtype = normalise_dtype(dtype)
    out_dir = Path(out_dir).expanduser().absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise ZooError("the output path exists and is not a folder", where=str(out_dir))
    if out_dir.exists() and not overwrite and any(out_dir.iterdir()):
        raise ZooError("the output folder already exists and is not empty", where=str(out_dir),
                       hint="pick another folder, delete it, or allow replacing it (--force)")
    bundle = TFBundle(source)
    where = str(bundle.index_path)
    model, slots, other = classify(bundle)
    config = infer_config(model, num_heads=num_heads, where=where)
    config = validate_config(config)
    vocab_path = Path(resolve_vocab(vocab))
    vocab_tokens = count_vocab(vocab_path)
    vocab_note = check_vocab(config["vocab_size"], vocab_tokens, vocab_path, where)
    outs = plan(bundle, model, config, dtype, parse_size(max_shard_size))
    n_shards = outs[-1].shard + 1
    names = shard_names(n_shards)
    by_source = {}
    for o in outs:
        for s in o.sources:
            by_source[s] = o

    summary = ConversionSummary(out_dir=out_dir, source=bundle.prefix, config=config, dtype=dtype,
                                vocab=vocab_path, vocab_tokens=vocab_tokens, mapped=len(model), written=len(outs),
                                skipped_slots=len(slots), skipped_other=sorted(other),
                                shards=names, total_bytes=sum(o.end - o.begin for o in outs))
    # atomic_dir: a temporary sibling folder that replaces out_dir only once complete (umask permissions);
    # on any exception, Ctrl-C and SIGTERM included, it is removed and out_dir is untouched.
    with atomic_dir(out_dir) as tmp:
        metadata = {"format": "pt", "architecture": ARCHITECTURE}
        wanted = set(model) | {n for n in other if n == "global_step"}
        total = sum(p.stat().st_size for p in bundle.data_paths) if sha256 else \
            sum(bundle.entries[n].size for n in wanted)
        bar = _progress(total, progress)
        assembler = Assembler(dtype)
        files = [None] * n_shards
        current = -1
        threads = torch_threads(1)  # copies are memory-bound; the other core hashes
        try:
            for e, arr in bundle.stream(wanted, sha256=sha256, reuse_buffers=True, on_bytes=bar.update):
                if e.name == "global_step":
                    summary.global_step = int(arr)
                    continue
                o = by_source[e.name]
                data = assembler.add(o, e.name, arr)
                del arr
                if data is None:
                    continue
                if o.shard != current:  # shards are planned in stream order, so this only moves forward
                    if current >= 0:
                        files[current].close()
                    current = o.shard
                    files[current] = open(tmp / names[current], "wb")
                    files[current].write(safetensors_header([x for x in outs if x.shard == current],
                                                            dtype, metadata))
                    data_start = files[current].tell()
                f = files[current]
                if f.tell() - data_start != o.begin or len(data) != o.end - o.begin:
                    raise AssertionError(f"{o.name} lands at {f.tell() - data_start}, planned {o.begin}")
                f.write(data)
                del data
            if current >= 0:
                files[current].close()
        finally:
            torch_threads(threads)
            bar.close()
            for f in files:
                if f is not None and not f.closed:
                    f.close()
        if assembler.pending or current != n_shards - 1:
            raise AssertionError(f"conversion ended with unfinished tensors {sorted(assembler.pending)[:3]}")

        summary.data_sha256 = {p.name: d for p, d in bundle.sha256.items()} if sha256 else {}
        summary.index_sha256 = {bundle.index_path.name: sha256_file(bundle.index_path)}
        matches = {OFFICIAL_SHA256[d] for d in summary.data_sha256.values() if d in OFFICIAL_SHA256}
        summary.official = matches.pop() if matches else None
        _check_official_index(summary, bundle.index_path)
        if n_shards > 1:
            index = {"metadata": {"total_size": summary.total_bytes},
                     "weight_map": {o.name: names[o.shard] for o in sorted(outs, key=lambda o: o.name)}}
            (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
        (tmp / "config.json").write_text(json.dumps({"architecture": ARCHITECTURE, **config}, indent=2) + "\n")
        shutil.copyfile(vocab_path, tmp / "vocab.txt")
        summary.seconds = time.perf_counter() - t0
        (tmp / "README.md").write_text(card(summary, vocab_note))
    summary.seconds = time.perf_counter() - t0
    return summary


def torch_threads(n: int) -> int:
    """Set torch's intra-op threads; returns the previous number."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    return previous


def validate_config(config: dict) -> dict:
    """Round-trip the fields through the model's config class, so both sides agree on them."""
    try:
        from .model import GPT2MLConfig
    except ImportError:  # the converter itself does not need the model
        return config
    known = {f.name for f in dataclasses.fields(GPT2MLConfig)}
    return dataclasses.asdict(GPT2MLConfig(**{k: v for k, v in config.items() if k in known}))


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="converting",
                disable=not enabled, file=sys.stderr, mininterval=0.5)


def _check_official_index(s: ConversionSummary, index_path: Path) -> None:
    """An official .data must come with its official .index, or the weights are not the published ones."""
    for data_digest in s.data_sha256.values():
        expected = OFFICIAL_INDEX_SHA256.get(data_digest)
        got = s.index_sha256[index_path.name]
        if expected is not None and got != expected:
            raise IntegrityError(
                f"{index_path.name} is not the .index of the {s.official} (sha256 {got}, expected {expected}); "
                "with the official .data it would map the bytes to other tensors",
                where=str(index_path),
                hint="download the .index (and .meta) again from the checkpoint's GitHub release; nothing was written")


def card(s: ConversionSummary, vocab_note: str = "") -> str:
    """The model card (README.md) of a converted folder."""
    from zoo_core import model_card

    if s.data_sha256:
        hashes = "\n".join(f"- `{n}`: sha256 `{d}`" for n, d in s.data_sha256.items())
        hashes += "\n\n" + (f"This matches the {s.official}." if s.official else
                            "This matches neither official release (model.ckpt-220000, model.ckpt-100000): "
                            "the weights are not the published ones.")
    else:
        hashes = "The .data file was not hashed during conversion (`--no-sha256`)."
    hashes += "\n\n" + "\n".join(f"- `{n}`: sha256 `{d}` (which bytes of .data become which tensor)"
                                  for n, d in s.index_sha256.items())
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    skipped = f"{s.skipped_slots} Adafactor slot variables and {', '.join(s.skipped_other) or 'nothing else'} skipped"
    notes = f"""## Conversion

- Source checkpoint: `{s.source.name}` (TensorFlow)
- Converted: {date}, by `zoo_gpt2ml.convert` (no TensorFlow), dtype **{s.dtype}**
- Training step (global_step): {s.global_step if s.global_step is not None else "not recorded"}
- Tensors: {s.mapped} checkpoint tensors mapped into {s.written}; {skipped}
- Vocabulary: `vocab.txt`, {s.vocab_tokens} tokens (BERT WordPiece, lower-cased, CJK characters one per token)

{vocab_note}

Source data file(s):

{hashes}

## Licence and origin

GPT2_ML (imcaspar/gpt2-ml) is released under the Apache-2.0 licence "for academic research purpose"; it is
derived from Grover (rowanz/grover). The output head is tied to the word embedding.
"""
    return model_card({"architecture": ARCHITECTURE, **s.config}, title="GPT2_ML (gpt2-ml), converted",
                      summary=f"A {s.config['num_hidden_layers']}-layer Chinese GPT-2 variant (Grover architecture: "
                              "post-LN blocks, embedding LayerNorm, no final LayerNorm) converted from its TensorFlow "
                              "checkpoint.",
                      license="apache-2.0", source=f"{s.source.name} (imcaspar/gpt2-ml)", notes=notes)


def convert(source: str, out_dir: str | os.PathLike, *, dtype: str = "float32", vocab: str = "clue",
            progress: bool = True, **options) -> Path:
    """Convert a GPT2_ML TensorFlow checkpoint into a zoo model folder and return the folder.

    ``source`` is the checkpoint prefix (``/x/model.ckpt-220000``; its ``.index``
    or its folder work too). ``dtype`` is float32, float16 or bfloat16;
    ``vocab`` is "clue", "bert" or a vocab.txt path. The folder gets sharded
    safetensors (≤ 2 GB each), config.json, vocab.txt and a README.md model
    card recording the source's sha256. It appears complete or not at all.

    Further options: ``num_heads`` (default hidden/64), ``sha256`` (hash the
    .data file in the same pass, default True), ``max_shard_size``,
    ``overwrite`` (default True: replace an existing folder atomically).
    """
    summary = convert_checkpoint(source, out_dir, dtype=dtype, vocab=vocab, progress=progress, **options)
    if progress:
        print("\n".join(summary.lines()), file=sys.stderr)
    return summary.out_dir
