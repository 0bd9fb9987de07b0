"""Helpers shared by benchmarks: a fresh database, timing, figures as ratios."""

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import psycopg


@dataclass
class Figure:
    name: str
    value: float
    baseline: float
    unit: str = "s"
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    def line(self) -> str:
        v = f"{self.value:.4g} {self.unit}"
        b = f"{self.baseline:.4g} {self.unit}"
        text = f"{self.name:<58} {v:>14} {b:>14} {self.ratio:>7.2f}x"
        return text + (f"  {self.note}" if self.note else "")


def ensure_database(*, fresh: bool) -> None:
    url = urlparse(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    admin = f"host={url.hostname} port={url.port} user={url.username} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"host={url.hostname} port={url.port} user={url.username} dbname={name}", autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def best_of(fn: Callable[[], object], *, repeat: int = 5, number: int = 1) -> float:
    """Median of `repeat` timings of `number` calls, in seconds per call."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t) / number)
    return statistics.median(times)
