from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports.evidence import issued_package_problems, verify_package
from reports.signing import key_fingerprint, public_key_pem, signing_key


class Command(BaseCommand):
    help = (
        "Check an evidence package: the manifest's Ed25519 signature, every file's SHA-256 and "
        "size, no missing or extra files, and (unless --offline) that the file is byte for byte "
        "a package this server issued. Exits 1 and lists every difference when anything changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("package", type=Path)
        parser.add_argument(
            "--public-key",
            type=Path,
            help="PEM file of the key the package must be signed with "
            "(default: this server's evidence key, when it has one)",
        )
        parser.add_argument(
            "--fingerprint",
            help="SHA256:... fingerprint of the key the package must be signed with, as the "
            "issuing server's report page shows it (or from the server's own key: "
            "verify_evidence without --offline on that server). Never take it from the "
            "package's own summary: whoever altered the package wrote that too. "
            "Case does not matter.",
        )
        parser.add_argument(
            "--offline",
            action="store_true",
            help="Check the package without this server's records or key; needs --public-key "
            "or --fingerprint, since the key inside a package proves nothing on its own.",
        )

    def handle(self, *args: Any, package: Path, **options: Any) -> None:
        if not package.is_file():
            raise CommandError(f"{package} is not a file")
        # Fingerprints of the keys the package must be signed with, all from outside it.
        trusted: list[str] = []
        if options["public_key"]:
            try:
                trusted.append(key_fingerprint(options["public_key"].read_bytes()))
            except OSError as exc:
                raise CommandError(f"cannot read --public-key: {exc}") from exc
        if options["fingerprint"] and options["fingerprint"].strip():
            trusted.append(options["fingerprint"].strip())
        if not trusted and not options["offline"]:
            with contextlib.suppress(ImproperlyConfigured):
                trusted.append(key_fingerprint(public_key_pem(signing_key())))
        result = verify_package(package, trusted_fingerprints=trusted)
        problems = list(result.problems)
        if options["offline"]:
            if not trusted and result.signer_fingerprint is not None:
                # A forger re-signs an edited manifest and ships their own key: the package is
                # then consistent with itself, so only a key from elsewhere tells them apart.
                problems.append(
                    f"signer not checked: the package is signed by {result.signer_fingerprint}; "
                    "pass --public-key or --fingerprint with the key of the server that issued it"
                )
        else:
            problems += issued_package_problems(package, result.manifest)
        if problems:
            for problem in problems:
                self.stderr.write(f"DIFFERS: {problem}")
            raise CommandError(f"{package} FAILED verification ({len(problems)} problem(s))")
        self.stdout.write(
            self.style.SUCCESS(
                f"{package}: OK — signature valid, {result.checked_files} files match the manifest"
            )
        )
