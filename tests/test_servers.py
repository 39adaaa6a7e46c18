"""Tests for the throwaway Redis/PostgreSQL server helpers in ``tests/servers.py``."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from . import servers


def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)


def _select_one(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("select 1")).scalar_one())
    finally:
        engine.dispose()


def test_find_free_port_is_bindable() -> None:
    port = servers.find_free_port()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.redis
def test_redis_server_lifecycle() -> None:
    with servers.redis_server() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert servers.pid_alive(server.pid)
        with _redis_client(server.url) as client:
            client.set("greeting", "hello")
            assert client.get("greeting") == b"hello"
            server.flush()
            assert client.get("greeting") is None

            client.set("lost", "on crash")
            old_pid = server.pid
            server.kill()
            assert not servers.pid_alive(old_pid)
            with pytest.raises(redis.ConnectionError):
                client.ping()

            server.start()
            assert server.pid != old_pid
            assert client.get("lost") is None  # no persistence
            client.set("greeting", "again")
            assert client.get("greeting") == b"again"
        pid, directory = server.pid, server.directory
    assert not servers.pid_alive(pid)
    assert not directory.exists()


@pytest.mark.redis
def test_redis_server_with_a_password_refuses_clients_without_it() -> None:
    with servers.redis_server(password="s3cret/+") as server:
        assert server.url == f"redis://:s3cret%2F%2B@127.0.0.1:{server.port}/0"
        with _redis_client(server.url) as client:
            assert client.ping()
        anonymous = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)
        with anonymous, pytest.raises(redis.AuthenticationError):
            anonymous.ping()


@pytest.mark.postgres
def test_postgres_server_with_a_password_refuses_tcp_clients_without_it() -> None:
    with servers.postgres_server(password="s3cret/+") as server:
        expected = f"postgresql+psycopg://postgres:s3cret%2F%2B@127.0.0.1:{server.port}/postgres"
        assert server.url == expected
        assert _select_one(server.create_database("guarded")) == 1
        anonymous = f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres"
        with pytest.raises(sa.exc.OperationalError, match="password"):
            _select_one(anonymous)


@pytest.mark.postgres
def test_postgres_server_lifecycle() -> None:
    with servers.postgres_server() as server:
        assert server.url == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres"
        assert _select_one(server.url) == 1

        db_url = server.create_database("scratch")
        assert db_url.endswith(f":{server.port}/scratch")
        engine = sa.create_engine(db_url)
        with engine.begin() as conn:
            # The server runs with synchronous_commit=off, so a commit is acknowledged before
            # its WAL is written; make this one synchronous so it must survive kill().
            conn.execute(sa.text("set local synchronous_commit = on"))
            conn.execute(sa.text("create table kept (v int)"))
            conn.execute(sa.text("insert into kept values (42)"))
        engine.dispose()

        old_pid = server.pid
        children = servers.child_pids(old_pid)
        assert children  # checkpointer, walwriter, ...
        server.kill()
        assert not servers.pid_alive(old_pid)
        assert not any(servers.pid_alive(pid) for pid in children)
        with pytest.raises(sa.exc.OperationalError):
            _select_one(server.url)

        server.start()  # crash recovery; committed data is still there
        assert server.pid != old_pid
        engine = sa.create_engine(db_url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select v from kept")).scalar_one() == 42
        engine.dispose()

        pid, directory = server.pid, server.directory
        children = servers.child_pids(pid)
    assert not servers.pid_alive(pid)
    assert not any(servers.pid_alive(child) for child in children)
    assert not directory.exists()


def test_create_database_rejects_bad_names() -> None:
    nowhere = Path("/nonexistent")
    server = servers.PostgresServer(url="", port=1, pid=0, directory=nowhere, bindir=nowhere)
    with pytest.raises(ValueError, match="invalid database name"):
        server.create_database('x"; drop database postgres; --')


def test_missing_redis_binary_points_to_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setattr(servers, "REDIS_FALLBACK_BINARY", "/nonexistent/redis-server")
    with pytest.raises(RuntimeError, match="make test"), servers.redis_server():
        pass


def test_missing_postgres_binaries_point_to_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setattr(servers, "POSTGRES_BIN_GLOB", "/nonexistent/*/bin")
    with pytest.raises(RuntimeError, match="make test"), servers.postgres_server():
        pass
