"""Every tab of `zoo serve` is an HTTP endpoint: called with gradio_client and plain HTTP, as the README shows.

Bad input comes back as a message saying what was wrong and what to do, and the server keeps serving.
"""

from __future__ import annotations

import json
import threading

import httpx
import numpy as np
import pytest
from conftest import MAX_PIXELS, picture
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

ENDPOINTS = {"/nice_mnist_sample", "/ganqp_mnist_sample", "/ogan_mnist_sample", "/ogan_mnist_reconstruct",
             "/ogan_mnist_interpolate", "/gpt2_ml_generate", "/dgcnn_cloze_answer", "/sgns_peoples_daily_similar",
             "/sgns_peoples_daily_analogy", "/zhidao_tags_tags", "/lenet_mnist_classify",
             "/lenet_mnist_classify_picture"}


def error_of(client, *args, api_name):
    with pytest.raises(AppError) as info:
        client.predict(*args, api_name=api_name)
    return str(info.value)


def test_every_available_model_has_its_endpoints_and_no_other(client):
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ENDPOINTS


def test_sample_grids_follow_the_seed(client):
    a = np.asarray(Image.open(client.predict(3, 16, 0.75, api_name="/nice_mnist_sample")))
    assert a.shape == (4 * 30 + 2, 4 * 30 + 2)  # 4 x 4 tiles of 28 px, 2 px apart
    assert np.array_equal(a, np.asarray(Image.open(client.predict(3, 16, 0.75, api_name="/nice_mnist_sample"))))
    assert not np.array_equal(a, np.asarray(Image.open(client.predict(4, 16, 0.75, api_name="/nice_mnist_sample"))))
    g = np.asarray(Image.open(client.predict(0, 9, api_name="/ganqp_mnist_sample")))
    assert g.shape == (3 * 34 + 2, 3 * 34 + 2)  # 3 x 3 tiles of 32 px


def test_ogan_reconstructs_and_interpolates_uploads(client, tmp_path):
    digit = picture(tmp_path / "one.png", digit="1")
    pair, mse = client.predict(handle_file(digit), False, api_name="/ogan_mnist_reconstruct")
    assert np.asarray(Image.open(pair)).shape == (34 + 2, 2 * 34 + 2)  # the picture and its reconstruction
    assert mse > 0
    other = picture(tmp_path / "grey.png")
    strip = client.predict(handle_file(digit), handle_file(other), 5, False, api_name="/ogan_mnist_interpolate")
    assert np.asarray(Image.open(strip)).shape == (34 + 2, 5 * 34 + 2)


def test_word2vec_and_tags_answer(client):
    nearest = client.predict("北京", 3, api_name="/sgns_peoples_daily_similar")
    assert [row[0] for row in nearest["data"]][0] in {"中国", "东京", "巴黎"}
    analogy = client.predict("中国", "北京", "日本", 3, api_name="/sgns_peoples_daily_analogy")
    assert analogy["data"][0][0] == "东京"  # 北京 - 中国 + 日本
    tags = client.predict("电脑怎么", 3, api_name="/zhidao_tags_tags")
    assert tags["label"] == "电脑"


def test_dgcnn_says_what_and_where(client):
    passages = "北京是中国的首都。\n上海是一个城市。"
    answer, score, where, marked = client.predict("中国的首都是哪里", passages, api_name="/dgcnn_cloze_answer")
    assert answer and answer in passages and score > 0
    number = 1 if answer in passages.splitlines()[0] else 2
    start = passages.splitlines()[number - 1].find(answer) + 1
    chars = f"character {start}" if len(answer) == 1 else f"characters {start}-{start + len(answer) - 1}"
    assert f"passage {number}, {chars}" in where
    assert [s["token"] for s in marked if s["class_or_confidence"] == "answer"][0] == answer


def test_gpt2ml_streams_a_reproducible_continuation(client):
    job = client.submit("今天天气", 8, 0, 0.95, 1.0, 7, api_name="/gpt2_ml_generate")
    final = job.result()
    steps = job.outputs()
    assert steps[0] == "今天天气" and final == steps[-1] and len(steps) >= 3
    assert all(later.startswith(earlier) for earlier, later in zip(steps, steps[1:]))  # streamed, token by token
    assert client.predict("今天天气", 8, 0, 0.95, 1.0, 7, api_name="/gpt2_ml_generate") == final
    top1 = client.predict("今天天气", 6, 1, 1.0, 1.0, 1, api_name="/gpt2_ml_generate")
    assert client.predict("今天天气", 6, 1, 1.0, 1.0, 2, api_name="/gpt2_ml_generate") == top1  # top-k 1 is greedy


