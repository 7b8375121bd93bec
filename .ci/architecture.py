#!/usr/bin/env python3
"""The floors of docs/architecture.md, checked: which module may name which, and no source file
over 600 lines. Test code (files named *tests.rs, and what follows `#[cfg(test)]` + `mod`) may
reach across floors to build real inputs; the product's code may not."""

import pathlib
import re
import sys

MAX_LINES = 600
ROOT = pathlib.Path(__file__).resolve().parent.parent

# Module (a file or a directory under src/) -> modules it must never name.
APPLICATIONS = ["cli", "relay", "doctor", "setup"]
FORBIDDEN = {
    # The protocol floor knows no account, no configuration and no application.
    "smtp": ["account", "config", "catalog", "verdict", "submit"] + APPLICATIONS,
    "oauth": ["account", "config", "catalog", "verdict", "submit"] + APPLICATIONS,
    "queue": ["account", "config", "catalog", "verdict", "submit"] + APPLICATIONS,
    "message": ["account", "config", "catalog", "verdict", "submit"] + APPLICATIONS,
    "graph": ["account", "config", "catalog", "verdict", "submit"] + APPLICATIONS,
    "directory": ["account", "config", "catalog", "verdict", "submit"] + APPLICATIONS,
    # The account and the verdict floor: above the protocol, below every application.
    "account": ["config"] + APPLICATIONS,
    "catalog": ["config"] + APPLICATIONS,
    "verdict": ["config"] + APPLICATIONS,
    "submit": ["config"] + APPLICATIONS,
    "service": ["config"] + APPLICATIONS,
    # Applications beside each other; configuration sits on top of them all.
    "relay": ["config", "cli", "doctor", "setup"],
    "doctor": ["cli", "relay", "setup"],
    "setup": ["config", "cli", "relay", "doctor"],
}


def product_code(path: pathlib.Path) -> str:
    if path.name.endswith("tests.rs"):
        return ""
    text = path.read_text()
    match = re.search(r"^#\[cfg\(test\)\]\s*\n\s*(#\[path[^\n]*\n\s*)?mod ", text, re.M)
    return text[: match.start()] if match else text


def module_of(path: pathlib.Path) -> str:
    part = path.relative_to(ROOT / "src").parts[0]
    return part.removesuffix(".rs")


def main() -> int:
    problems = []
    for path in sorted((ROOT / "src").rglob("*.rs")):
        lines = path.read_text().count("\n")
        rel = path.relative_to(ROOT)
        if lines > MAX_LINES:
            problems.append(f"{rel}: {lines} lines (at most {MAX_LINES}): split it")
        code = product_code(path)
        for name in FORBIDDEN.get(module_of(path), []):
            for n, line in enumerate(code.splitlines(), 1):
                grouped = any(
                    re.match(rf"\s*{name}\b", item) for group in re.findall(r"crate::\{([^}]*)\}", line)
                    for item in group.split(",")
                )
                if grouped or re.search(rf"\bcrate::{name}\b", line):
                    problems.append(f"{rel}:{n}: `{module_of(path)}` must not use `{name}`: {line.strip()}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print("ok: every module keeps to its floor; every source file is within 600 lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
