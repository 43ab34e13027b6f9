"""Request templates and status sets: what clients send, and how answers are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.http.request_template import (
    RequestTemplate,
    Statuses,
    checked_statuses,
    parse_body,
    parse_header,
    parse_method,
    parse_statuses,
    read_identities,
)
from harness.scenario import load_scenarios


def test_a_template_fills_every_identity_placeholder() -> None:
    t = RequestTemplate(
        "PUT", "/users/{identity}/", (("X-Api-Key", "key-{identity}"),), '{"user": "{identity}"}'
    )
    r = t.render("client-7")
    assert (r.method, r.target) == ("PUT", "/users/client-7/")
    assert ("X-Api-Key", "key-client-7") in r.headers
    assert r.body == b'{"user": "client-7"}'
    assert t.uses_identity and not RequestTemplate(path="/x/").uses_identity


def test_a_content_type_given_is_kept() -> None:
    r = RequestTemplate("POST", "/", (("Content-Type", "application/json"),), "{}").render("c")
    assert [k for k, _ in r.headers].count("Content-Type") == 1
    assert RequestTemplate().render("c").headers == ()  # no body, no Content-Type


@pytest.mark.parametrize(
    ("status", "admitted", "refused"),
    [
        (200, True, False),
        (204, True, False),
        (401, False, False),
        (429, False, True),
        (None, False, False),
    ],
)
def test_default_statuses(status: int | None, admitted: bool, refused: bool) -> None:
    assert (Statuses().admitted(status), Statuses().refused(status)) == (admitted, refused)


def test_statuses_given() -> None:
    s = checked_statuses(parse_statuses("200,401"), parse_statuses([403, 429]))
    assert s.admitted(401) and not s.admitted(204) and s.refused(403)
    assert s.describe() == "admitted 200,401, refused 403,429"


@pytest.mark.parametrize(
    ("parse", "text", "complaint"),
    [
        (parse_header, "NoColon", "expected 'Name: value'"),
        (parse_header, ": value", "expected 'Name: value'"),
        (parse_header, "Bad Name: x", "not a header name"),
        (parse_header, "Host: example", "set by the harness"),
        (parse_header, "X-Throttle-Harness-Request: 1", "set by the harness"),
        (parse_method, "FETCH", "unknown method"),
        (parse_statuses, "abc", "not a number"),
        (parse_statuses, "99", "not an HTTP status"),
        (parse_statuses, "", "not a number"),
    ],
)
def test_bad_request_parts(parse: object, text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse(text)  # type: ignore[operator]


@pytest.mark.parametrize(
    "text", ["Authorization Bearer tok_s3cr3t", "Bad Name: tok_s3cr3t", ": tok_s3cr3t"]
)
def test_a_bad_header_is_refused_without_its_value(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_header(text)
    assert "s3cr3t" not in str(caught.value)


def test_a_header_value_and_a_lowercase_method() -> None:
    assert parse_header("Authorization:  Bearer {identity} ") == (
        "Authorization",
        "Bearer {identity}",
    )
    assert parse_method("post") == "POST"


def test_a_body_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "body.json").write_text('{"u": "{identity}"}')
    assert parse_body("@body.json", tmp_path) == '{"u": "{identity}"}'
    assert parse_body("a=1", tmp_path) == "a=1"
    with pytest.raises(ValueError, match="no such file"):
        parse_body("@missing.txt", tmp_path)


def test_overlapping_statuses_are_refused() -> None:
    with pytest.raises(ValueError, match="both as admitted and as refused"):
        checked_statuses(parse_statuses("200,429"), parse_statuses("429"))
    with pytest.raises(ValueError, match="both as admitted and as refused"):
        checked_statuses(frozenset(), parse_statuses("204"))  # 204 is a 2xx


def test_scenario_keys_make_the_request(tmp_path: Path) -> None:
    (tmp_path / "login.txt").write_text("username={identity}&password=x")
    path = tmp_path / "login.toml"
    path.write_text(
        'app = "m:app"\nrate = "5/minute"\npath = "/login/"\nmethod = "post"\n'
        'headers = ["X-Client: {identity}"]\ndata = "@login.txt"\n'
        "accept_status = [200, 401]\nreject_status = [429, 403]\n"
    )
    (s,) = load_scenarios([path], {"env": {}})
    assert s.request == RequestTemplate(
        "POST", "/login/", (("X-Client", "{identity}"),), "username={identity}&password=x"
    )
    assert s.statuses == Statuses(frozenset({200, 401}), frozenset({403, 429}))
    assert s.claim(2).statuses == s.statuses


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        ('headers = ["X-User: {user}"]\n', "unknown placeholder {user}"),
        ('path = "/u/{idenity}/"\n', "unknown placeholder {idenity}"),
        ("accept_status = 429\n", "must not overlap"),
        ('reject_status = "x"\n', "not a number"),
        ("reject_status = true\n", "must be a list of HTTP statuses"),
        ('data = "@nope.txt"\n', "no such file"),
    ],
)
def test_bad_scenario_request_keys(tmp_path: Path, extra: str, complaint: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text('app = "m:app"\nrate = "5/minute"\n' + extra)
    with pytest.raises(ScenarioError, match=complaint):
        load_scenarios([path], {"env": {}})


def test_identity_files_must_not_repeat_and_headers_stay_ascii(tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("alice\nbob\nalice\n")
    with pytest.raises(ValueError, match="lines 1 and 3 hold the same value") as caught:
        read_identities("ids.txt", tmp_path, 1)
    assert "alice" not in str(caught.value)  # a value may be a token: never shown
    with pytest.raises(ValueError, match="ASCII"):
        parse_header("X-User: jürgen")
    (tmp_path / "names.txt").write_text("jürgen\nmaría\n")
    path = tmp_path / "s.toml"
    path.write_text(
        'app = "m:app"\nrate = "5/minute"\nidentity_file = "names.txt"\n'
        'headers = ["X-User: {identity}"]\n'
    )
    with pytest.raises(ScenarioError, match="must be ASCII"):
        load_scenarios([path], {"env": {}})
    path.write_text(
        'app = "m:app"\nrate = "5/minute"\nidentity_file = "names.txt"\ndata = "user={identity}"\n'
    )
    (s,) = load_scenarios([path], {"env": {}})  # in a body, any text is fine
    assert s.identity_values == ("jürgen", "maría")
