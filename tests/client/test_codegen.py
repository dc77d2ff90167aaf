"""The committed generated client code (Python and TypeScript) matches protos/ (scripts/gen_clients.py --check)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "gen_clients.py"
GENERATED_ROOT = REPO_ROOT / "clients" / "python" / "src"
TS_ROOT = REPO_ROOT / "clients" / "typescript" / "src" / "gen"


def run_gen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


def test_committed_generated_code_is_up_to_date() -> None:
    result = run_gen("--check")
    assert result.returncode == 0, result.stderr
    assert "TypeScript client code" in result.stdout and "up to date" in result.stdout


def test_check_fails_and_lists_altered_missing_and_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "src"
    shutil.copytree(GENERATED_ROOT / "pdv", out / "pdv")
    with (out / "pdv" / "v1" / "token_pb2.py").open("a", encoding="utf-8") as f:
        f.write("# hand edit\n")
    (out / "pdv" / "v1" / "token_pb2.pyi").unlink()
    (out / "pdv" / "v1" / "retired_pb2.py").write_text("", encoding="utf-8")

    result = run_gen("--check", "--skip-typescript", "--out", str(out))

    assert result.returncode == 1
    assert "differs: pdv/v1/token_pb2.py" in result.stderr
    assert "missing: pdv/v1/token_pb2.pyi" in result.stderr
    assert "stale): pdv/v1/retired_pb2.py" in result.stderr
    assert "token_pb2_grpc.py" not in result.stderr


def test_generation_is_deterministic_and_leaves_hand_written_code(tmp_path: Path) -> None:
    out = tmp_path / "src"
    (out / "pdv_client").mkdir(parents=True)
    (out / "pdv_client" / "client.py").write_text("# mine\n", encoding="utf-8")

    assert run_gen("--skip-typescript", "--out", str(out)).returncode == 0
    first = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert run_gen("--skip-typescript", "--out", str(out)).returncode == 0
    second = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    assert first == second
    assert (out / "pdv" / "v1" / "token_pb2_grpc.py").is_file()
    assert (out / "pdv_client" / "client.py").read_text(encoding="utf-8") == "# mine\n"
    assert run_gen("--check", "--skip-typescript", "--out", str(out)).returncode == 0


def test_typescript_check_fails_and_lists_altered_missing_and_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    shutil.copytree(TS_ROOT, out)
    with (out / "pdv" / "v1" / "token.ts").open("a", encoding="utf-8") as f:
        f.write("// hand edit\n")
    (out / "pdv" / "v1" / "subject.ts").unlink()
    (out / "pdv" / "v1" / "retired.ts").write_text("", encoding="utf-8")

    result = run_gen("--check", "--ts-out", str(out))

    assert result.returncode == 1
    assert "TypeScript client code" in result.stderr
    assert "differs: pdv/v1/token.ts" in result.stderr
    assert "missing: pdv/v1/subject.ts" in result.stderr
    assert "stale): pdv/v1/retired.ts" in result.stderr
    assert "request.ts" not in result.stderr


def test_typescript_generation_writes_grpc_js_clients_deterministically(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    assert run_gen("--ts-out", str(out)).returncode == 0
    first = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert run_gen("--ts-out", str(out)).returncode == 0
    second = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    assert first == second
    token = (out / "pdv" / "v1" / "token.ts").read_text(encoding="utf-8")
    assert 'path: "/pdv.v1.TokenService/Tokenize"' in token and 'from "@grpc/grpc-js"' in token
    assert run_gen("--check", "--ts-out", str(out)).returncode == 0
