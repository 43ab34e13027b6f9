"""Build the demo app's image locally, with no registry: ``local/throttle-demo:ci``.

What a team's image is to the harness: their app, its packages and a Python, with a gunicorn
command of their own; and nothing of the harness's probe (the harness mounts it at run time).
Built as ``../shared/notes/docker-here.md`` measured: this machine's Python (its interpreter,
its standard library without tests, and every library ``ldd`` lists for it and for each
extension module), the packages the demo needs with their dependencies (read from the
installed distributions' records, not the whole test environment), the demo's sources under
``/app`` and a non-root user, imported with ``docker import``. Rebuilt only when one of those
changed (a digest of them is the image's label).

Run with the environment's Python: ``python .ci/app_image.py [IMAGE]``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

IMAGE = sys.argv[1] if len(sys.argv) > 1 else "local/throttle-demo:ci"
LABEL = "org.throttle-harness.demo-image-digest"
REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["gunicorn", "django", "djangorestframework", "django-redis", "redis"]
PACKAGES += ["fastapi", "uvicorn-worker"]  # the ASGI demo (harness.demo.asgi), when installed
APP_FILES = ["harness/__init__.py", "harness/throttles.py", "harness/lua", "harness/demo"]
SITE = "/opt/app-packages"
USER = "10001"  # as many images do: not root
# The team's own command, as in the compose file of the user's story.
COMMAND = [
    *["python3", "-m", "gunicorn", "harness.demo.wsgi:application", "--bind", "0.0.0.0:8000"],
    *["--workers", "1", "--threads", "2", "--max-requests", "1000"],
    *["--max-requests-jitter", "100", "--preload"],
]
SKIP = {"__pycache__", "test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip"}
SKIP |= {"site-packages", "dist-packages", "lib2to3"}


def say(text: str) -> None:
    print(f"app-image: {text}", flush=True)


def distributions() -> list[metadata.Distribution]:
    """The packages the demo needs and everything they require, as installed."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(PACKAGES)
    while todo:
        name = re.split(r"[\s;<>=!~\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional or platform-specific requirement not installed here
        seen[name] = dist
        todo += [r for r in dist.requires or [] if "extra ==" not in r]
    return sorted(seen.values(), key=lambda d: d.metadata["Name"].lower())


def libraries(binaries: list[Path]) -> set[Path]:
    """Every library the dynamic loader would load for ``binaries`` (the loader included)."""
    found: set[Path] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
        found |= {Path(p) for p in re.findall(r"(/\S+)", out)}
    return found


def build(root: Path, interpreter: Path, stdlib: Path, dists: list[metadata.Distribution]) -> None:
    def copy(src: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest, follow_symlinks=True)

    copy(interpreter, root / "usr/local/bin/python3")
    shutil.copytree(stdlib, root / stdlib.relative_to("/"), ignore=lambda d, n: SKIP & set(n))
    for dist in dists:
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file))).resolve()
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                copy(path, root / SITE.lstrip("/") / file)
    for name in APP_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / "app" / name, ignore=lambda d, n: {"__pycache__"} & set(n))
        else:
            copy(src, root / "app" / name)
    binaries = [interpreter, *root.rglob("*.so"), *root.rglob("*.so.*")]
    for lib in libraries(binaries):
        if lib.exists() and not (root / lib.relative_to("/")).exists():
            copy(lib, root / lib.relative_to("/"))
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/passwd").write_text(
        f"root:x:0:0:root:/root:/bin/false\napp:x:{USER}:{USER}::/app:/bin/false\n"
    )
    (root / "etc/group").write_text(f"root:x:0:\napp:x:{USER}:\n")
    (root / "tmp").mkdir(mode=0o1777, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    for d in [p for p in root.rglob("*") if p.is_dir()] + [root]:
        os.chmod(d, os.stat(d).st_mode | 0o755)  # the non-root user walks every folder


def digest(interpreter: Path, dists: list[metadata.Distribution]) -> str:
    h = hashlib.sha256(f"{interpreter}\n{COMMAND}\n".encode())
    for dist in dists:
        h.update(f"{dist.metadata['Name']}=={dist.version}\n".encode())
    for name in APP_FILES:
        for path in sorted(
            [REPO / name, *(REPO / name).rglob("*.py"), *(REPO / name).rglob("*.lua")]
        ):
            if path.is_file():
                h.update(path.read_bytes())
    return h.hexdigest()


def main() -> None:
    interpreter = Path(sys._base_executable).resolve()  # type: ignore[attr-defined]
    stdlib = Path(sysconfig.get_path("stdlib")).resolve()
    dists = distributions()
    wanted = digest(interpreter, dists)
    inspect = [
        "docker",
        "image",
        "inspect",
        "--format",
        f'{{{{ index .Config.Labels "{LABEL}" }}}}',
        IMAGE,
    ]
    have = subprocess.run(inspect, capture_output=True, text=True).stdout.strip()
    if have == wanted:
        say(f"{IMAGE} is up to date (digest {wanted[:12]})")
        return
    say(f"building {IMAGE}: Python {sys.version.split()[0]}, {len(dists)} packages")
    with tempfile.TemporaryDirectory(prefix="app-rootfs-") as tmp:
        root = Path(tmp)
        build(root, interpreter, stdlib, dists)
        pythonpath = f"/app:{SITE}"
        changes = [
            f"ENV PYTHONPATH={pythonpath}",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin",
            "ENV PYTHONDONTWRITEBYTECODE=1",
            "WORKDIR /app",
            f"USER {USER}",
            "EXPOSE 8000",
            f"LABEL {LABEL}={wanted}",
            "CMD " + str(COMMAND).replace("'", '"'),
        ]
        argv = ["docker", "import", *[a for c in changes for a in ("--change", c)], "-", IMAGE]
        importer = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert importer.stdin is not None
        with tarfile.open(fileobj=importer.stdin, mode="w|") as tar:
            tar.add(root, arcname=".")
        importer.stdin.close()
        if importer.wait() != 0:
            sys.exit(f"app-image: docker import of {IMAGE} failed")
    check = [
        "docker",
        "run",
        "--rm",
        IMAGE,
        "python3",
        "-c",
        "import django, rest_framework, django_redis, gunicorn; print(django.__version__)",
    ]
    out = subprocess.run(check, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"app-image: {IMAGE} does not run: {out.stderr.strip()[-500:]}")
    say(f"built {IMAGE} (Django {out.stdout.strip()} runs in it)")


if __name__ == "__main__":
    main()