@pytest.mark.parametrize(("args", "api_name", "expected"), [
    (("", 8, 0, 0.95, 1.0, 1), "/gpt2_ml_generate", "the prompt is empty"),
    (("今天" * 70, 8, 0, 0.95, 1.0, 1), "/gpt2_ml_generate", "the model reads at most 128"),
    (("今天天气", 200, 0, 0.95, 1.0, 1), "/gpt2_ml_generate", "ask for at most 124 new tokens"),
    (("  ", "北京是中国的首都。"), "/dgcnn_cloze_answer", "the question is empty"),
    (("中国的首都是哪里", ""), "/dgcnn_cloze_answer", "there is no passage to read"),
    (("火星", 3), "/sgns_peoples_daily_similar", "unknown word '火星'"),
    (("", 3), "/zhidao_tags_tags", "the question is empty"),
    (("hello", 3), "/zhidao_tags_tags", "none of the question's characters"),
])
def test_bad_input_gets_a_message_and_the_server_keeps_serving(client, args, api_name, expected):
    message = error_of(client, *args, api_name=api_name)
    assert expected in message and "Traceback" not in message
    assert "Next:" in message or "next" in message.lower()
    assert client.predict(1, 4, 0.75, api_name="/nice_mnist_sample")


def test_uploads_that_are_not_pictures_or_too_many_pixels_are_refused(client, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture at all\n" * 20)
    assert "is not a picture this server can read" in error_of(client, handle_file(text), False,
                                                               api_name="/ogan_mnist_reconstruct")
    side = int(MAX_PIXELS ** 0.5) + 200  # a few kilobytes of PNG that would decode to more than the limit
    bomb = tmp_path / "bomb.png"
    Image.new("1", (side, side)).save(bomb)
    assert bomb.stat().st_size < 50_000
    message = error_of(client, handle_file(bomb), api_name="/lenet_mnist_classify_picture")
    assert f"declares {side} x {side} pixels" in message and "--max-pixels" in message
    whole = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)).save(whole)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert "damaged" in error_of(client, handle_file(truncated), False, api_name="/ogan_mnist_reconstruct")
    assert client.predict(handle_file(picture(tmp_path / "ok.png", digit="1")), False,
                          api_name="/ogan_mnist_reconstruct")


def test_an_upload_past_the_byte_limit_is_refused_by_the_server(server, client):
    big = np.random.default_rng(0).integers(0, 256, 2 * 2**20, dtype=np.uint8).tobytes()  # 2 MiB > 1 MiB
    r = httpx.post(f"{server.url}/gradio_api/upload", files={"files": ("big.png", big, "image/png")}, timeout=30)
    assert r.status_code == 413 and "max" in r.text.lower()
    assert client.predict(2, 4, 0.75, api_name="/nice_mnist_sample")


def test_concurrent_requests_from_several_clients_all_get_their_answer(server):
    from gradio_client import Client

    results, errors = {}, []

    def call(i):
        try:
            c = Client(server.url, verbose=False)
            if i % 2:
                results[i] = c.predict("今天天气", 6, 0, 0.95, 1.0, i, api_name="/gpt2_ml_generate")
            else:
                results[i] = np.asarray(Image.open(c.predict(i, 4, 0.75, api_name="/nice_mnist_sample")))
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(f"{i}: {exc!r}")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 6
    for i in range(1, 6, 2):  # each got its own seed's text, as a lone request would
        assert results[i] == Client(server.url, verbose=False).predict("今天天气", 6, 0, 0.95, 1.0, i,
                                                                      api_name="/gpt2_ml_generate")


def test_plain_http_as_the_readme_shows(server):
    """POST the inputs, then read the result from the event stream (the README's curl lines)."""
    r = httpx.post(f"{server.url}/gradio_api/call/sgns_peoples_daily_analogy",
                   json={"data": ["中国", "北京", "日本", 1]}, timeout=30)
    event_id = r.json()["event_id"]
    stream = httpx.get(f"{server.url}/gradio_api/call/sgns_peoples_daily_analogy/{event_id}", timeout=60).text
    lines = stream.splitlines()
    assert "event: complete" in lines
    data = json.loads(lines[lines.index("event: complete") + 1].removeprefix("data: "))
    assert data[0]["data"] == [["东京", pytest.approx(data[0]["data"][0][1])]]
    r = httpx.post(f"{server.url}/gradio_api/call/dgcnn_cloze_answer", json={"data": ["", "x"]}, timeout=30)
    stream = httpx.get(f"{server.url}/gradio_api/call/dgcnn_cloze_answer/{r.json()['event_id']}", timeout=60).text
    assert "event: error" in stream and "the question is empty" in stream
