"""Write the tiny GPT2_ML TensorFlow checkpoints used by the tests, with TensorFlow itself.

Run it in a separate venv so TensorFlow stays out of the project's::

    python3 -m venv .venv-tf && .venv-tf/bin/pip install tensorflow-cpu numpy safetensors
    .venv-tf/bin/python plugins/zoo-gpt2ml/scripts/make_tf_fixtures.py [OUT_DIR]

For each fixture it builds the GPT2_ML forward pass as a TF1 graph under the
variable scopes of the released checkpoints (``newslm/embeddings/word_embed``,
``newslm/layer00/query_layer/kernel``, ...), adds Adafactor slot variables
(``<var>/adafactor_v`` for 1-D variables, ``/adafactor_vr`` and
``/adafactor_vc`` for 2-D ones) and ``global_step``, saves it with
``tf.compat.v1.train.Saver`` and records TensorFlow's own logits for a few
token sequences in ``reference.safetensors`` (``input_ids`` int64 [B, T],
``logits`` float32 [B, T, vocab]).

The model follows the description in the project's reference notes
(gpt2-ml.md §2): embedding LayerNorm; no LayerNorm before attention; LN0 before
the feed-forward; LN1 after adding the feed-forward output to the
un-normalised residual; exact erf GELU; LayerNorm eps 1e-5; causal mask
``scores * mask - 1e10 * (1 - mask)``; head tied to the word embedding with no
bias; no final LayerNorm.

The ``.index`` of the legacy fixture is rewritten with snappy-compressed,
smaller blocks (several data blocks, restart interval 16) the way TensorFlow
1.x wrote the released checkpoints, and TensorFlow then reads it back to
prove the rewrite is a valid checkpoint. That step needs ``cramjam`` and
``google-crc32c`` in the TensorFlow venv too.

The hidden size is far below 64 per head so that the committed files stay
around 2 MB in all; the vocabularies are the real sizes (8021 rows for the
CLUE vocab, 21130 rows for the legacy BERT-vocab checkpoint).
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

FIXTURES = {
    # name: shape of the model, step number, which vocab it pairs with, test inputs
    "clue-h16": dict(vocab_size=8021, max_pos=16, hidden=16, heads=2, inter=64, layers=2,
                     step=220000, vocab="clue", seed=1,
                     input_ids=[[101, 2769, 4263, 1, 545, 6294], [8020, 0, 102, 3000, 7, 4000]]),
    # The 2019 checkpoints were written by TensorFlow 1.x, whose index blocks are
    # snappy-compressed; TensorFlow 2 no longer compresses them, so this fixture's
    # index is re-encoded the TF1 way (see snappy_index) and checked with TF.
    "legacy-h8": dict(vocab_size=21130, max_pos=8, hidden=8, heads=2, inter=32, layers=2,
                      step=100000, vocab="bert", seed=2, snappy_index=True,
                      input_ids=[[21129, 511, 100, 21127, 3]]),
}


def build_and_save(name: str, spec: dict, out_root: Path) -> None:
    import tensorflow.compat.v1 as tf
    from safetensors.numpy import save_file

    rng = np.random.default_rng(spec["seed"])
    H, V, P, I, L, nh = (spec[k] for k in ("hidden", "vocab_size", "max_pos", "inter", "layers", "heads"))
    hd = H // nh

    graph = tf.Graph()
    with graph.as_default():
        def var(name, shape, kind):
            # Values far from the defaults (gamma=1, beta=0, zero biases) so that a
            # converter that mixes up or drops a tensor cannot match the logits.
            if kind == "gamma":
                value = 1.0 + 0.2 * rng.standard_normal(shape)
            elif kind in ("beta", "bias"):
                value = 0.1 * rng.standard_normal(shape)
            else:
                value = (0.5 / np.sqrt(shape[0])) * rng.standard_normal(shape) if kind == "kernel" \
                    else 0.3 * rng.standard_normal(shape)
            return tf.get_variable(name, shape, tf.float32,
                                   initializer=tf.constant_initializer(value.astype(np.float32)))

        def layer_norm(x, scope):
            with tf.variable_scope(scope):
                gamma = var("gamma", [H], "gamma")
                beta = var("beta", [H], "beta")
            mean = tf.reduce_mean(x, axis=-1, keepdims=True)
            variance = tf.reduce_mean(tf.square(x - mean), axis=-1, keepdims=True)
            return (x - mean) * tf.rsqrt(variance + 1e-5) * gamma + beta

        def dense(x, scope, n_in, n_out):
            with tf.variable_scope(scope):
                kernel = var("kernel", [n_in, n_out], "kernel")  # TF layout [in, out]
                bias = var("bias", [n_out], "bias")
            return tf.tensordot(x, kernel, axes=[[-1], [0]]) + bias

        ids = tf.placeholder(tf.int32, [None, None], name="input_ids")
        T = tf.shape(ids)[1]
        with tf.variable_scope("newslm"):
            with tf.variable_scope("embeddings"):
                word_embed = var("word_embed", [V, H], "embed")
                pos_embed = var("pos_embed", [P, H], "embed")
                h = tf.gather(word_embed, ids) + pos_embed[None, :T]
                h = layer_norm(h, "LayerNorm_embed_norm")
            # mask[i, j] = 1 where token i may attend to token j (j <= i)
            mask = tf.linalg.band_part(tf.ones([T, T]), -1, 0)
            for i in range(L):
                with tf.variable_scope(f"layer{i:02d}"):
                    def heads(t):  # [B, T, H] -> [B, heads, T, head_dim]
                        return tf.transpose(tf.reshape(t, [tf.shape(t)[0], T, nh, hd]), [0, 2, 1, 3])
                    q = heads(dense(h, "query_layer", H, H))
                    k = heads(dense(h, "key_layer", H, H))
                    v = heads(dense(h, "value_layer", H, H))
                    scores = tf.matmul(q, k, transpose_b=True) / np.sqrt(hd).astype(np.float32)
                    scores = scores * mask - 1e10 * (1.0 - mask)
                    ctx = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
                    ctx = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [tf.shape(h)[0], T, H])
                    x = h + dense(ctx, "context_projection_layer", H, H)  # no LayerNorm before attention
                    x_norm = layer_norm(x, "LayerNorm_mlp_ln0")
                    f = dense(x_norm, "intermediate", H, I)
                    f = 0.5 * f * (1.0 + tf.math.erf(f / np.sqrt(2.0).astype(np.float32)))  # exact GELU
                    f = dense(f, "output", I, H)
                    h = layer_norm(x + f, "LayerNorm_mlp_ln1")  # residual of the un-normalised x
            logits = tf.tensordot(h, word_embed, axes=[[-1], [1]])  # tied head, no bias, no final LN

        model_vars = tf.global_variables()
        slots = []
        for v in model_vars:  # Adafactor keeps factored second moments for matrices
            base = v.op.name
            if len(v.shape) == 2:
                rows, cols = (int(d) for d in v.shape)
                slots.append(tf.get_variable(f"{base}/adafactor_vr", [rows], tf.float32,
                                             initializer=tf.constant_initializer(rng.random(rows).astype(np.float32)),
                                             trainable=False))
                slots.append(tf.get_variable(f"{base}/adafactor_vc", [cols], tf.float32,
                                             initializer=tf.constant_initializer(rng.random(cols).astype(np.float32)),
                                             trainable=False))
            else:
                n = int(v.shape[0])
                slots.append(tf.get_variable(f"{base}/adafactor_v", [n], tf.float32,
                                             initializer=tf.constant_initializer(rng.random(n).astype(np.float32)),
                                             trainable=False))
        global_step = tf.train.get_or_create_global_step()
        set_step = tf.assign(global_step, spec["step"])
        saver = tf.train.Saver()

        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(set_step)
            out = out_root / name
            if out.exists():
                shutil.rmtree(out)
            out.mkdir(parents=True)
            prefix = saver.save(sess, str(out / "model.ckpt"), global_step=spec["step"], write_meta_graph=False)
            # TensorFlow writes absolute paths here; relative ones keep the fixture movable.
            (out / "checkpoint").write_text(f'model_checkpoint_path: "{Path(prefix).name}"\n'
                                            f'all_model_checkpoint_paths: "{Path(prefix).name}"\n')
            input_ids = np.asarray(spec["input_ids"], dtype=np.int64)
            ref = sess.run(logits, {ids: input_ids.astype(np.int32)})
            saved = sess.run({v.op.name: v for v in model_vars + slots + [global_step]})
        save_file({"input_ids": input_ids, "logits": ref.astype(np.float32)}, str(out / "reference.safetensors"),
                  metadata={"producer": f"tensorflow {tf.VERSION}", "script": "make_tf_fixtures.py"})
        if spec.get("snappy_index"):
            snappy_index(Path(f"{prefix}.index"))
            reader = tf.train.load_checkpoint(prefix)  # TensorFlow must still read every tensor back
            assert sorted(reader.get_variable_to_shape_map()) == sorted(saved)
            for var_name, value in saved.items():
                assert np.array_equal(reader.get_tensor(var_name), value), var_name
        n_model, n_slots = len(model_vars), len(slots)
        (out / "fixture.json").write_text(json.dumps({
            "prefix": f"model.ckpt-{spec['step']}", "vocab": spec["vocab"], "vocab_size": V,
            "max_position_embeddings": P, "hidden_size": H, "num_attention_heads": nh,
            "intermediate_size": I, "num_hidden_layers": L, "model_tensors": n_model,
            "slot_tensors": n_slots, "global_step": spec["step"], "tensorflow": tf.VERSION,
        }, indent=2) + "\n")
        print(f"{name}: {n_model} model tensors, {n_slots} slots + global_step -> {out}")


# -- LevelDB table re-encoding (TF1 layout of the .index file) -----------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _table_pairs(buf: bytes) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of an uncompressed TF2 index: follow index block -> data blocks."""
    def block(off, size):
        assert buf[off + size] == 0, "expected an uncompressed TF2 index"
        return buf[off:off + size]

    def pairs(b):
        (nr,) = struct.unpack_from("<I", b, len(b) - 4)
        limit, pos, key, out = len(b) - 4 - 4 * nr, 0, b"", []
        while pos < limit:
            shared, pos = _read_varint(b, pos)
            nonshared, pos = _read_varint(b, pos)
            vlen, pos = _read_varint(b, pos)
            key = key[:shared] + b[pos:pos + nonshared]
            pos += nonshared
            out.append((key, b[pos:pos + vlen]))
            pos += vlen
        return out

    footer = buf[-48:]
    _, p = _read_varint(footer, 0)
    _, p = _read_varint(footer, p)
    ioff, p = _read_varint(footer, p)
    isize, _ = _read_varint(footer, p)
    result = []
    for _, handle in pairs(block(ioff, isize)):
        off, p = _read_varint(handle, 0)
        size, _ = _read_varint(handle, p)
        result += pairs(block(off, size))
    return result


