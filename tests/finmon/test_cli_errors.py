"""Every command turns a user mistake (a missing file, an unreadable config, a bad DSN, a port in use...) into one
clear line on stderr and exit code 2, never a traceback. The table must name every sub-command of the parser:
a new command without a case here fails ``test_every_command_has_a_case``."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from finmon.cli import build_parser, main

MISSING = "no-such-file"
# command -> (arguments after it, environment, text the error line must contain); {tmp} is a fresh directory
CASES: dict[str, tuple[list[str], dict[str, str], str]] = {
    "produce": ([f"{{tmp}}/{MISSING}.jsonl"], {}, MISSING),
    "worker": ([], {"FINMON_INGEST_CLICKHOUSE_DSN": "mysql://db:3306"}, "mysql://db:3306"),
    "poll": (["rss", "not-a-url", "--once"], {}, "not-a-url"),
    "demo": (["--dir", "{tmp}/demo", "--input", f"{{tmp}}/{MISSING}.jsonl"], {}, MISSING),
    "run": (["--rss", "http://127.0.0.1:9/feed", "--rules", f"{{tmp}}/{MISSING}.yaml"], {}, MISSING),
    "migrate": (["--dsn", "bogus://x"], {}, "bogus://x"),
    "report": (["--dsn", "chdb://{tmp}/store"], {}, "finmon migrate"),
    "train": (["--data-dir", f"{{tmp}}/{MISSING}", "--tiny"], {}, MISSING),
    "eval": (["--topic-csv", f"{{tmp}}/{MISSING}.csv"], {}, MISSING),
    "pseudo-label": ([f"{{tmp}}/{MISSING}", "--out", "{tmp}/out.csv"], {}, MISSING),
    "soup": ([f"{{tmp}}/{MISSING}", f"{{tmp}}/{MISSING}2", "--out", "{tmp}/soup"], {}, MISSING),
    "export": ([f"{{tmp}}/{MISSING}", "--repo", "{tmp}/repo"], {}, MISSING),
    "triton serve": (["--repo", f"{{tmp}}/{MISSING}"], {}, MISSING),
    "triton repo": (["--source", f"{{tmp}}/{MISSING}", "--out", "{tmp}/repo"], {}, MISSING),
    "triton config": (["--write", "{tmp}/file.txt/config.pbtxt"], {}, "file.txt"),
    "triton check": (["--url", "127.0.0.1:9"], {"FINMON_TRITON_READY_TIMEOUT_S": "0.5"}, "127.0.0.1:9"),
    "alerts run": (["--rules", f"{{tmp}}/{MISSING}.yaml"], {}, MISSING),
    "alerts backtest": (["--file", f"{{tmp}}/{MISSING}.json"], {}, MISSING),
    "alerts test-notify": (["nowhere"], {}, "nowhere"),
    "dashboards build": (["--out", "{tmp}/file.txt/generated"], {}, "file.txt"),
    "dashboards push": (["--url", "http://127.0.0.1:9", "--token", "t"], {"FINMON_GRAFANA_TIMEOUT_S": "2"},
                        "127.0.0.1:9"),
    "dashboards check": (["--dsn", "bogus://x"], {}, "bogus://x"),
    "pretrain": (["--data-dir", f"{{tmp}}/{MISSING}"], {}, MISSING),
    "model promote": ([f"{{tmp}}/{MISSING}"], {}, MISSING),
    "model refit-topic-head": (["--model", f"{{tmp}}/{MISSING}", "--out", "{tmp}/out"], {}, MISSING),
    "model refit-head": (["--task", "sentiment", "--soft-labels", f"{{tmp}}/{MISSING}.jsonl", "--out", "{tmp}/out"],
                         {}, MISSING),
    "soft-label": ([f"{{tmp}}/{MISSING}", "--out", "{tmp}/soft.jsonl"], {}, MISSING),
    "optimize": (["--model", f"{{tmp}}/{MISSING}"], {}, MISSING),
    "kg build": (["--data", f"{{tmp}}/{MISSING}"], {}, MISSING),
    "kg load": (["--dsn", "bogus://x"], {}, "bogus://x"),
    "kg eval": (["--file", f"{{tmp}}/{MISSING}.jsonl"], {}, MISSING),
    "kg show": (["Tesla", "--label", "BOGUS"], {}, "BOGUS"),
    **{f"bench {name}": (["--repository", f"{{tmp}}/{MISSING}"], {}, MISSING)
       for name in ("model", "serving", "e2e", "storage", "alerts")},
    "bench distillation": ([f"{{tmp}}/{MISSING}"], {}, MISSING),
    "settings": (["--embed", f"{{tmp}}/{MISSING}.md"], {}, MISSING),
}
# mistakes in the environment rather than the arguments, and a port that is taken
MORE: dict[str, tuple[str, list[str], dict[str, str], str]] = {
    "unreadable config": ("migrate", [], {"FINMON_CONFIG": f"{{tmp}}/{MISSING}.toml"}, f"{MISSING}.toml"),
    "broken config": ("migrate", [], {"FINMON_CONFIG": "{tmp}/file.txt"}, "file.txt"),
    "bad setting": ("worker", [], {"FINMON_INGEST_METRICS_PORT": "lots"}, "lots"),
    "bench compare": ("bench model", ["--compare", f"{{tmp}}/{MISSING}"], {}, MISSING),
    "case augment share": ("train", ["--tiny", "--ner-case-augment", "1.5"], {}, "1.5"),
    "branch deeper than the encoder": ("train", ["--tiny", "--sentiment-layers", "9", "--out", "{tmp}/run"], {},
                                       "sentiment layers must be between 0 and the encoder's 2 layers, got 9"),
    "train layers deeper than the encoder": ("train", ["--tiny", "--train-layers", "3", "--out", "{tmp}/run"], {},
                                             "train layers must be between 0 and the encoder's 2 layers, got 3"),
    "soft weight": ("model refit-head", ["--soft-weight", "2", "--out", "{tmp}/out"], {}, "--soft-weight 2"),
    "not a teacher": ("soft-label", ["{tmp}", "--out", "{tmp}/soft.jsonl"], {}, "not a teacher checkpoint"),
    "port in use": ("run", ["--rss", "http://127.0.0.1:9/feed", "--dsn", "chdb://{tmp}/store", "--dir", "{tmp}/run",
                            "--metrics-port", "{port}"], {}, "{port}"),
}


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, (*prefix, name))
            return
    yield " ".join(prefix)


def test_every_command_has_a_case() -> None:
    assert set(_commands(build_parser())) == set(CASES)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _check(command: str, args: list[str], env: dict[str, str], expected: str, tmp_path: Path, port: int,
           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fill = lambda s: s.replace("{tmp}", str(tmp_path)).replace("{port}", str(port))  # noqa: E731
    (tmp_path / "file.txt").write_text("not = [toml\n")
    for key, value in env.items():
        monkeypatch.setenv(key, fill(value))
    capsys.readouterr()
    code = main([*command.split(), *map(fill, args)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"finmon {command.split()[0]}: error: ")]
    assert code == 2, err[-2000:]
    assert len(lines) == 1 and fill(expected) in lines[0], err[-2000:]
    assert "Traceback" not in err


@pytest.mark.parametrize("command", sorted(CASES))
def test_a_user_mistake_is_one_line_and_exit_2(command: str, tmp_path: Path, busy_port: int,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    args, env, expected = CASES[command]
    _check(command, args, env, expected, tmp_path, busy_port, monkeypatch, capsys)


@pytest.mark.parametrize("case", sorted(MORE))
def test_a_mistake_in_the_environment_is_one_line_too(case: str, tmp_path: Path, busy_port: int,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    command, args, env, expected = MORE[case]
    _check(command, args, env, expected, tmp_path, busy_port, monkeypatch, capsys)
