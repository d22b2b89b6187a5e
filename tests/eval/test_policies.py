"""Policy specs, the python: policy, and the CLI's input errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from codegym.cli import main
from codegym.errors import UsageError
from codegym.eval import (
    CallablePolicy,
    GenerationParams,
    PolicyError,
    Request,
    evaluate,
    load_policy,
)
from codegym.tasks.jsonl import write_jsonl
from tests.eval import scripted

SCRIPTED = scripted.__file__


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpt4", "unknown policy 'gpt4'"),
        ("hf:", "unknown policy"),
        ("python:nosuchmodule_xyz:f", "no module named 'nosuchmodule_xyz'"),
        ("python:json:nosuchfunction", "has no attribute 'nosuchfunction'"),
        ("python:json:__doc__", "is not callable"),
        ("python:f", "expected python:MODULE:FUNCTION"),
        ("python:/no/such/file.py:f", "is not a file"),
        ("checkpoint:/no/such/run", "is not a folder"),
        ("", "policy must be one of"),
    ],
)
def test_bad_specs_raise_usage_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_policy(spec)


def test_model_is_only_for_openai() -> None:
    with pytest.raises(UsageError, match="--model names the model of an openai"):
        load_policy(f"python:{SCRIPTED}:chat_policy", model="gpt")


def test_missing_openai_sdk_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # import openai -> ModuleNotFoundError
    with pytest.raises(UsageError, match=r"pip install 'codegym\[openai\]'"):
        load_policy("openai:http://127.0.0.1:9/v1", model="m")


def test_python_policy_from_a_file_and_a_module() -> None:
    by_file = load_policy(f"python:{SCRIPTED}:chat_policy", concurrency=2)
    by_module = load_policy("python:tests.eval.scripted:text_policy")
    assert isinstance(by_file, CallablePolicy) and by_file.input == "messages"
    assert by_module.input == "text"  # the function's codegym_input attribute
    question = [{"role": "user", "content": scripted.TASKS[0].prompt}]
    replies = list(by_file.generate([Request(question, 2), Request(question, 1)],
                                    GenerationParams()))  # fmt: skip
    assert sorted(r.index for r in replies) == [0, 1]
    assert all(r.responses[0].startswith("Here it is") for r in replies)


def test_a_policy_that_returns_no_str_or_raises_is_a_policy_error(process_sandbox: object) -> None:
    def number(messages: Any) -> Any:
        return 42

    def boom(messages: Any) -> Any:
        return 1 / 0

    with pytest.raises(PolicyError, match="returned int"):
        evaluate(CallablePolicy(number), scripted.TASKS[:1], sandbox=process_sandbox,
                 progress=False)  # fmt: skip
    with pytest.raises(PolicyError, match="raised ZeroDivisionError"):
        evaluate(CallablePolicy(boom), scripted.TASKS[:1], sandbox=process_sandbox, progress=False)


def test_text_policy_programs_run_as_is(process_sandbox: object) -> None:
    report = evaluate("python:tests.eval.scripted:text_policy", scripted.TASKS, n=1,
                      sandbox=process_sandbox, progress=False)  # fmt: skip
    assert report["pass@1"] == pytest.approx(2 / 6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tasks", "toy"], "--policy is required"),
        (["--policy", "tiny"], "--tasks is required"),
        (["--policy", "nope", "--tasks", "toy"], "unknown policy 'nope'"),
        (["--samples", "s.jsonl", "--policy", "tiny"], "not both"),
        (["--policy", "tiny", "--tasks", "nosuchsource"], "unknown task source"),  # before loading
    ],
)
def test_cli_input_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(["eval", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_rejects_bad_k(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--policy", "tiny", "--tasks", "toy", "--k", "1,x"])
    assert "--k takes comma-separated ints" in capsys.readouterr().err


def test_cli_says_which_k_it_could_not_report(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tasks = tmp_path / "tasks.jsonl"
    write_jsonl(scripted.TASKS[:2], tasks)
    argv = ["eval", "--policy", f"python:{SCRIPTED}:chat_policy", "--tasks", str(tasks),
            "--n", "2", "--sandbox", "process", "--no-progress"]  # fmt: skip
    assert main([*argv, "--k", "1,2,10"]) == 0
    captured = capsys.readouterr()
    assert "pass@2" in captured.out and "pass@10" not in captured.out
    assert "k=10 not reported: it needs at least 10 samples" in captured.err
    assert "this run has 2 (--n)" in captured.err
    # every k reportable: nothing said
    assert main([*argv, "--k", "1,2"]) == 0
    assert "not reported" not in capsys.readouterr().err


def test_evaluate_argument_checks() -> None:
    for kwargs, message in [
        ({"mode": "batch"}, "mode must be"),
        ({"n": 0}, "n \\(samples per task\\)"),
        ({"k": (0,)}, "k must be positive"),
        ({"top_p": 0.0}, "top_p"),
        ({"max_turns": 0}, "max_turns"),
    ]:
        with pytest.raises(UsageError, match=message):
            evaluate(f"python:{SCRIPTED}:chat_policy", scripted.TASKS, **kwargs)  # type: ignore[arg-type]


def test_existing_out_needs_resume(tmp_path: Path, process_sandbox: object) -> None:
    out = tmp_path / "r.jsonl"
    spec = f"python:{SCRIPTED}:chat_policy"
    evaluate(spec, scripted.TASKS[:2], out=out, sandbox=process_sandbox, progress=False)
    with pytest.raises(UsageError, match="already exists"):
        evaluate(spec, scripted.TASKS[:2], out=out, sandbox=process_sandbox, progress=False)
    # more samples on resume: only the new ones are played
    report = evaluate(spec, scripted.TASKS[:2], n=3, out=out, resume=True,
                      sandbox=process_sandbox, progress=False)  # fmt: skip
    assert report.n == 3 and out.read_text().count("\n") == 1 + 6
