"""Loads every fixture module in tests/fixtures/ (one per real service: Kafka, ClickHouse, Triton, SMTP...)."""

import pkgutil

import tests.fixtures

pytest_plugins = [f"tests.fixtures.{m.name}" for m in pkgutil.iter_modules(tests.fixtures.__path__)]