def _encode_block(pairs: list[tuple[bytes, bytes]], restart_interval: int = 16) -> bytes:
    out, restarts, last = bytearray(), [], b""
    for i, (key, value) in enumerate(pairs):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(last), len(key)) and last[shared] == key[shared]:
                shared += 1
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        last = key
    restarts = restarts or [0]
    return bytes(out) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def snappy_index(path: Path, block_bytes: int = 1024) -> None:
    """Rewrite a TF2 .index with ~1 KB snappy-compressed data blocks, as TensorFlow 1.x stored them."""
    import cramjam
    import google_crc32c

    def masked(data: bytes) -> int:
        crc = google_crc32c.value(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    pairs = _table_pairs(path.read_bytes())
    out = bytearray()

    def put(block: bytes, compress: bool) -> bytes:
        stored = bytes(cramjam.snappy.compress_raw(block)) if compress else block
        kind = b"\x01" if compress else b"\x00"
        handle = _varint(len(out)) + _varint(len(stored))
        out.extend(stored + kind + struct.pack("<I", masked(stored + kind)))
        return handle

    index, chunk, size = [], [], 0
    for key, value in pairs:
        chunk.append((key, value))
        size += len(key) + len(value)
        if size >= block_bytes:
            index.append((chunk[-1][0], put(_encode_block(chunk), True)))
            chunk, size = [], 0
    if chunk:
        index.append((chunk[-1][0], put(_encode_block(chunk), True)))
    meta_handle = put(_encode_block([]), False)
    index_handle = put(_encode_block(index, restart_interval=1), True)
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", 0xDB4775248B80FB57)
    path.write_bytes(bytes(out) + footer)


def main(argv: list[str]) -> int:
    out_root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "tests" / "fixtures"
    for name, spec in FIXTURES.items():
        build_and_save(name, spec, out_root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
