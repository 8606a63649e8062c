"""Create an Ed25519 signing key for the sealer (a PEM file, mode 0600)."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dmobs.integrity import keys as keymod


class Command(BaseCommand):
    help = (
        "Write a new Ed25519 signing key (PEM) for audit_seal and its public key beside it "
        "(NAME.pub.pem); prints the key id."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="Path of the PEM file to create.")
        parser.add_argument(
            "--if-missing", action="store_true", help="Keep an existing file (make run uses this)."
        )

    def handle(self, *args, out, if_missing=False, **options):
        path = Path(out)
        if path.exists():
            if if_missing:
                key = keymod.load_private(path.read_bytes(), origin=str(path))
                self._write_public(path, key)
                self.stdout.write(f"Keeping {path} (key {keymod.key_id(key.public_key())}).")
                return
            raise CommandError(f"{path} exists; remove it first or pass --if-missing.")
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = keymod.generate_private_pem()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        key = keymod.load_private(pem, origin=str(path))
        self._write_public(path, key)
        self.stdout.write(
            f"Wrote {path}: key {keymod.key_id(key.public_key())}, public key "
            f"{keymod.public_b64(key.public_key())}"
        )

    @staticmethod
    def _write_public(path: Path, key) -> None:
        """The public half beside it, for the verifying side (DMOBS_AUDIT_PUBLIC_KEY_FILE)."""
        public_path = path.with_name(path.name.removesuffix(".pem") + ".pub.pem")
        public_path.write_text(keymod.public_pem(key.public_key()))
