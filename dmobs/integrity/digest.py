"""Digest documents: what the sealer signs and the verifier checks.

A digest seals one block of entries. Its parts:

* ``groups``: per tenant (``""`` for platform entries), the block's entries of
  that tenant in seal order, as text lines ``"<id> <entry hash>\\n"``.
* ``header``: a JSON object of strings, integers and nulls (and on PostgreSQL
  an entries block's ``storeHash`` object); its canonical text (keys sorted, no
  spaces, UTF-8) is what is signed. It holds the block's count, time range and
  ``root``, the previous digest's hash (``previous``), the signing key and the
  sealer's watermark (see ``seal``).
* ``signature``: Ed25519 over the header text, base64; ``rotationSignature``
  (key rotation digests only): the old key's signature over the same text.

``root`` is the Merkle tree hash (RFC 6962 shape: leaves ``0x00 || data``,
nodes ``0x01 || left || right``, split at the largest power of two below the
size) over one leaf per tenant group, in tenant order::

    leaf data = "<tenant>\\n<count>\\n<group root>"
    group root = sha256("dmobs-group/1\\n<tenant>\\n" + lines)

A tenant admin can so be given their own group and the Merkle path from its
leaf to ``root`` (``tenant_proof``): enough to check their entries against the
signed header without seeing any other tenant's ids or hashes.

A digest's own hash, which the next digest names as ``previous``, is
``sha256(header text + "\\n" + signature)``: re-signing a digest changes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DIGEST_FORMAT = "dmobs-digest/1"
PROOF_FORMAT = "dmobs-tenant-proof/1"
KIND_ENTRIES = "entries"  # entries with createdAt after the last watermark, up to a new one
KIND_LATE = "late"  # entries that arrived after their time had been sealed
KIND_ROTATION = "rotation"  # names the old key; countersigned by it
KINDS = (KIND_ENTRIES, KIND_LATE, KIND_ROTATION)
# An entries header's optional ``storeHash`` (PostgreSQL): ``{"kind": STORE_HASH_KIND,
# "hash": ...}``, what ``sources.PostgresSource.store_hash`` computes over its range.
STORE_HASH_KIND = "postgresql-line-v1"

_header_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def header_text(header: dict[str, Any]) -> str:
    return _header_encoder.encode(header)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leaves_text(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"{entry_id} {entry_hash}\n" for entry_id, entry_hash in pairs)


def parse_leaves(text: str) -> list[tuple[str, str]]:
    return [tuple(line.split(" ", 1)) for line in text.splitlines()]  # type: ignore[misc]


def group_root(tenant: str, lines: str) -> str:
    return sha256_hex(f"dmobs-group/1\n{tenant}\n{lines}".encode())


def group_leaf(tenant: str, count: int, root: str) -> bytes:
    return f"{tenant}\n{count}\n{root}".encode()


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _tree_hash(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return _node_hash(_tree_hash(hashes[:k]), _tree_hash(hashes[k:]))


def merkle_root(leaves: list[bytes]) -> str:
    if not leaves:
        return sha256_hex(b"")
    return _tree_hash([_leaf_hash(leaf) for leaf in leaves]).hex()


def merkle_path(leaves: list[bytes], index: int) -> list[list[str]]:
    """Sibling hashes from leaf ``index`` up to the root: ``[side, hex]`` with
    side ``"L"`` when the sibling is on the left."""
    hashes = [_leaf_hash(leaf) for leaf in leaves]
    path: list[list[str]] = []

    def walk(part: list[bytes], i: int) -> None:
        if len(part) == 1:
            return
        k = _split(len(part))
        if i < k:
            walk(part[:k], i)
            path.append(["R", _tree_hash(part[k:]).hex()])
        else:
            walk(part[k:], i - k)
            path.append(["L", _tree_hash(part[:k]).hex()])

    walk(hashes, index)
    return path


def root_from_path(leaf: bytes, path: list[list[str]]) -> str:
    node = _leaf_hash(leaf)
    for side, sibling_hex in path:
        sibling = bytes.fromhex(sibling_hex)
        node = _node_hash(sibling, node) if side == "L" else _node_hash(node, sibling)
    return node.hex()


def groups_root(groups: dict[str, str]) -> tuple[str, int]:
    """(root, count) of the groups ``{tenant: lines}``."""
    leaves = []
    total = 0
    for tenant in sorted(groups):
        lines = groups[tenant]
        count = lines.count("\n")
        total += count
        leaves.append(group_leaf(tenant, count, group_root(tenant, lines)))
    return merkle_root(leaves), total


@dataclass
class Digest:
    """One digest as stored and as exported (``to_document``)."""

    header: dict[str, Any]
    signature: str
    groups: dict[str, str] | None = None  # None in a tenant proof
    rotation_signature: str | None = None
    # A tenant proof: the tenant, its group lines and the Merkle path to root.
    tenant: str | None = None
    tenant_lines: str | None = None
    proof: list[list[str]] | None = None
    problems: list[str] = field(default_factory=list)
    # A stored digest read without its groups (the verifier holds the whole
    # chain, and 10 million entries' lines would be gigabytes): reads them when
    # asked, and does not keep them. Raises ValueError when they do not parse.
    groups_loader: Callable[[], dict[str, str]] | None = None

    @property
    def lazy(self) -> bool:
        return self.groups is None and self.groups_loader is not None

    def loaded(self) -> Digest:
        """This digest with its groups in memory (itself unless ``lazy``)."""
        if not self.lazy:
            return self
        assert self.groups_loader is not None
        return Digest(self.header, self.signature, self.groups_loader(), self.rotation_signature)

    @property
    def seq(self) -> int:
        return int(self.header["seq"])

    @property
    def kind(self) -> str:
        return self.header.get("kind", "")

    @property
    def text(self) -> str:
        return header_text(self.header)

    @property
    def hash(self) -> str:
        return sha256_hex(f"{self.text}\n{self.signature}".encode())

    def lines_for(self, tenant: str | None) -> str:
        """The lines of ``tenant`` (all groups for None), from a full digest or a proof."""
        if self.lazy:
            return self.loaded().lines_for(tenant)
        if self.groups is None:
            if tenant is None or tenant != self.tenant:
                return ""
            return self.tenant_lines or ""
        if tenant is None:
            return "".join(self.groups[t] for t in sorted(self.groups))
        return self.groups.get(tenant, "")

    def to_document(self) -> dict[str, Any]:
        if self.lazy:
            return self.loaded().to_document()
        doc: dict[str, Any] = {"format": DIGEST_FORMAT, "header": self.header}
        doc["signature"] = self.signature
        if self.rotation_signature:
            doc["rotationSignature"] = self.rotation_signature
        if self.groups is not None:
            doc["groups"] = self.groups
        else:
            doc["format"] = PROOF_FORMAT
            doc["tenant"] = self.tenant
            doc["lines"] = self.tenant_lines
            doc["proof"] = self.proof
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Digest:
        fmt = doc.get("format")
        if fmt not in (DIGEST_FORMAT, PROOF_FORMAT):
            raise ValueError(f"not a dmobs digest (format {fmt!r})")
        header = doc.get("header")
        if not isinstance(header, dict) or not isinstance(doc.get("signature"), str):
            raise ValueError("a digest needs a header object and a signature")
        if fmt == DIGEST_FORMAT:
            groups = doc.get("groups")
            if not isinstance(groups, dict):
                raise ValueError("a digest file needs its groups")
            return cls(header, doc["signature"], groups, doc.get("rotationSignature"))
        return cls(
            header,
            doc["signature"],
            None,
            doc.get("rotationSignature"),
            tenant=doc.get("tenant"),
            tenant_lines=doc.get("lines") or "",
            proof=doc.get("proof") or [],
        )

    def tenant_proof(self, tenant: str) -> Digest:
        """This digest as a tenant sees it: header, signatures, their group and
        the Merkle path to the signed root (empty when the block holds none of
        their entries; see docs/INTEGRITY.md for what that cannot show)."""
        if self.lazy:
            return self.loaded().tenant_proof(tenant)
        assert self.groups is not None
        tenants = sorted(self.groups)
        lines = self.groups.get(tenant, "")
        proof: list[list[str]] = []
        if tenant in self.groups:
            leaves = [
                group_leaf(t, self.groups[t].count("\n"), group_root(t, self.groups[t]))
                for t in tenants
            ]
            proof = merkle_path(leaves, tenants.index(tenant))
        return Digest(
            self.header,
            self.signature,
            None,
            self.rotation_signature,
            tenant=tenant,
            tenant_lines=lines,
            proof=proof,
        )

    def check_content(self) -> str | None:
        """Why the entry lists do not match the signed header, or None."""
        if self.lazy:
            try:
                return self.loaded().check_content()
            except ValueError:
                return "its entry list does not parse"
        if self.groups is not None:
            root, count = groups_root(self.groups)
            if root != self.header.get("root") or count != self.header.get("count"):
                return "its entry list does not match the signed root"
            return None
        # A proof: the tenant's group must lead to the signed root (when present).
        lines = self.tenant_lines or ""
        if not lines and not self.proof:
            return None  # the tenant has no entries in this block
        leaf = group_leaf(
            self.tenant or "", lines.count("\n"), group_root(self.tenant or "", lines)
        )
        if root_from_path(leaf, self.proof or []) != self.header.get("root"):
            return "the tenant's entry list does not match the signed root"
        return None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)
