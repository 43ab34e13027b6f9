"""The one redaction path: names that stand for secrets, the scrub of free text (as each output
escapes it), and every renderer and the checker going through them."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from dataclasses import replace
from html import escape
from pathlib import Path

import pytest

from harness.errors import FleetStartError
from harness.redaction import (
    MASKS,
    Masks,
    client_name,
    key_name,
    masked_batches,
    scrubbed,
)
from harness.report import html, json_report, junit, markdown
from harness.report.markdown import _cell
from harness.runner import MatrixReport
from harness.verdict import Burst, judge
from tests.unit.report.test_reports import run
from tests.unit.verdict.test_judge import burst, claim


def test_names_are_short_stable_digests() -> None:
    assert (
        client_name("abc") == "id:ba7816"
    )  # SHA-256("abc") = ba7816bf…: printf %s abc | sha256sum
    assert client_name("abc") == client_name("abc") != client_name("abd")
    assert key_name("abc") == key_name(b"abc") == "key:ba7816"
    assert key_name(b"\xff") == "key:" + hashlib.sha256(b"\xff").hexdigest()[:6]


def test_identities_are_named_and_other_secrets_hidden() -> None:
    masks = Masks()
    masks.identities(["tok_live_1234", "abc"])  # "abc": too short to be a secret
    masks.secrets(["s3cr3t-header"])
    text = "client tok_live_1234 sent s3cr3t-header; abc stays"
    assert masks.scrub(text) == f"client {client_name('tok_live_1234')} sent ***; abc stays"


def test_the_longest_secret_goes_first() -> None:
    masks = Masks()
    masks.identities(["client-x-1", "client-x-10"])
    assert masks.scrub("client-x-10 client-x-1") == (
        f"{client_name('client-x-10')} {client_name('client-x-1')}"
    )


def test_a_secret_is_scrubbed_as_each_output_escapes_it() -> None:
    value = 'tok_<a&"b">/é'
    masks = Masks()
    masks.identities([value])
    name = client_name(value)
    for escaped in (escape, _cell, json_report.json_escaped):
        assert masks.scrub(f"x {escaped(value)} y", escaped) == f"x {escaped(name)} y"
    assert masks.scrub("GET /users/tok_%3Ca%26%22b%22%3E%2F%C3%A9/") == f"GET /users/{name}/"
    masks.secrets(["pass_word"])
    assert masks.scrub("a pass\\_word", _cell) == "a \\*\\*\\*"  # what stands for it, escaped


def test_a_url_is_shown_redacted_and_its_password_hidden_elsewhere() -> None:
    url = "redis://default:defpass@127.0.0.1:6379/0"
    masks = Masks()
    masks.url(url)
    shown = "redis://default:***@127.0.0.1:6379/0"
    assert masks.scrub(f"{url} and {shown}: auth defpass") == f"{shown} and {shown}: auth ***"


def test_request_values_are_hidden_but_not_the_labels_beside_an_identity() -> None:
    masks = Masks()
    masks.request(["static-api-key-9", "Bearer {identity}", "sig-0123456789.{identity}", ""])
    text = "static-api-key-9 Bearer sig-0123456789."
    assert masks.scrub(text) == "*** Bearer ***"


def test_identity_values_are_masked_as_they_are_drawn() -> None:
    values = [[f"tok_{secrets.token_hex(4)}"], [f"tok_{secrets.token_hex(4)}"]]
    batches = masked_batches(iter(values))
    first = next(batches)
    assert first[0] in MASKS.known() and values[1][0] not in MASKS.known()


def test_the_console_stream_writes_what_the_scrub_leaves() -> None:
    token = f"tok_{secrets.token_hex(6)}"
    MASKS.identities([token])
    inner = io.StringIO()
    stream = scrubbed(inner)
    stream.write(f"hint: client {token} of burst 1\n")
    stream.flush()
    assert inner.getvalue() == f"hint: client {client_name(token)} of burst 1\n"
    assert not stream.isatty()


def two_clients(tokens: list[str]) -> list[Burst]:
    """One burst of two clients: the first admitted past the limit."""
    over, fair = burst({"w1": (130, 70), "w2": (114, 86)}), burst({"w1": (60, 140)})
    return [
        replace(over, value=tokens[0], round=1),
        replace(fair, value=tokens[1], round=1, identity="127.0.0.3"),
    ]


def test_the_checker_names_a_client_by_its_digest() -> None:
    tokens = [f"tok_{secrets.token_hex(6)}" for _ in range(2)]
    v = judge(two_clients(tokens), claim(window="sliding"))
    assert v.kind == "fail" and f"client {client_name(tokens[0])} of burst 1" in v.reason
    assert not any(t in v.reason + v.hint for t in tokens)


def test_every_report_names_clients_by_digest_and_scrubs_free_text(tmp_path: Path) -> None:
    tokens = [f"tok_{secrets.token_hex(6)}" for _ in range(2)]
    MASKS.identities(tokens)
    report = MatrixReport(runs=[run(two_clients(tokens))])
    # A secret in free text (an app's log tail in an error): scrubbed on the way out.
    report.error = FleetStartError(f"worker said {tokens[1]}", f"log: {tokens[0]} & <{tokens[1]}>")
    texts = [
        html.render(report, 1),
        junit.render(report, 1),
        markdown.render(report, 1),
    ]
    json_report.write_json(report, 1, tmp_path / "r.json")
    texts.append((tmp_path / "r.json").read_text())
    for text in texts:
        assert not any(t in text or t.replace("_", "\\_") in text for t in tokens), text
        assert client_name(tokens[1]) in text
    bursts = json.loads(texts[-1])["runs"][0]["bursts"]
    assert [b["client"] for b in bursts] == [client_name(t) for t in tokens]
    assert all("value" not in b for b in bursts)


@pytest.mark.parametrize("masks", [Masks(), Masks(min_length=1)])
def test_nothing_known_nothing_changed(masks: Masks) -> None:
    assert masks.scrub("any text, *** and id:123456") == "any text, *** and id:123456"
