"""Key hygiene, on fakeredis: a Redis the harness did not start keeps every key but its own."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from harness.errors import UsageError
from harness.redaction import redact_secrets, redact_url
from harness.redis.providers import open_redis, provider_for
from harness.redis.providers.base import RedisServer
from harness.redis.providers.redis_url import parse_redis_url


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    client = fakeredis.FakeRedis()
    monkeypatch.setattr(RedisServer, "client", lambda self: client)
    return client


def seed(client: fakeredis.FakeRedis) -> None:
    client.set("users:1", "alice")
    client.set("throttle-harness:abc:1::1:throttle_anon_127.0.0.1", "x")
    client.set("throttle-harness:abc:1:throttle:x", "y")
    client.set("throttle-harness:abc:10:other-run", "z")
    client.set("throttle-harness:abc:1*weird", "w")


def test_a_users_redis_loses_only_the_runs_keys(fake: fakeredis.FakeRedis) -> None:
    seed(fake)
    server = RedisServer(url="redis://127.0.0.1:6379/0", provider="url", owned=False, version="7")
    deleted = server.clear("throttle-harness:abc:1:")
    assert deleted == 2
    assert sorted(fake.keys()) == sorted(
        [b"throttle-harness:abc:10:other-run", b"throttle-harness:abc:1*weird", b"users:1"]
    )


def test_a_harness_started_redis_is_flushed(fake: fakeredis.FakeRedis) -> None:
    seed(fake)
    server = RedisServer(url="redis://127.0.0.1:1/0", provider="embedded", owned=True, version="7")
    server.clear("throttle-harness:abc:1:")
    assert fake.keys() == []


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("redis://10.0.0.5:6379/0", "not a loopback address"),
        ("redis://example.com:6379", "not a loopback address"),
        ("memcached", "unknown --redis 'memcached'"),
    ],
)
def test_bad_redis_specs(spec: str, complaint: str) -> None:
    with pytest.raises(UsageError, match=complaint):
        provider_for(spec)


def test_loopback_urls_are_accepted() -> None:
    for url in ("redis://127.0.0.1:6379/0", "redis://:pw@localhost:1/2", "redis://[::1]:6379"):
        assert provider_for(url).name == "url"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://default:def@127.0.0.1:6379/0", "redis://default:***@127.0.0.1:6379/0"),
        ("redis://:s3cr3t@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://127.0.0.1:6379/0?password=s3cr3t", "redis://127.0.0.1:6379/0?password=***"),
        (
            "redis://127.0.0.1/0?db=1&PassWord=s3cr3t&x=2",
            "redis://127.0.0.1/0?db=1&PassWord=***&x=2",
        ),
        ("redis://h/0?pass%77ord=s3cr3t", "redis://h/0?pass%77ord=***"),  # parse_qs decodes keys
        ("redis://h/0?ssl_password=s3cr3t", "redis://h/0?ssl_password=***"),
        ("redis://u:p%40ss@h:1/2?password=q", "redis://u:***@h:1/2?password=***"),
        ("redis://:pa/ss@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),  # unencoded '/'
        ("redis://:pa#ss@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),  # unencoded '#'
        ("redis://h/0?password=s3cr3t&name=a@b", "redis://h/0?password=***&name=a@b"),
        ("redis:/:s3cr3t@h", "redis:/:***@h"),  # a mistyped scheme still hides it
        ("redis://user@127.0.0.1/0", "redis://user@127.0.0.1/0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("embedded", "embedded"),
        ("docker:redis:7-alpine", "docker:redis:7-alpine"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_secrets_keeps_the_user_name_and_scrubs_the_rest() -> None:
    url = "redis://default:def@127.0.0.1:6379/0?password=hunter2%21"
    text = f"cannot reach {url}; at {redact_url(url)}: auth def failed, hunter2! hunter2%21"
    assert redact_secrets(text, url) == (
        "cannot reach redis://default:***@127.0.0.1:6379/0?password=***; "
        "at redis://default:***@127.0.0.1:6379/0?password=***: auth *** failed, *** ***"
    )
    assert redact_secrets("untouched", "local") == "untouched"


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("redis://:s3cr3tpw@127.0.0.1:notaport/0", "the port must be a number from 1 to 65535"),
        ("redis://:s3cr3tpw@127.0.0.1:99999/0", "the port must be a number from 1 to 65535"),
        ("redis://:s3cr3tpw@127.0.0.1:0/0", "the port must be a number from 1 to 65535"),
        ("redis://:s3cr3tpw@127.0.0.1:\u0663/0", "the port must be a number"),  # Arabic 3
        ("redis://127.0.0.1/0?password=s3cr3tpw&db=x", "'db' must be a number, not 'x'"),
        ("redis://:s3cr3tpw@127.0.0.1/x", "the database must be a number"),
        ("redis://:s3cr3tpw@127.0.0.1/-1", "the database must be a number"),
        ("redis://:s3cr3tpw@127.0.0.1/1?db=2", "the database is given twice"),
        ("redis://:s3cr3tpw@127.0.0.1/0?foo=1", "unknown query parameter 'foo'"),
        ("redis://:s3cr3tpw@127.0.0.1/0?ssl_cert_reqs=none", "unknown query parameter"),
        ("redis://:s3cr3tpw@127.0.0.1/0?db", "'db' has no value"),
        ("redis://:s3cr3tpw@127.0.0.1/?db=1&db=1", "'db' is given twice"),
        ("redis://:s3cr3tpw@127.0.0.1/0?protocol=4", "'protocol' must be 2 or 3"),
        ("redis://:s3cr3tpw@127.0.0.1/0?socket_timeout=-1", "'socket_timeout' must be seconds"),
        ("redis://:s3cr3tpw@10.0.0.5:6379/0", "not a loopback address"),
        ("redis://:s3cr3tpw@/0", "no host"),
        ("redis://:s3/cr3tpw@127.0.0.1:1/0", "'/' or '?' in a user name or password"),
        ("redis://:s3?cr3tpw@127.0.0.1:1/0", "'/' or '?' in a user name or password"),
        ("redis://:s3#cr3tpw@127.0.0.1:1/0", "'#' must be percent-encoded"),
        ("redis://:s3@cr3tpw@127.0.0.1:1/0", "'@' in a user name, password or parameter"),
        ("redis://:s3cr3tpw@127.0.0.1:1/0?client_name=a@b", "'@' in a user name, password"),
        ("redis://:s3cr3tpw@127.0.0.1:1/0 ", "spaces and control characters"),
        ("unix://:s3cr3tpw@/tmp/redis.sock", "unknown --redis"),
        ("rediss:/:s3cr3tpw@127.0.0.1", "unknown --redis"),
        ("redis:/:s3cr3tpw@127.0.0.1", "unknown --redis"),
    ],
)
def test_the_harness_refuses_redis_urls_by_its_own_rule(spec: str, complaint: str) -> None:
    """What a Redis URL may be is the harness's rule (harness/redis/providers/redis_url.py), one
    line each, whatever the installed redis-py would accept; the password never shows."""
    with pytest.raises(UsageError) as caught:
        provider_for(spec)
    assert complaint in caught.value.message
    assert "s3cr3tpw" not in caught.value.message and "cr3tpw" not in caught.value.message


ACCEPTED = [
    # (spec, the URL handed on, host, port, db, password)
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", "127.0.0.1", 6379, 0, ""),
    (
        "REDIS://:s3cr3tpw@127.0.0.1:1/2",
        "redis://:s3cr3tpw@127.0.0.1:1/2",
        "127.0.0.1",
        1,
        2,
        "s3cr3tpw",
    ),
    ("Rediss://127.0.0.1", "rediss://127.0.0.1", "127.0.0.1", 6379, 0, ""),
    (
        "redis://u:p%40ss%2F%3F@localhost/3",
        "redis://u:p%40ss%2F%3F@localhost/3",
        "localhost",
        6379,
        3,
        "p@ss/?",
    ),
    ("redis://[::1]:6380", "redis://[::1]:6380", "::1", 6380, 0, ""),
    (
        "redis://127.0.0.2?db=5&protocol=3",
        "redis://127.0.0.2?db=5&protocol=3",
        "127.0.0.2",
        6379,
        5,
        "",
    ),
    (
        "redis://127.0.0.1/1?password=pw&socket_timeout=0.5",
        "redis://127.0.0.1/1?password=pw&socket_timeout=0.5",
        "127.0.0.1",
        6379,
        1,
        "pw",
    ),
    (
        "rediss://127.0.0.1/0?ssl_cert_reqs=none",
        "rediss://127.0.0.1/0?ssl_cert_reqs=none",
        "127.0.0.1",
        6379,
        0,
        "",
    ),
]


@pytest.mark.parametrize(("spec", "handed_on", "host", "port", "db", "password"), ACCEPTED)
def test_the_harness_accepts_redis_urls_by_its_own_rule(
    spec: str, handed_on: str, host: str, port: int, db: int, password: str
) -> None:
    parsed = parse_redis_url(spec)
    assert (parsed.url, parsed.host, parsed.port, parsed.db) == (handed_on, host, port, db)
    assert (parsed.password or parsed.query.get("password", "")) == password
    assert provider_for(spec).url == handed_on  # what the app gets in REDIS_URL


@pytest.mark.parametrize(("spec", "handed_on", "host", "port", "db", "password"), ACCEPTED)
def test_redis_py_reads_every_url_the_harness_hands_on_as_the_harness_does(
    spec: str, handed_on: str, host: str, port: int, db: int, password: str
) -> None:
    """The contract the harness relies on (the app's client is redis-py): a URL the harness
    accepts means the same server to redis-py. A redis-py release that breaks it fails here."""
    kwargs = redis.ConnectionPool.from_url(handed_on).connection_kwargs
    assert (kwargs.get("host"), kwargs.get("port", 6379), kwargs.get("db", 0)) == (host, port, db)
    assert (kwargs.get("password") or "") == password


def test_require_docker_does_not_show_the_password() -> None:
    with pytest.raises(UsageError, match="Docker is required") as caught:
        open_redis("redis://:s3cr3tpw@127.0.0.1:1/0", require_docker=True)
    assert "s3cr3tpw" not in caught.value.message


def test_a_server_never_shows_its_url_in_its_repr() -> None:
    server = RedisServer(
        url="redis://:s3cr3tpw@127.0.0.1:1/0", provider="url", owned=False, version="7"
    )
    assert "s3cr3tpw" not in repr(server)
